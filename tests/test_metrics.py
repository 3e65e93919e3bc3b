"""Metrics: hand-worked cases of the MLQA F1/EM in several languages, plus accuracies.

Every expected number is worked out in the comment next to it from the rules
of mlqa_evaluation_v1.py (lower, drop punctuation, drop articles, whitespace
tokens; zh: one token per CJK character).
"""
from __future__ import annotations

import numpy as np
import pytest

from xlt_helpers import metrics as M
from xlt_helpers.metrics import (accuracy, normalize_answer, qa_corpus, qa_em, qa_f1, qa_scores,
                                 token_accuracy)

# ------------------------------------------------------------------ accuracy


def test_accuracy_counts_matches():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == pytest.approx(3 / 4)


def test_accuracy_rejects_length_mismatch_and_empty():
    with pytest.raises(ValueError, match="3 predictions vs 2 labels"):
        accuracy([0, 1, 2], [0, 1])
    with pytest.raises(ValueError, match="no examples"):
        accuracy([], [])


def test_token_accuracy_skips_ignored_positions():
    # scored positions: row 0 -> (5,5) right, (7,6) wrong; row 1 -> (1,1) right. 2 of 3.
    preds = [[9, 5, 7, 9], [9, 1, 9]]
    labels = [[-100, 5, 6, -100], [-100, 1, -100]]
    assert token_accuracy(preds, labels) == pytest.approx(2 / 3)
    with pytest.raises(ValueError, match="row 1 has 2 predictions vs 3 labels"):
        token_accuracy([[1], [1, 2]], [[1], [1, 2, 3]])
    with pytest.raises(ValueError, match="ignore value -100"):
        token_accuracy([[1, 2]], [[-100, -100]])


@pytest.mark.parametrize("pred, expected", [
    ([("the", "DET"), ("cat", "NOUN"), ("sat", "VERB")], ["DET", "NOUN", "VERB"]),           # exact
    ([("the", "DET"), ("sat", "VERB")], ["DET", None, "VERB"]),                               # skipped word
    ([("the", "DET"), ("big", "ADJ"), ("cat", "NOUN"), ("sat", "VERB")], ["DET", "NOUN", "VERB"]),  # extra word
    # "the DET cat NOU sat VERB": the mangled tag reads as a word, so cat takes sat's tag; sat keeps its own
    ([("the", "DET"), ("cat", "VERB"), ("NOU", "VERB"), ("sat", "VERB")], ["DET", "VERB", "VERB"]),
    ([("the", "DET"), ("cat", None)], ["DET", None, None]),                                   # cut short
    ([("teh", "DET"), ("cat", "NOUN"), ("sat", "VERB")], [None, "NOUN", "VERB"]),            # misspelt word
])
def test_word_tags_align_generated_words_not_positions(pred, expected):
    assert M.word_tags(pred, [["the"], ["cat"], ["sat"]]) == expected


def test_word_tags_take_a_multi_piece_words_first_piece_and_repeated_words_in_order():
    assert M.word_tags([("Hà", "PROPN"), ("Nội", "PROPN"), ("is", "AUX")], [["Hà", "Nội"], ["is"]]) == ["PROPN", "AUX"]
    # the second "a" was skipped: the first keeps its tag, the later "b" is not shifted onto it
    assert M.word_tags([("a", "DET"), ("b", "NOUN")], [["a"], ["b"], ["a"]]) == ["DET", "NOUN", None]
    assert M.word_tags([], [["a"]]) == [None] and M.word_tags([("a", "X")], []) == []


# ------------------------------------------------------------- normalisation


@pytest.mark.parametrize("lang, text, expected", [
    ("en", "The Eiffel Tower!", "eiffel tower"),
    ("en", "Theatre of an age", "theatre of age"),                  # \b: "theatre" keeps its "the"
    ("en", "“Quoted” — text", "quoted text"),                       # Unicode punctuation goes too
    ("de", "Die Hauptstadt, der Dom", "hauptstadt dom"),
    ("de", "dieser Mann", "dieser mann"),                           # "die" inside a word stays
    ("es", "Los Reyes Católicos", "reyes católicos"),
    ("es", "Málaga y las islas", "málaga y islas"),
    ("vi", "Thủ đô của Việt Nam", "thủ đô việt nam"),
    ("hi", "भारत की राजधानी।", "भारत की राजधानी"),                  # danda is punctuation; no articles
    ("ar", "الكتاب، والقلم", "كتاب و قلم"),                          # every "ال" -> " ", "،" dropped
    ("ar", "المال", "م"),                                           # ... even inside a word (official regex)
    ("zh", "2008年北京奥运会。", "2008 年 北 京 奥 运 会"),           # CJK chars alone, digit run kept
    ("zh", "The Beatles乐队", "the beatles 乐 队"),                  # zh removes no English article
])
def test_normalize_answer_follows_mlqa(lang, text, expected):
    assert normalize_answer(text, lang) == expected


def test_unknown_language_names_the_fix():
    with pytest.raises(ValueError, match=r"unknown language 'th'.*lang='en'"):
        normalize_answer("x", "th")


# --------------------------------------------------------------- F1 and EM


@pytest.mark.parametrize("lang, pred, gold, f1, em", [
    # en: pred [big, red, barn], gold [red, barn, in, ohio]: common 2, P=2/3, R=1/2, F1=2PR/(P+R)=4/7
    ("en", "the big red barn", "a red barn in Ohio", 4 / 7, 0.0),
    ("en", "The Eiffel Tower.", "Eiffel Tower", 1.0, 1.0),
    # de: both -> "vertrag von versailles" once der/dem are dropped
    ("de", "Der Vertrag von Versailles", "dem Vertrag von Versailles", 1.0, 1.0),
    # de: pred [hauptstadt, berlin] vs [berlin]: P=1/2, R=1, F1=2/3
    ("de", "die Hauptstadt Berlin", "Berlin", 2 / 3, 0.0),
    # es: pred [río, ebro, en, españa] vs [río, ebro]: P=2/4, R=1, F1=2/3
    ("es", "el río Ebro en España", "río Ebro", 2 / 3, 0.0),
    ("es", "los Reyes Católicos", "Reyes Católicos", 1.0, 1.0),
    # ar: "الكتاب" -> "كتاب", identical to the prediction
    ("ar", "كتاب", "الكتاب", 1.0, 1.0),
    # ar: pred "في المدينة القديمة" -> [في, مدينة, قديمة] vs [مدينة]: P=1/3, R=1, F1=1/2
    ("ar", "في المدينة القديمة", "المدينة", 1 / 2, 0.0),
    # zh: pred [北, 京] vs gold [北, 京, 市]: common 2, P=1, R=2/3, F1=4/5
    ("zh", "北京", "北京市", 4 / 5, 0.0),
    # zh: pred [2008, 年] vs [2008, 年, 夏, 天]: P=1, R=1/2, F1=2/3
    ("zh", "2008年", "2008年夏天", 2 / 3, 0.0),
    # zh: punctuation only differs
    ("zh", "“北京”", "北京", 1.0, 1.0),
    # vi: "của" is an article in MLQA's list
    ("vi", "thủ đô của Việt Nam", "thủ đô Việt Nam", 1.0, 1.0),
])
def test_f1_and_em_hand_worked(lang, pred, gold, f1, em):
    assert qa_f1(pred, gold, lang) == pytest.approx(f1)
    assert qa_em(pred, gold, lang) == em


def test_empty_prediction_scores_zero():
    assert qa_f1("", "Paris", "en") == 0.0
    assert qa_em("", "Paris", "en") == 0.0
    # as in the MLQA script, F1 needs an overlapping token: "" vs "the" is EM 1 but F1 0
    assert qa_em("", "the", "en") == 1.0
    assert qa_f1("", "the", "en") == 0.0


def test_qa_scores_take_max_over_gold_answers():
    refs = {"q1": ["Broncos", "Denver Broncos", "the Denver Broncos team"],
            "q2": ["Denver Broncos", "team"],
            "q3": ["北京市", "北京"]}
    preds = {"q1": "Denver Broncos", "q2": "Broncos team", "q3": "北京", "extra": "ignored"}
    got = qa_scores(preds, refs, "en")
    assert set(got) == {"q1", "q2", "q3"}
    assert got["q1"] == {"f1": 1.0, "em": 1.0}
    # q2: vs "Denver Broncos" P=1/2 R=1/2 F1=1/2; vs "team" P=1/2 R=1 F1=2/3 -> max 2/3; EM 0
    assert got["q2"]["f1"] == pytest.approx(2 / 3)
    assert got["q2"]["em"] == 0.0
    assert qa_scores({"q3": "北京"}, {"q3": refs["q3"]}, "zh")["q3"] == {"f1": 1.0, "em": 1.0}


def test_qa_scores_unanswerable_reference():
    got = qa_scores({"a": "", "b": "Paris"}, {"a": [], "b": []}, "en")
    assert got == {"a": {"f1": 1.0, "em": 1.0}, "b": {"f1": 0.0, "em": 0.0}}


def test_qa_scores_missing_prediction_names_ids():
    with pytest.raises(KeyError, match=r"2 of 3 reference ids.*'q2'.*'q3'"):
        qa_scores({"q1": "x"}, {"q1": ["x"], "q2": ["y"], "q3": ["z"]}, "en")


def test_qa_scores_rejects_a_bare_string_reference():
    with pytest.raises(TypeError, match="list of gold answer texts"):
        qa_scores({"q": "Paris"}, {"q": "Paris"}, "en")


def test_qa_corpus_is_100_times_the_mean():
    per = {"a": {"f1": 1.0, "em": 1.0}, "b": {"f1": 0.5, "em": 0.0}, "c": {"f1": 0.0, "em": 0.0}}
    # f1 = 100 * (1 + .5 + 0) / 3 = 50; em = 100 * 1/3
    assert qa_corpus(per) == pytest.approx({"f1": 50.0, "em": 100 / 3})
    with pytest.raises(ValueError, match="no per-example scores"):
        qa_corpus({})


# ------------------------------------------------------------------ V-usable information

def test_v_information():
    # p_model(y|x) = 0.5, p_null(y) = 0.25 -> log2 0.5 - log2 0.25 = -1 + 2 = 1 bit
    pvi = M.pointwise_v_information(np.log([0.5, 0.25]), np.log([0.25, 0.25]))
    np.testing.assert_allclose(pvi, [1.0, 0.0])
    assert M.v_information([-1.0, -2.0], [-2.0, -2.0], log_base=2) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="must be <= 0"):
        M.pointwise_v_information([0.5], [0.25])


def test_null_log_prior_is_the_smoothed_training_label_frequency():
    # labels 0,0,0,1 over 3 classes, add-one: counts 4,2,1 of 7
    np.testing.assert_allclose(np.exp(M.null_log_prior([0, 0, 0, 1], 3)), [4 / 7, 2 / 7, 1 / 7])
    np.testing.assert_allclose(np.exp(M.null_log_prior([1, 1], 2, smoothing=0.0)), [0.0, 1.0])
    with pytest.raises(ValueError, match="0..1"):
        M.null_log_prior([0, 2], 2)
