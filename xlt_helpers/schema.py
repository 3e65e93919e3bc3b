"""One example schema per task kind, as ``datasets.Features``.

Every loader (local files or hub adapters) returns exactly these columns, so
featurization, training and evaluation are written once per *kind*, never per
task (the lesson from jiant's hundred near-identical task modules).

* classification:  id, lang, text_a, text_b ("" for single sentences), label (int)
* multiple-choice: id, lang, context, question ("" if none), choices (list[str]), label (int)
* extractive-QA:   id, lang, title, context, question, answers {text: [str], answer_start: [int]}
                   (SQuAD layout; an empty list means unanswerable)
* token-tagging:   id, lang, tokens (list[str]), tags (list[int])
"""
from __future__ import annotations

from datasets import ClassLabel, Features, Sequence, Value

from .tasks import TaskSpec


def features_for(spec: TaskSpec) -> Features:
    """The ``Features`` of ``spec``'s kind, with its label names attached."""
    base = {"id": Value("string"), "lang": Value("string")}
    if spec.kind == "classification":
        return Features({**base, "text_a": Value("string"), "text_b": Value("string"),
                         "label": ClassLabel(names=list(spec.labels))})
    if spec.kind == "multiple-choice":
        return Features({**base, "context": Value("string"), "question": Value("string"),
                         "choices": Sequence(Value("string")),
                         "label": ClassLabel(names=list(spec.labels))})
    if spec.kind == "extractive-QA":
        return Features({**base, "title": Value("string"), "context": Value("string"),
                         "question": Value("string"),
                         "answers": {"text": Sequence(Value("string")),
                                     "answer_start": Sequence(Value("int32"))}})
    if spec.kind == "token-tagging":
        return Features({**base, "tokens": Sequence(Value("string")),
                         "tags": Sequence(ClassLabel(names=list(spec.labels)))})
    raise ValueError(f"task {spec.name!r} has unknown kind {spec.kind!r}")


COLUMNS: dict[str, tuple[str, ...]] = {
    "classification": ("id", "lang", "text_a", "text_b", "label"),
    "multiple-choice": ("id", "lang", "context", "question", "choices", "label"),
    "extractive-QA": ("id", "lang", "title", "context", "question", "answers"),
    "token-tagging": ("id", "lang", "tokens", "tags"),
}
