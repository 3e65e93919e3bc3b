"""Scores of the study, as pure functions (no torch, no I/O).

Classification and multiple choice use :func:`accuracy`, tagging uses
:func:`token_accuracy` (generated tags are first aligned to the gold words by
:func:`word_tags`), extractive QA uses the official MLQA F1/EM
(:func:`qa_scores` per example, :func:`qa_corpus` for the table). Per-example
scores are kept separate from the corpus mean so that bootstrap intervals and
paired tests can be computed from them later.

The QA normalisation is a line-by-line port of ``mlqa_evaluation_v1.py``
(facebookresearch/MLQA): lower-case, drop every Unicode punctuation character,
drop the language's articles, then tokenise on whitespace (mixed CJK
segmentation for ``zh``). ``lang="en"`` is what the study calls SQuAD scoring;
it differs from SQuAD v1.1's own script only in removing *Unicode* punctuation
(curly quotes, dashes) rather than ASCII punctuation alone.

V-usable information (:func:`pointwise_v_information`, :func:`v_information`,
:func:`null_log_prior`) scores how much a task's inputs tell a model family
about its labels: a metric of the intermediate tasks' difficulty.
"""
from __future__ import annotations

import difflib
import functools
import re
import string
import sys
import unicodedata
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

# ------------------------------------------------------------ classification


def accuracy(preds: Sequence[int], labels: Sequence[int]) -> float:
    """Fraction of ``preds`` equal to ``labels`` (0..1)."""
    if len(preds) != len(labels):
        raise ValueError(f"accuracy: {len(preds)} predictions vs {len(labels)} labels; "
                         "pass one prediction per example, in the same order")
    if not labels:
        raise ValueError("accuracy: no examples; an empty evaluation set has no accuracy")
    return sum(int(p) == int(y) for p, y in zip(preds, labels)) / len(labels)


def token_accuracy(preds: Sequence[Sequence[int]], labels: Sequence[Sequence[int]],
                   ignore: int = -100) -> float:
    """Fraction of scored positions tagged correctly; positions whose label is
    ``ignore`` (special tokens, non-first sub-tokens) are not scored.

    Rows must have equal lengths: the label row is the mask, so a shorter
    prediction row would silently shift every tag after it.
    """
    if len(preds) != len(labels):
        raise ValueError(f"token_accuracy: {len(preds)} prediction rows vs {len(labels)} label rows; "
                         "pass one row per sequence, in the same order")
    right = total = 0
    for i, (p_row, y_row) in enumerate(zip(preds, labels)):
        if len(p_row) != len(y_row):
            raise ValueError(f"token_accuracy: row {i} has {len(p_row)} predictions vs {len(y_row)} labels; "
                             "take predictions from the same padded batch as the labels")
        for p, y in zip(p_row, y_row):
            if y == ignore:
                continue
            total += 1
            right += int(p) == int(y)
    if total == 0:
        raise ValueError(f"token_accuracy: every label is the ignore value {ignore}; nothing to score")
    return right / total


def word_tags(pred: Sequence[tuple[str, str | None]], words: Sequence[Sequence[str]]) -> list[str | None]:
    """The predicted tag of each gold word, from generated (piece, tag) pairs (featurize.parse_tagged).

    ``words[i]`` is gold word i's whitespace pieces (usually one). Pieces are aligned by longest
    matching blocks (difflib), not by position, so a skipped or an extra generated word costs only
    itself instead of shifting every later tag. A gold word gets the tag of its first piece's match;
    None when that piece is unmatched (skipped, or written differently) or its tag is missing.
    """
    gold = [(i, p) for i, ps in enumerate(words) for p in ps]
    out: list[str | None] = [None] * len(words)
    sm = difflib.SequenceMatcher(None, [p for _, p in gold], [w for w, _ in pred], autojunk=False)
    first = {}
    for a, b, n in sm.get_matching_blocks():
        for k in range(n):
            first.setdefault(a + k, b + k)
    for g, (i, _) in enumerate(gold):
        if g in first and (g == 0 or gold[g - 1][0] != i):   # the word's first piece
            out[i] = pred[first[g]][1]
    return out


# --------------------------------------------------------- extractive QA (MLQA)


@functools.cache
def punctuation() -> frozenset[str]:
    """Every character whose Unicode category starts with "P", plus ASCII punctuation (as MLQA).

    Built on first use (a scan of all code points, ~0.5 s) so importing the module stays cheap.
    """
    return frozenset({chr(i) for i in range(sys.maxunicode) if unicodedata.category(chr(i)).startswith("P")}
                     | set(string.punctuation))


# Article regexes exactly as in mlqa_evaluation_v1.py (None: the language has none).
# Arabic: ``^`` after ``\sال`` can never match without re.MULTILINE, so the pattern
# in effect replaces *every* "ال" by a space, also inside words ("مال" -> "م ").
# That is what the official numbers measure, so it is kept.
ARTICLES: dict[str, re.Pattern[str] | None] = {
    "en": re.compile(r"\b(a|an|the)\b"),
    "es": re.compile(r"\b(un|una|unos|unas|el|la|los|las)\b"),
    "hi": None,
    "vi": re.compile(r"\b(của|là|cái|chiếc|những)\b"),
    "de": re.compile(r"\b(ein|eine|einen|einem|eines|einer|der|die|das|den|dem|des)\b"),
    "ar": re.compile(r"\sال^|ال"),
    "zh": None,
}
WHITESPACE_LANGS = ("en", "es", "hi", "vi", "de", "ar")
MIXED_SEGMENTATION_LANGS = ("zh",)
_CJK = re.compile(r"[\u4e00-\u9fa5]")


def _check_lang(lang: str) -> None:
    if lang not in ARTICLES:
        raise ValueError(f"QA metric: unknown language {lang!r}; the MLQA script knows "
                         f"{', '.join(sorted(ARTICLES))}. For other languages (XQuAD el/ro/ru/th/tr, "
                         "TyDiQA ko/sw) score with lang='en', i.e. SQuAD's normalisation, as XTREME does")


def mixed_segmentation(text: str) -> list[str]:
    """zh tokens: each CJK character (U+4E00..U+9FA5) or punctuation mark alone,
    runs of anything else split on whitespace — so "2100万人" -> ["2100", "万", "人"]."""
    punct = punctuation()
    segs: list[str] = []
    run = ""
    for ch in text:
        if _CJK.search(ch) or ch in punct:
            if run:
                segs.extend(run.split())
                run = ""
            segs.append(ch)
        else:
            run += ch
    if run:
        segs.extend(run.split())
    return segs


def normalize_answer(s: str, lang: str) -> str:
    """MLQA normalisation: lower, drop punctuation, drop articles, re-join tokens with one space."""
    _check_lang(lang)
    punct = punctuation()
    text = "".join(ch for ch in s.lower() if ch not in punct)
    pattern = ARTICLES[lang]
    if pattern is not None:
        text = pattern.sub(" ", text)
    tokens = mixed_segmentation(text) if lang in MIXED_SEGMENTATION_LANGS else text.split()
    return " ".join(t for t in tokens if t.strip() != "")


def qa_f1(prediction: str, ground_truth: str, lang: str) -> float:
    """Bag-of-tokens F1 between normalised answers (0..1).

    As in the MLQA script, no overlap gives 0 — including two answers that both
    normalise to nothing; :func:`qa_scores` handles unanswerable questions.
    """
    pred = normalize_answer(prediction, lang).split()
    gold = normalize_answer(ground_truth, lang).split()
    same = sum((Counter(pred) & Counter(gold)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred), same / len(gold)
    return 2 * precision * recall / (precision + recall)


def qa_em(prediction: str, ground_truth: str, lang: str) -> float:
    """1.0 when the normalised answers are identical, else 0.0."""
    return float(normalize_answer(prediction, lang) == normalize_answer(ground_truth, lang))


def qa_scores(predictions: Mapping[str, str], references: Mapping[str, list[str]],
              lang: str) -> dict[str, dict[str, float]]:
    """Per-question ``{"f1", "em"}`` (0..1), each the max over that question's gold answers.

    Every reference id needs a prediction: the MLQA script would score a missing
    one as 0 with a warning on stderr, which hides a broken pipeline, so here it
    is an error. Extra predictions are ignored (as in the script). A question
    with no gold answer (SQuAD v2 unanswerable) scores 1 only for a prediction
    that normalises to "" (SQuAD v2's convention; MLQA has no such questions).
    """
    _check_lang(lang)
    missing = [qid for qid in references if qid not in predictions]
    if missing:
        raise KeyError(f"qa_scores: {len(missing)} of {len(references)} reference ids have no prediction, "
                       f"e.g. {missing[:5]}; post-process every evaluation example "
                       "(an empty string is a valid prediction)")
    out: dict[str, dict[str, float]] = {}
    for qid, golds in references.items():
        pred = predictions[qid]
        if isinstance(golds, str):
            raise TypeError(f"qa_scores: references[{qid!r}] is the string {golds!r}; "
                            "pass the list of gold answer texts (answers['text'])")
        if len(golds) == 0:
            hit = float(normalize_answer(pred, lang) == "")
            out[qid] = {"f1": hit, "em": hit}
            continue
        out[qid] = {"f1": max(qa_f1(pred, g, lang) for g in golds),
                    "em": max(qa_em(pred, g, lang) for g in golds)}
    return out


def qa_corpus(per_example: Mapping[str, Mapping[str, float]]) -> dict[str, float]:
    """Corpus F1 and EM on the 0..100 scale of the papers: 100 x the per-question mean."""
    if not per_example:
        raise ValueError("qa_corpus: no per-example scores; run qa_scores on a non-empty evaluation set")
    n = len(per_example)
    return {"f1": 100.0 * sum(s["f1"] for s in per_example.values()) / n,
            "em": 100.0 * sum(s["em"] for s in per_example.values()) / n}


# ------------------------------------------------------------ V-usable information

def pointwise_v_information(logp_model: np.ndarray, logp_null: np.ndarray,
                            log_base: float = np.e) -> np.ndarray:
    """PVI (Ethayarajh et al. 2022): ``log2 p_model(y|x) - log2 p_null(y)`` per example, in bits.

    Inputs are log-probabilities of the gold label in base ``log_base`` (natural log by
    default, as torch's ``log_softmax`` gives): the model fine-tuned with inputs, and the
    "null" model fine-tuned on empty inputs.
    """
    m, z = np.asarray(logp_model, float), np.asarray(logp_null, float)
    if m.shape != z.shape:
        raise ValueError(f"PVI: {m.shape} model log-probs vs {z.shape} null log-probs; "
                         "give one of each per example, same order")
    if np.any(m > 1e-9) or np.any(z > 1e-9):
        raise ValueError("PVI: log-probabilities must be <= 0; pass log p, not p or logits")
    return (m - z) * np.log2(log_base)   # log2 p = log_b p * log2 b


def v_information(logp_model: np.ndarray, logp_null: np.ndarray, log_base: float = np.e) -> float:
    """V-usable information of a dataset: the mean PVI, in bits (higher = easier for V)."""
    return float(np.mean(pointwise_v_information(logp_model, logp_null, log_base)))


def null_log_prior(labels: Sequence[int], n_classes: int, smoothing: float = 1.0) -> np.ndarray:
    """Natural-log label prior of the training labels: the "null" term of V-usable information.

    Ethayarajh et al. (2022) fine-tune a second model on empty inputs; under cross-entropy such a
    model can do no better than the training-label frequencies, so the prior is what it converges
    to, at no training cost. ``smoothing`` (add-k) keeps a label unseen in training finite."""
    if n_classes < 1:
        raise ValueError(f"null_log_prior: n_classes must be >= 1, got {n_classes}")
    y = np.asarray(list(labels), dtype=int)
    if y.size and (y.min() < 0 or y.max() >= n_classes):
        raise ValueError(f"null_log_prior: labels must lie in 0..{n_classes - 1}; got {y.min()}..{y.max()}")
    counts = np.bincount(y, minlength=n_classes).astype(float) + smoothing
    with np.errstate(divide="ignore"):   # smoothing=0 gives log 0 = -inf for an unseen label, as it should
        return np.log(counts / counts.sum())
