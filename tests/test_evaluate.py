"""The per-example rows of extractive QA are on the scores' 0..100 scale (``evaluate.qa_rows``)."""
from __future__ import annotations

import pytest

from xlt_helpers.evaluate import qa_rows


def test_qa_rows_are_points_and_average_to_the_corpus_score():
    # q1: "the cat sat" vs "a cat sat on the mat" normalise to "cat sat" vs "cat sat on mat":
    #     2 shared tokens, precision 2/2, recall 2/4, F1 = 2 * 1 * 0.5 / 1.5 = 2/3 -> 66.67 points, EM 0
    # q2: "Paris" matches the second gold answer exactly: F1 100, EM 100
    preds = {"q1": "the cat sat", "q2": "Paris"}
    refs = {"q1": ["a cat sat on the mat"], "q2": ["the city of Paris", "Paris"]}
    rows, corpus = qa_rows(preds, refs, "en")
    got = {(r["example_id"], r["metric"]): r["value"] for r in rows}
    assert got == pytest.approx({("q1", "f1"): 200 / 3, ("q1", "em"): 0.0, ("q2", "f1"): 100.0, ("q2", "em"): 100.0})
    assert [(r["example_id"], r["metric"]) for r in rows] == [("q1", "f1"), ("q1", "em"), ("q2", "f1"), ("q2", "em")]
    assert all(r["lang"] == "en" and r["pred"] == preds[r["example_id"]] for r in rows)
    # one scale: the corpus score is the plain mean of the rows, (66.67 + 100) / 2 and (0 + 100) / 2
    assert corpus == pytest.approx({"f1": 250 / 3, "em": 50.0})
