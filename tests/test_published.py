"""The published numbers: complete per task, consistent with the papers' own averages."""
from __future__ import annotations

import pandas as pd
import pytest

from xlt_helpers import robustness as R
from xlt_helpers.published import (AVG_COLUMNS, COLUMNS, average_gains, average_size_change, average_table,
                                   load_published, load_published_averages, to_scores_table,
                                   validate_published, validate_published_averages)
from xlt_helpers.tasks import MLQA_LANGS, XNLI_LANGS

# The papers' headline averages (printed in their "Avg" columns / abstracts), typed here
# independently of the CSV so a typo in either shows up.
HEADLINE = {
    ("xlmr-base", "none", "xnli", "accuracy"): 76.2,     # XLM-R paper, Table 1
    ("xlmr-large", "none", "xnli", "accuracy"): 80.9,    # XLM-R paper, Table 1
    ("xlmr-base", "none", "mlqa", "f1"): 63.7,           # XLM-R paper, Table 3
    ("xlmr-base", "none", "mlqa", "em"): 46.3,
    ("xlmr-large", "none", "mlqa", "f1"): 70.7,
    ("xlmr-large", "none", "mlqa", "em"): 52.7,
    # mT5 zero-shot XNLI (Xue et al. 2021, Table 2); per-language rows are not in the CSV
    # until a public copy of the appendix tables is found (see the module docstring).
    ("mt5-small", "none", "xnli", "accuracy"): 67.5,
    ("mt5-base", "none", "xnli", "accuracy"): 75.4,
    ("mt5-large", "none", "xnli", "accuracy"): 81.1,
    ("mt5-xl", "none", "xnli", "accuracy"): 82.9,
    ("mt5-xxl", "none", "xnli", "accuracy"): 85.0,
}
TASK_LANGS = {"xnli": set(XNLI_LANGS), "mlqa": set(MLQA_LANGS)}


@pytest.fixture(scope="module")
def pub() -> pd.DataFrame:
    return load_published()


def test_columns_and_not_empty(pub):
    assert list(pub.columns) == list(COLUMNS)
    assert len(pub) >= 58   # XLM-R Base + Large: 2 x 15 XNLI + 2 x 2 x 7 MLQA


@pytest.mark.parametrize("key", sorted(HEADLINE), ids=lambda k: "-".join(k))
def test_average_recomputes_to_headline(pub, key):
    model, inter, task, metric = key
    g = pub[(pub["model"] == model) & (pub["intermediate"] == inter)
            & (pub["task"] == task) & (pub["metric"] == metric)]
    if g.empty:
        pytest.skip(f"{key} not in published.csv (per-language table not found in a public copy; "
                    "its average is checked by test_averages_only_rows_match_the_papers_headlines)")
    assert g["avg_reported"].nunique() == 1
    assert g["avg_reported"].iloc[0] == pytest.approx(HEADLINE[key], abs=1e-9)
    # the mean of the printed per-language numbers rounds to the printed average
    assert g["score"].mean() == pytest.approx(HEADLINE[key], abs=0.1)


def test_every_group_has_all_languages(pub):
    for (model, inter, task, metric), g in pub.groupby(["model", "intermediate", "task", "metric"]):
        assert set(g["lang"]) == TASK_LANGS[task], (model, inter, task, metric)
        assert len(g) == len(TASK_LANGS[task])


def test_every_avg_reported_is_consistent(pub):
    """Groups beyond HEADLINE (future X-STILTs rows) must also recompute to their average."""
    for key, g in pub.groupby(["model", "intermediate", "task", "metric"]):
        assert abs(g["score"].mean() - g["avg_reported"].iloc[0]) <= 0.1, key


def test_spot_values_from_the_papers(pub):
    def val(model, task, metric, lang):
        sel = pub[(pub["model"] == model) & (pub["task"] == task) & (pub["metric"] == metric)
                  & (pub["lang"] == lang) & (pub["intermediate"] == "none")]
        return float(sel["score"].iloc[0])
    assert val("xlmr-large", "xnli", "accuracy", "en") == 89.1
    assert val("xlmr-large", "xnli", "accuracy", "sw") == 73.9
    assert val("xlmr-large", "mlqa", "f1", "hi") == 69.2   # not 62.9 as one reprint has it
    assert val("xlmr-base", "mlqa", "em", "zh") == 39.3


def test_sizes_and_families(pub):
    sizes = pub.groupby("model")["size_params"].first().to_dict()
    assert sizes["xlmr-base"] == 270_000_000 and sizes["xlmr-large"] == 550_000_000
    assert set(pub["family"]) <= {"encoder", "encoder-decoder"}


def test_validation_names_the_bad_line(pub):
    bad = pub.copy()
    bad.loc[3, "lang"] = "xx"
    with pytest.raises(ValueError, match=r"line 5 .*'xx'"):
        validate_published(bad)
    dup = pd.concat([pub, pub.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="repeats the key"):
        validate_published(dup)
    wrong_metric = pub.copy()
    wrong_metric.loc[0, "metric"] = "f1"   # row 0 is XNLI
    with pytest.raises(ValueError, match="not reported for 'xnli'"):
        validate_published(wrong_metric)


def test_scores_table_feeds_robustness(pub):
    scores = to_scores_table(pub)
    assert list(scores.columns) == list(R.SCORE_COLUMNS)
    assert (scores["seed"] == 0).all() and scores["n"].isna().all()
    stats = R.language_stats(scores)
    large = stats[(stats["model"] == "xlmr-large") & (stats["target"] == "xnli")].iloc[0]
    assert large["avg"] == pytest.approx(80.9, abs=0.1)
    assert large["en"] == 89.1
    assert large["worst_lang"] == "ur" and large["worst_score"] == 73.8
    # published gap: 89.1 - mean of the 14 others
    others = pub[(pub["model"] == "xlmr-large") & (pub["task"] == "xnli") & (pub["lang"] != "en")]
    assert large["gap"] == pytest.approx(89.1 - others["score"].mean())
    summ = R.summary_table(scores)
    assert len(summ) == pub.groupby(["model", "intermediate", "task", "metric"]).ngroups


# ---- averages only (mT5 and X-STILTs, whose per-language tables are not reachable) -------------

@pytest.fixture(scope="module")
def avgs() -> pd.DataFrame:
    return load_published_averages()


def test_averages_only_rows_match_the_papers_headlines(avgs):
    assert list(avgs.columns) == list(AVG_COLUMNS)
    got = {(r.model, r.intermediate, r.task, r.metric): r.avg for r in avgs.itertuples()}
    checked = 0
    for key, value in HEADLINE.items():
        if key in got:
            assert got[key] == pytest.approx(value, abs=1e-9), key
            checked += 1
    assert checked == 5   # the five mT5 XNLI averages the issue quotes
    sizes = avgs.groupby("model")["size_params"].first()
    assert list(sizes[["mt5-small", "mt5-base", "mt5-large", "mt5-xl", "mt5-xxl"]]) == sorted(sizes[
        ["mt5-small", "mt5-base", "mt5-large", "mt5-xl", "mt5-xxl"]])


def test_models_with_per_language_rows_are_not_repeated_as_averages(pub, avgs):
    assert not set(pub["model"]) & set(avgs["model"])


def test_averages_validation_names_file_and_line(avgs):
    bad = avgs.copy()
    bad.loc[2, "avg"] = 812.0
    with pytest.raises(ValueError, match=r"published_averages.csv line 4 .*outside 0..100"):
        validate_published_averages(bad)
    dup = pd.concat([avgs, avgs.iloc[[0]]], ignore_index=True)
    with pytest.raises(ValueError, match="published_averages.csv.*repeats the key"):
        validate_published_averages(dup)


def _avg_row(model, size, avg, source, intermediate="none", task="xnli", metric="accuracy",
             family="encoder-decoder"):
    return dict(model=model, family=family, size_params=size, intermediate=intermediate, task=task,
                metric=metric, avg=avg, source=source)


def test_size_change_compares_within_one_paper_only():
    avgs = pd.DataFrame([
        _avg_row("a-s", 1, 60.0, "Paper A 2020 (x), Table 1"),
        _avg_row("a-m", 2, 58.0, "Paper A 2020 (x), Table 1"),
        _avg_row("a-l", 3, 70.0, "Paper A 2020 (x), Table 1"),
        _avg_row("b-xl", 4, 99.0, "Paper B 2021 (y), Table 2"),   # one model of its paper: no ladder
    ])
    pub = pd.DataFrame(columns=list(COLUMNS))
    out = average_size_change(average_table(pub, avgs))
    assert len(out) == 1
    r = out.iloc[0]
    assert (r["paper"], r["small"], r["large"], r["n_models"]) == ("Paper A 2020", "a-s", "a-l", 3)
    assert r["change"] == pytest.approx(10.0)
    assert not r["monotone"]   # 60 -> 58 -> 70


def test_gain_from_averages_flags_runs_from_different_papers():
    avgs = pd.DataFrame([
        _avg_row("m", 1, 70.0, "Base et al. 2020 (x)"),
        _avg_row("m", 1, 71.5, "Other et al. 2020 (y)", intermediate="mnli"),
    ])
    g = average_gains(average_table(pd.DataFrame(columns=list(COLUMNS)), avgs))
    assert len(g) == 1
    assert g.iloc[0]["gain"] == pytest.approx(1.5)
    assert not g.iloc[0]["same_paper"]


def test_published_x_stilts_and_mt5_ladder(pub, avgs):
    table = average_table(pub, avgs)
    ladders = average_size_change(table).set_index(["paper", "task"])
    assert ladders.loc[("Xue et al. 2021", "xnli"), "change"] == pytest.approx(85.0 - 67.5)
    assert ladders.loc[("Conneau et al. 2020", "xnli"), "change"] == pytest.approx(80.9 - 76.2)
    assert ladders["monotone"].all()
    g = average_gains(table).set_index("task")
    assert g.loc["xnli", "gain"] == pytest.approx(80.4 - 79.2)
    assert not g["same_paper"].any()
