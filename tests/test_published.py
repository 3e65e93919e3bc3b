"""The published numbers: complete per task, consistent with the papers' own averages."""
from __future__ import annotations

import pandas as pd
import pytest

from xlt_helpers import robustness as R
from xlt_helpers.published import (AVG_COLUMNS, COLUMNS, average_gains, average_size_change, average_table,
                                   load_mc4, load_published, load_published_averages, load_translate_train,
                                   load_xstilts, to_scores_table, validate_mc4, validate_published,
                                   validate_published_averages, validate_xstilts)
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
    # mT5 zero-shot (Xue et al. 2021, Appendix B, Tables 7 and 11: the appendix's printed averages;
    # two differ from the main-body Table 2, see MAIN_TABLE_CONFLICTS)
    ("mt5-small", "none", "xnli", "accuracy"): 67.5,
    ("mt5-base", "none", "xnli", "accuracy"): 75.4,
    ("mt5-large", "none", "xnli", "accuracy"): 81.1,
    ("mt5-xl", "none", "xnli", "accuracy"): 82.9,
    ("mt5-xxl", "none", "xnli", "accuracy"): 85.0,
    ("mt5-small", "none", "mlqa", "f1"): 54.6,
    ("mt5-base", "none", "mlqa", "f1"): 64.4,
    ("mt5-large", "none", "mlqa", "f1"): 71.2,
    ("mt5-xl", "none", "mlqa", "f1"): 73.5,
    ("mt5-xxl", "none", "mlqa", "f1"): 76.0,
    ("mt5-small", "none", "mlqa", "em"): 37.1,
    ("mt5-base", "none", "mlqa", "em"): 45.0,
    ("mt5-large", "none", "mlqa", "em"): 51.7,
    ("mt5-xl", "none", "mlqa", "em"): 54.4,
    ("mt5-xxl", "none", "mlqa", "em"): 57.4,
    # XLM-R Large as run by the XTREME authors, printed beside mT5 (Xue et al. 2021, Tables 7 and 11)
    ("xlmr-large-xtreme", "none", "xnli", "accuracy"): 79.2,
    ("xlmr-large-xtreme", "none", "mlqa", "f1"): 71.6,
    ("xlmr-large-xtreme", "none", "mlqa", "em"): 53.2,
}
# (appendix, main-body Table 2): the per-language rows recompute to the appendix figure
MAIN_TABLE_CONFLICTS = {("mt5-base", "none", "mlqa", "f1"): (64.4, 64.6),
                        ("mt5-xl", "none", "mlqa", "em"): (54.4, 54.5)}
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
    assert not g.empty, f"{key}: no per-language rows in published.csv"
    assert g["avg_reported"].nunique() == 1
    assert g["avg_reported"].iloc[0] == pytest.approx(HEADLINE[key], abs=1e-9)
    # the mean of the printed per-language numbers rounds to the printed average
    assert g["score"].mean() == pytest.approx(HEADLINE[key], abs=0.1)


@pytest.mark.parametrize("key", sorted(MAIN_TABLE_CONFLICTS), ids=lambda k: "-".join(k))
def test_mt5_appendix_vs_main_table_conflicts(pub, key):
    appendix, main = MAIN_TABLE_CONFLICTS[key]
    model, inter, task, metric = key
    g = pub[(pub["model"] == model) & (pub["intermediate"] == inter) & (pub["task"] == task) & (pub["metric"] == metric)]
    assert g["avg_reported"].iloc[0] == appendix
    mean = g["score"].mean()
    assert round(mean, 1) == appendix and abs(mean - appendix) < abs(mean - main)


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
    assert val("mt5-small", "xnli", "accuracy", "sw") == 59.7     # Xue et al. 2021, Table 7
    assert val("mt5-xxl", "mlqa", "f1", "hi") == 75.6             # Xue et al. 2021, Table 11
    assert val("mt5-xl", "xnli", "accuracy", "es") == 81.3        # printed so (below its fr 85.3)


def test_sizes_and_families(pub):
    sizes = pub.groupby("model")["size_params"].first().to_dict()
    assert sizes["xlmr-base"] == 270_000_000 and sizes["xlmr-large"] == 550_000_000
    assert [sizes[f"mt5-{s}"] for s in ("small", "base", "large", "xl", "xxl")] == [
        300_000_000, 580_000_000, 1_200_000_000, 3_700_000_000, 13_000_000_000]
    assert sizes["xlmr-large-xtreme"] == 550_000_000
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


def test_averages_only_rows_are_x_stilts_table_2(avgs):
    """The two remaining averages-only rows (X-STILTs' best task per target, test) are the Table 2
    figures: one fact, cross-checked against its resource."""
    assert list(avgs.columns) == list(AVG_COLUMNS)
    xs = load_xstilts()
    best = xs[xs["intermediate"] == "best-per-target"].set_index(["target", "metric"])["score"]
    assert len(avgs) == 2
    for r in avgs.itertuples():
        assert r.intermediate == "best-per-target"
        assert r.avg == best[(r.task, r.metric)]


def test_per_language_groups_are_not_repeated_as_averages(pub, avgs):
    keys = ["model", "intermediate", "task", "metric"]
    both = pub[keys].drop_duplicates().merge(avgs[keys], on=keys)
    assert both.empty, both


def test_averages_validation_names_file_and_line(avgs):
    bad = avgs.copy()
    bad.loc[1, "avg"] = 812.0
    with pytest.raises(ValueError, match=r"published_averages.csv line 3 .*outside 0..100"):
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


# ---- translate-train, mC4, X-STILTs resources --------------------------------------------------

def test_translate_train_is_separate_and_complete(pub):
    tt = load_translate_train()
    assert list(tt.columns) == list(COLUMNS)
    assert len(tt) == 5 * (15 + 7 + 7)
    assert set(tt["model"]) == {f"mt5-{s}" for s in ("small", "base", "large", "xl", "xxl")}
    assert tt["source"].str.contains("translate-train").all()
    assert not pub["source"].str.contains("translate-train").any()
    for key, g in tt.groupby(["model", "task", "metric"]):
        assert abs(g["score"].mean() - g["avg_reported"].iloc[0]) <= 0.075, key
    # spot values (Table 7): mT5-XXL XNLI sw, translate-train vs zero-shot of the same size
    def sw(df):
        return float(df.loc[(df["model"] == "mt5-xxl") & (df["task"] == "xnli") & (df["lang"] == "sw"), "score"].iloc[0])
    assert sw(tt) == 83.4 and sw(tt) > sw(pub)


def test_every_row_cites_paper_table_and_page(pub):
    mt5 = pub[pub["model"].str.startswith("mt5") | (pub["model"] == "xlmr-large-xtreme")]
    assert len(mt5) == 6 * (15 + 7 + 7)
    assert mt5["source"].str.contains(r"Xue et al\. 2021 .* Table (?:7|11), p\. 49[56]").all()
    assert (mt5.loc[mt5["model"] == "xlmr-large-xtreme", "source"].str.startswith("Hu et al. 2020")).all()


def test_mc4_shares():
    mc4 = load_mc4()
    assert len(mc4) == 107
    assert mc4["mt5_sampling_pct"].sum() == pytest.approx(100.0, abs=0.05)
    share = mc4.set_index("code")["mt5_sampling_pct"]
    assert (share["en"], share["sw"], share["ur"]) == (5.67, 0.50, 0.61)
    bad = mc4.copy()
    bad.loc[0, "mt5_sampling_pct"] = 15.67
    with pytest.raises(ValueError, match="sums to 110"):
        validate_mc4(bad)


def _xstilts_avg(xs: pd.DataFrame) -> pd.Series:
    """Table 2's average column recomputed: mean over the 9 targets, a QA target as the mean of F1 and EM."""
    t = xs[xs["target"] != "avg"]
    per_target = t.groupby(["intermediate", "mlm", "row", "target"])["score"].mean()
    return per_target.groupby(["intermediate", "mlm", "row"]).mean()


def test_xstilts_average_column_recomputes_except_qqp_with_mlm():
    xs = load_xstilts()
    assert len(xs) == 260
    avg = xs[xs["target"] == "avg"].set_index(["intermediate", "mlm", "row"])["score"]
    recomputed = _xstilts_avg(xs)
    off = {k: (avg[k], round(recomputed[k], 2)) for k in avg.index if abs(avg[k] - recomputed[k]) > 0.1}
    # the one printed inconsistency: "QQP, with MLM" prints Avg 72.3 (+5.1) but its cells give +7.1
    assert list(off) == [("QQP", "yes", "dev mean over the target's languages")], off
    base = avg[("none", "", "XLM-R (Ours), the baseline")]
    assert base == 67.2 and recomputed[("QQP", "yes", "dev mean over the target's languages")] - base == \
        pytest.approx(7.1, abs=0.06)
    assert avg[("none", "", "XTREME's XLM-R Large (test)")] == 68.1
    assert recomputed[("none", "", "XTREME's XLM-R Large (test)")] == pytest.approx(68.1, abs=0.05)


def test_xstilts_validation_catches_a_typo():
    xs = load_xstilts()
    raw = xs.assign(delta=xs["delta"].map(lambda d: "" if pd.isna(d) else str(d)))
    bad = raw.copy()
    i = bad.index[(bad["intermediate"] == "SQuAD") & (bad["mlm"] == "no") & (bad["target"] == "xnli")][0]
    bad.loc[i, "score"] = 99.0
    with pytest.raises(ValueError, match=r"line \d+ \('SQuAD', mlm 'no', 'xnli'.*!= baseline"):
        validate_xstilts(bad)
    bad = raw.copy()
    bad.loc[i, "intermediate"] = "SQUAD"
    with pytest.raises(ValueError, match="intermediate 'SQUAD' not in"):
        validate_xstilts(bad)
