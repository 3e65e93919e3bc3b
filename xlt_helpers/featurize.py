"""Featurization written once per task *kind*, for both model families.

Encoder family: token ids (+ labels in the head's layout). Encoder-decoder
family: every task cast to text-to-text through :data:`TEMPLATES` — the
documented input template per kind and the target words per label.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from datasets import Dataset

from .tasks import TaskSpec

# ----------------------------------------------------------------- encoder


def encode_classification(ds: Dataset, tokenizer, max_length: int) -> Dataset:
    """Sentence (pair) -> ids; ``labels`` = class index."""
    def fn(b: dict[str, list]) -> dict[str, list]:
        pairs = any(t for t in b["text_b"])
        enc = tokenizer(b["text_a"], b["text_b"] if pairs else None, truncation=True, max_length=max_length)
        enc["labels"] = b["label"]
        return enc
    return ds.map(fn, batched=True, remove_columns=ds.column_names, desc="tokenize")


def encode_multiple_choice(ds: Dataset, tokenizer, max_length: int) -> Dataset:
    """One (context [+ question], choice) pair per option; ids are lists of n_choices sequences."""
    def fn(b: dict[str, list]) -> dict[str, list]:
        out: dict[str, list] = {"input_ids": [], "attention_mask": [], "labels": b["label"]}
        for ctx, q, choices in zip(b["context"], b["question"], b["choices"]):
            first = " ".join(x for x in (ctx, q) if x)
            enc = tokenizer([first] * len(choices), list(choices), truncation=True, max_length=max_length)
            out["input_ids"].append(enc["input_ids"])
            out["attention_mask"].append(enc["attention_mask"])
        return out
    return ds.map(fn, batched=True, remove_columns=ds.column_names, desc="tokenize")


def encode_tagging(ds: Dataset, tokenizer, max_length: int) -> Dataset:
    """Words -> sub-tokens; the tag sits on each word's first sub-token, -100 elsewhere (ignored by loss/metric)."""
    def fn(b: dict[str, list]) -> dict[str, list]:
        enc = tokenizer(b["tokens"], is_split_into_words=True, truncation=True, max_length=max_length)
        labels = []
        for i, tags in enumerate(b["tags"]):
            prev, row = None, []
            for w in enc.word_ids(i):
                row.append(-100 if w is None or w == prev else tags[w])
                prev = w
            labels.append(row)
        enc["labels"] = labels
        return enc
    return ds.map(fn, batched=True, remove_columns=ds.column_names, desc="tokenize")


# ------------------------------------------------------- encoder-decoder
TEMPLATES: dict[str, str] = {
    "classification": "{task} premise: {text_a} hypothesis: {text_b}",   # single sentences drop the hypothesis part
    "classification-single": "{task} sentence: {text_a}",
    "multiple-choice": "{task} question: {question} context: {context} options: {options}",  # target: the option letter
    "extractive-QA": "{task} question: {question} context: {context}",   # target: the first gold answer text
    "token-tagging": "{task} tag: {tokens}",                             # target: "word TAG word TAG ..." (tagged_text)
}
NO_ANSWER = "unanswerable"
LETTERS = "ABCDEFGH"


def to_text(spec: TaskSpec, ex: dict[str, Any]) -> tuple[str, str]:
    """(input text, target text) of one example under the kind's template."""
    k = spec.kind
    if k == "classification":
        tmpl = TEMPLATES["classification"] if ex["text_b"] else TEMPLATES["classification-single"]
        return tmpl.format(task=spec.name, **ex), spec.label_targets()[ex["label"]]
    if k == "multiple-choice":
        opts = " ".join(f"({LETTERS[i]}) {c}" for i, c in enumerate(ex["choices"]))
        src = TEMPLATES["multiple-choice"].format(task=spec.name, question=ex["question"], context=ex["context"], options=opts)
        return src, LETTERS[ex["label"]]
    if k == "extractive-QA":
        ans = ex["answers"]["text"]
        return TEMPLATES["extractive-QA"].format(task=spec.name, **ex), (ans[0] if ans else NO_ANSWER)
    if k == "token-tagging":
        return (TEMPLATES["token-tagging"].format(task=spec.name, tokens=" ".join(ex["tokens"])),
                tagged_text(ex["tokens"], [spec.labels[t] for t in ex["tags"]]))
    raise ValueError(f"task {spec.name!r}: unknown kind {k!r}")


def tagged_text(words: Sequence[str], tags: Sequence[str]) -> str:
    """The text-to-text tagging target: each word followed by its tag, "The DET cat NOUN".

    Word-anchored on purpose: a bare tag sequence ("DET NOUN ...") holds no word of the source, and
    the warm-started e5ed decoder memorised 16 of them as a language model keyed by the first tags,
    never reading the source (5 distinct outputs for 16 sentences, token accuracy 17.2). With each
    word copied before its tag, every step needs the source, and :func:`parse_tagged` /
    ``metrics.word_tags`` score the output per word, so a skipped word costs only itself."""
    if len(words) != len(tags):
        raise ValueError(f"tagged_text: {len(words)} words vs {len(tags)} tags; pass one tag per word")
    return " ".join(f"{w} {t}" for w, t in zip(words, tags))


def parse_tagged(text: str, labels: Sequence[str]) -> list[tuple[str, str | None]]:
    """(piece, tag) for every whitespace piece of a generated :func:`tagged_text` that is not a tag.

    A piece in ``labels`` that follows a word piece closes the word(s) before it and tags them all (a
    word with a space, "Hà Nội PROPN", gives two pieces tagged PROPN); a label with no word before it
    is a word (the word "X" tagged X is "X X"). Pieces after the last tag get None. A mangled tag
    ("NOU") is read as a word piece and takes the next tag, so it costs its own word, not the rest."""
    names = set(labels)
    out: list[tuple[str, str | None]] = []
    pending: list[str] = []
    for piece in text.split():
        if piece in names and pending:
            out.extend((w, piece) for w in pending)
            pending = []
        else:
            pending.append(piece)
    return out + [(w, None) for w in pending]


def candidates(spec: TaskSpec, ex: dict[str, Any]) -> list[str] | None:
    """Targets to rank by likelihood at evaluation (classification, multiple choice); None = generate."""
    if spec.generated_targets:
        return None
    if spec.kind == "classification":
        return list(spec.label_targets())
    if spec.kind == "multiple-choice":
        return [LETTERS[i] for i in range(len(ex["choices"]))]
    return None


def target_ids(tokenizer, texts: list[str], max_length: int = 64) -> list[list[int]]:
    """Decoder targets: the text's ids ending in ``</s>``, *without* the leading ``<s>`` that the
    XLM-R tokenizer adds (generation starts from the decoder start token, so a leading ``<s>``
    would teach the decoder to say it twice)."""
    ids = tokenizer(text_target=list(texts), truncation=True, max_length=max_length)["input_ids"]
    bos = tokenizer.bos_token_id
    return [x[1:] if bos is not None and x and x[0] == bos else x for x in ids]


def max_target_length(spec: TaskSpec, max_length: int) -> int:
    """The decoder's budget in tokens for ``spec`` with sources of ``max_length`` tokens, used for
    training targets and for generating tags alike.

    A tagging target (:func:`tagged_text`) repeats the source's words (at most the source's
    ``max_length`` pieces) and adds one tag of up to 3 pieces ("▁PUN" "CT" ...) per word (at most
    ``max_length`` words), so it needs up to 4x the source's budget: a flat 64 silently cut 14.5% of
    the UD-POS English training targets even without the words (2,000 sentences: mean 39 tokens,
    90th percentile 73, max 235) and taught the decoder to stop mid-sentence. Label words, letters
    and QA answers fit in 64."""
    return 4 * max_length if spec.kind == "token-tagging" else 64


def encode_seq2seq(spec: TaskSpec, ds: Dataset, tokenizer, max_length: int,
                   target_length: int | None = None) -> Dataset:
    """Text-to-text features; targets are cut at ``target_length`` tokens (default :func:`max_target_length`)."""
    cap = target_length if target_length is not None else max_target_length(spec, max_length)

    def fn(b: dict[str, list]) -> dict[str, list]:
        rows = [dict(zip(b, vals)) for vals in zip(*b.values())]
        src, tgt = zip(*(to_text(spec, r) for r in rows))
        enc = tokenizer(list(src), truncation=True, max_length=max_length)
        enc["labels"] = target_ids(tokenizer, list(tgt), cap)
        return enc
    return ds.map(fn, batched=True, remove_columns=ds.column_names, desc="tokenize")


def texts_of(spec: TaskSpec, ds: Dataset) -> list[str]:
    """Every text field of a dataset (for vocabulary coverage)."""
    cols = {"classification": ("text_a", "text_b"), "multiple-choice": ("context", "question", "choices"),
            "extractive-QA": ("title", "context", "question"), "token-tagging": ("tokens",)}[spec.kind]
    out: list[str] = []
    for c in cols:
        for v in ds[c][:]:
            out.extend(v if isinstance(v, list) else [v])
    if spec.kind == "extractive-QA":
        out.extend(t for a in ds["answers"][:] for t in a["text"])
    return out
