"""Extractive QA for encoder models: windows in, answer strings out.

The plumbing of Hugging Face's ``run_qa.py`` / ``utils_qa.py``, isolated so it
can be tested without a model:

* :func:`prepare_train_features` — question + context, the context cut into
  overlapping windows (``doc_stride``); each window labelled with the token
  span of the first gold answer, or with position 0 (``<s>``/CLS) when the
  answer is not wholly inside it.
* :func:`prepare_eval_features` — the same windows, each remembering its
  example id and the character offsets of its *context* tokens only.
* :func:`postprocess_predictions` — start/end logits of all windows of an
  example -> the best valid span -> the answer text sliced from the context.

Works with any fast tokenizer that pads on the right (question first). The
XLM-R fast tokenizer's offsets include the space before a word ("▁cat" covers
" cat"), so span texts are stripped of surrounding whitespace.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

#: ``answer_status`` codes written by :func:`prepare_train_features`, one per window.
ANSWER_OK = 0          # answer_start points at the answer text (or the example is unanswerable)
ANSWER_RELOCATED = 1   # answer_start did not point at the text; the occurrence nearest to it was used
ANSWER_MISSING = 2     # the text is not in the context at all; the window is labelled unanswerable (0)
ANSWER_STATUS_NAMES = {ANSWER_OK: "ok", ANSWER_RELOCATED: "relocated", ANSWER_MISSING: "missing"}

CONTEXT = 1   # sequence id of the context (question first, context second)


def _tokenize(examples: dict[str, list], tokenizer, max_length: int, doc_stride: int):
    if not getattr(tokenizer, "is_fast", False):
        raise TypeError(f"QA features need a fast tokenizer (offset mappings); got {type(tokenizer).__name__}. "
                        "Load it with use_fast=True or a *TokenizerFast class")
    if getattr(tokenizer, "padding_side", "right") != "right":
        raise ValueError(f"QA features put the question first and truncate the context; tokenizer pads on "
                         f"the {tokenizer.padding_side!r}. Set tokenizer.padding_side = 'right'")
    if not 0 < doc_stride < max_length:
        raise ValueError(f"doc_stride={doc_stride} must be in (0, max_length={max_length}); "
                         "the study uses max_length=384, doc_stride=128")
    # Leading whitespace in questions (a few SQuAD ones have many spaces) only wastes window room.
    questions = [q.lstrip() for q in examples["question"]]
    return tokenizer(questions, examples["context"], truncation="only_second", max_length=max_length,
                     stride=doc_stride, return_overflowing_tokens=True, return_offsets_mapping=True,
                     padding=False)


def locate_answer(context: str, text: str, answer_start: int) -> tuple[int | None, int]:
    """The character start of ``text`` in ``context`` and an ``ANSWER_*`` status.

    ``answer_start`` is trusted when it points at ``text``; otherwise (offsets
    computed on another version of the context, or first-occurrence guesses)
    the occurrence nearest to it is used; ``None`` when ``text`` is absent.
    """
    if context[answer_start:answer_start + len(text)] == text:
        return answer_start, ANSWER_OK
    starts, i = [], context.find(text)
    while i != -1 and text:
        starts.append(i)
        i = context.find(text, i + 1)
    if not starts:
        return None, ANSWER_MISSING
    return min(starts, key=lambda s: (abs(s - answer_start), s)), ANSWER_RELOCATED


def prepare_train_features(examples: dict[str, list], tokenizer, max_length: int = 384,
                           doc_stride: int = 128) -> dict[str, list]:
    """Batched ``datasets.map`` function: QA examples -> labelled windows.

    Returns the tokenizer's columns plus ``start_positions``/``end_positions``
    (token indices; 0 = no answer in this window) and ``answer_status``
    (``ANSWER_*`` per window, so a pipeline can count relocated or lost
    answers after caching; drop it before the batch reaches the model).
    """
    enc = _tokenize(examples, tokenizer, max_length, doc_stride)
    sample_map = enc.pop("overflow_to_sample_mapping")
    offsets_all = enc.pop("offset_mapping")
    starts, ends, status = [], [], []
    for i, offsets in enumerate(offsets_all):
        ex = sample_map[i]
        answers = examples["answers"][ex]
        seq = enc.sequence_ids(i)
        start_pos = end_pos = 0
        code = ANSWER_OK
        if len(answers["text"]) > 0:
            char_start, code = locate_answer(examples["context"][ex], answers["text"][0], answers["answer_start"][0])
            if char_start is not None:
                char_end = char_start + len(answers["text"][0])
                ctx = [k for k, s in enumerate(seq) if s == CONTEXT]
                if ctx and offsets[ctx[0]][0] <= char_start and offsets[ctx[-1]][1] >= char_end:
                    # last context token starting at or before the answer; first one ending at or after it
                    start_pos = max(k for k in ctx if offsets[k][0] <= char_start)
                    end_pos = min(k for k in ctx if offsets[k][1] >= char_end)
                    # XLM-R emits a bare "▁" before CJK/digits whose offsets overlap the next token's
                    # ("▁" (0,1), "北京" (0,2)); never let the end fall before the start.
                    end_pos = max(end_pos, start_pos)
        starts.append(start_pos)
        ends.append(end_pos)
        status.append(code)
    enc["start_positions"], enc["end_positions"], enc["answer_status"] = starts, ends, status
    return dict(enc)


def answer_status_counts(status: Iterable[int]) -> dict[str, int]:
    """``{"ok": n, "relocated": n, "missing": n}`` over an ``answer_status`` column (per window)."""
    c = Counter(int(s) for s in status)
    return {name: c.get(code, 0) for code, name in ANSWER_STATUS_NAMES.items()}


def prepare_eval_features(examples: dict[str, list], tokenizer, max_length: int = 384,
                          doc_stride: int = 128) -> dict[str, list]:
    """Batched ``datasets.map`` function: QA examples -> windows for prediction.

    Each window keeps ``example_id`` and ``offset_mapping`` with ``None`` at
    every non-context token, which is how post-processing knows a span is
    inside the context.
    """
    enc = _tokenize(examples, tokenizer, max_length, doc_stride)
    sample_map = enc.pop("overflow_to_sample_mapping")
    enc["example_id"] = [examples["id"][ex] for ex in sample_map]
    enc["offset_mapping"] = [
        [tuple(o) if s == CONTEXT else None for o, s in zip(offsets, enc.sequence_ids(i))]
        for i, offsets in enumerate(enc["offset_mapping"])]
    return dict(enc)


def span_text(context: str, offsets: Sequence[Any], start: int, end: int) -> str:
    """Context characters covered by tokens ``start..end`` (inclusive), stripped of edge whitespace."""
    return context[offsets[start][0]:offsets[end][1]].strip()


def _columns(rows: Any, names: tuple[str, ...], what: str) -> dict[str, list]:
    """Columns of a ``datasets.Dataset`` (read once, fast) or of a sequence of dicts."""
    if hasattr(rows, "column_names"):
        missing = [n for n in names if n not in rows.column_names]
        if missing:
            raise KeyError(f"postprocess_predictions: {what} lack columns {missing} (have {rows.column_names}); "
                           "pass the examples and the output of prepare_eval_features unchanged")
        return {n: rows[n] for n in names}
    rows = list(rows)
    for k, r in enumerate(rows):
        missing = [n for n in names if n not in r]
        if missing:
            raise KeyError(f"postprocess_predictions: {what}[{k}] lacks keys {missing}; "
                           "pass the examples and the output of prepare_eval_features unchanged")
    return {n: [r[n] for r in rows] for n in names}


def _best_in_window(start: np.ndarray, end: np.ndarray, offsets: Sequence[Any], n_best: int,
                    max_answer_length: int) -> tuple[float, int, int] | None:
    """Best (score, start, end) among the top-``n_best`` context starts x ends of one window."""
    n = min(len(offsets), len(start), len(end))
    in_ctx = np.array([o is not None and len(o) >= 2 for o in offsets[:n]], dtype=bool)
    if not in_ctx.any():
        return None
    s = np.where(in_ctx, start[:n], -np.inf)
    e = np.where(in_ctx, end[:n], -np.inf)
    k = min(n_best, int(in_ctx.sum()))
    s_idx = np.argsort(-s, kind="stable")[:k]
    e_idx = np.argsort(-e, kind="stable")[:k]
    length = e_idx[None, :] - s_idx[:, None] + 1
    score = s[s_idx][:, None] + e[e_idx][None, :]
    score = np.where((length >= 1) & (length <= max_answer_length), score, -np.inf)
    flat = int(np.argmax(score))
    if not np.isfinite(score.flat[flat]):
        return None
    i, j = divmod(flat, k)
    return float(score.flat[flat]), int(s_idx[i]), int(e_idx[j])


def postprocess_predictions(examples: Any, features: Any, start_logits: np.ndarray, end_logits: np.ndarray,
                            *, n_best: int = 20, max_answer_length: int = 30,
                            allow_null: bool = False) -> dict[str, str]:
    """Example id -> predicted answer text.

    For every window of an example, the ``n_best`` highest start and end
    logits *among context tokens* are paired; a pair is valid when
    end >= start and it spans at most ``max_answer_length`` tokens. The pair
    with the highest start+end logit over all windows wins (ties: the earlier
    window, then the earlier position) and its text is sliced from the context
    by character offsets. Masking question/special tokens before taking the
    top ``n_best`` makes the candidates a superset of ``utils_qa.py``'s.

    ``allow_null`` (SQuAD v2): predict "" when the smallest ``<s>`` score
    (start[0] + end[0]) over the windows beats the best span. An example with
    no valid span at all gets "".

    ``start_logits``/``end_logits``: shape (n_features, seq_len), row i for
    ``features[i]``; rows may be padded past a window's length.
    """
    if n_best < 1 or max_answer_length < 1:
        raise ValueError(f"n_best={n_best} and max_answer_length={max_answer_length} must both be >= 1")
    ex = _columns(examples, ("id", "context"), "examples")
    ft = _columns(features, ("example_id", "offset_mapping"), "features")
    start_logits, end_logits = np.asarray(start_logits, dtype=np.float64), np.asarray(end_logits, dtype=np.float64)
    n_feat = len(ft["example_id"])
    if start_logits.ndim != 2 or start_logits.shape != end_logits.shape or start_logits.shape[0] != n_feat:
        raise ValueError(f"postprocess_predictions: start_logits {start_logits.shape} and end_logits "
                         f"{end_logits.shape} must both be (n_features={n_feat}, seq_len), in feature order")
    by_example: dict[str, list[int]] = defaultdict(list)
    for f, eid in enumerate(ft["example_id"]):
        by_example[eid].append(f)
    known = set(ex["id"])
    stray = [eid for eid in by_example if eid not in known]
    if stray:
        raise KeyError(f"postprocess_predictions: {len(stray)} feature example_ids are not among the examples, "
                       f"e.g. {stray[:5]}; pass the examples the features were made from")
    without = [eid for eid in ex["id"] if eid not in by_example]
    if without:
        raise KeyError(f"postprocess_predictions: {len(without)} examples have no feature, e.g. {without[:5]}; "
                       "pass all features made by prepare_eval_features (do not filter windows)")

    preds: dict[str, str] = {}
    for eid, context in zip(ex["id"], ex["context"]):
        best: tuple[float, int, int, int] | None = None   # score, feature, start, end
        null_score = np.inf
        for f in by_example[eid]:
            null_score = min(null_score, float(start_logits[f, 0] + end_logits[f, 0]))
            got = _best_in_window(start_logits[f], end_logits[f], ft["offset_mapping"][f], n_best,
                                  max_answer_length)
            if got is not None and (best is None or got[0] > best[0]):
                best = (got[0], f, got[1], got[2])
        if best is None or (allow_null and null_score > best[0]):
            preds[eid] = ""
        else:
            _, f, s, e = best
            preds[eid] = span_text(context, ft["offset_mapping"][f], s, e)
    return preds
