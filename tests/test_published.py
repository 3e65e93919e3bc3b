"""The published numbers: complete per task, consistent with the papers' own averages."""
from __future__ import annotations

import numpy as np
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


# ---- the full-scale analysis ---------------------------------------------------------------------
from xlt_helpers import published as P  # noqa: E402


def _long(table: dict[str, dict[str, float]]) -> pd.DataFrame:
    return pd.DataFrame([dict(model=m, lang=lang, score=s) for m, d in table.items() for lang, s in d.items()])


def test_reproduces_the_issue_gaps(pub):
    """English minus the mean of the other languages, from the printed per-language rows (issue 12)."""
    gaps = P.transfer_gaps(pub).set_index(["task", "metric", "model"])["gap"].round(1)
    mt5 = [f"mt5-{s}" for s in ("small", "base", "large", "xl", "xxl")]
    assert [gaps[("xnli", "accuracy", m)] for m in mt5] == [13.0, 10.0, 8.9, 8.3, 7.1]
    assert [gaps[("mlqa", "f1", m)] for m in mt5] == [26.3, 20.2, 16.0, 14.0, 12.5]
    assert gaps[("xnli", "accuracy", "xlmr-large-xtreme")] == 10.1
    assert gaps[("mlqa", "f1", "xlmr-large-xtreme")] == 13.9


def test_transfer_gap_table_by_hand():
    rows = []
    for lang, s in {"en": 90.0, "de": 80.0, "sw": 70.0}.items():
        rows.append(dict(model="m", family="encoder", size_params=1, intermediate="none", task="xnli",
                         metric="accuracy", lang=lang, score=s, avg_reported=80.0, source="Doe et al. 2020 (x), T1"))
    g = P.transfer_gaps(pd.DataFrame(rows)).iloc[0]
    # others mean 75, gap 15, relative 15/90, worst sw, population SD of (90, 80, 70) = 8.165
    assert (g["en"], g["others_mean"], g["gap"], g["worst_lang"], g["paper"]) == (90.0, 75.0, 15.0, "sw", "Doe et al. 2020")
    assert g["rel_gap"] == pytest.approx(15 / 90) and g["std_langs"] == pytest.approx(8.16497, abs=1e-4)


def test_model_sizes_use_the_architecture_of_a_rerun():
    s = P.model_sizes(["xlmr-large-xtreme", "mt5-small"]).set_index("model")
    assert s.loc["xlmr-large-xtreme", "architecture"] == "xlmr-large"
    assert s.loc["xlmr-large-xtreme", "paper_total"] == 550_000_000
    assert s.loc["mt5-small", "non_embedding"] == 44_061_696


def test_ladders_keep_one_paper_per_line(pub):
    lad = P.ladders(pub)
    assert lad == {("encoder", "Conneau et al. 2020"): ["xlmr-base", "xlmr-large"],
                   ("encoder-decoder", "Xue et al. 2021"): [f"mt5-{s}" for s in ("small", "base", "large", "xl", "xxl")]}


def test_gap_size_fit_by_hand():
    # family A: gaps 10 (x=1) and 6 (x=2): slope -4. Family B: gaps 12, 9, 6 at x = 1, 2, 3: slope -3.
    # With the two other languages equally far from their mean in every model, no resample moves the
    # gaps much; the slopes must come out exactly.
    long = _long({"a1": {"en": 90, "de": 81, "sw": 79}, "a2": {"en": 90, "de": 85, "sw": 83},
                  "b1": {"en": 80, "de": 69, "sw": 67}, "b2": {"en": 80, "de": 72, "sw": 70},
                  "b3": {"en": 80, "de": 75, "sw": 73}})
    x = {"a1": 1.0, "a2": 2.0, "b1": 1.0, "b2": 2.0, "b3": 3.0}
    fits, diff = P.gap_size_fit(long, {"A": ["a1", "a2"], "B": ["b1", "b2", "b3"]}, x, n_boot=500)
    f = fits.set_index("family")
    assert f.loc["A", "slope"] == pytest.approx(-4.0) and f.loc["B", "slope"] == pytest.approx(-3.0)
    assert f.loc["A", "intercept"] == pytest.approx(14.0) and f.loc["B", "intercept"] == pytest.approx(15.0)
    # every resample shifts each model's others-mean by the same amount (de - sw is 2 everywhere), so the
    # slopes do not move: the intervals collapse onto the point estimates
    assert (f.loc["A", "slope_lo"], f.loc["A", "slope_hi"]) == pytest.approx((-4.0, -4.0))
    assert diff["diff"] == pytest.approx(1.0) and (diff["diff_lo"], diff["diff_hi"]) == pytest.approx((1.0, 1.0))
    with pytest.raises(ValueError, match="two or more models"):
        P.gap_size_fit(long, {"A": ["a1"]}, x)


def test_gap_size_fit_interval_widens_when_languages_disagree():
    # sw's gap shrinks with size, de's does not: the slope depends on which languages are drawn
    long = _long({"s": {"en": 90, "de": 85, "sw": 60}, "l": {"en": 90, "de": 85, "sw": 80}})
    fits, _ = P.gap_size_fit(long, {"F": ["s", "l"]}, {"s": 0.0, "l": 1.0}, n_boot=2000)
    r = fits.iloc[0]
    assert r["slope"] == pytest.approx(-10.0)          # gaps 17.5 -> 7.5
    assert r["slope_lo"] == pytest.approx(-20.0) and r["slope_hi"] == pytest.approx(0.0)   # all-sw / all-de draws


def test_equal_size_comparison_picks_nearest_on_log_scale():
    sizes = pd.DataFrame({"model": ["x", "a", "b"], "total": [100, 190, 40], "non_embedding": [50, 60, 30]})
    assert P.nearest_in_size(sizes, "x", ["a", "b"], "total") == "a"       # 1.9x vs 2.5x
    assert P.nearest_in_size(sizes, "x", ["a", "b"], "non_embedding") == "a"
    long = _long({"x": {"en": 90, "de": 80, "sw": 70}, "a": {"en": 90, "de": 84, "sw": 76},
                  "b": {"en": 80, "de": 70, "sw": 60}})
    out = P.equal_size_comparison(long, sizes, "x", ["a", "b"], n_boot=200).set_index("criterion")
    assert out.loc["total", "nearest"] == "a"
    assert (out.loc["total", "gap_model"], out.loc["total", "gap_nearest"]) == pytest.approx((15.0, 10.0))
    assert out.loc["total", "diff"] == pytest.approx(-5.0)


def test_catch_up_by_hand():
    small = {"en": 80.0, "de": 70.0, "sw": 60.0, "fr": 85.0}
    large = {"en": 90.0, "de": 85.0, "sw": 75.0, "fr": 90.0}
    out = P.catch_up(small, large, {"de": 3.0, "sw": 0.5}).set_index("lang")
    assert out.loc["de", "closed"] == pytest.approx(0.5)     # gap 10 -> 5
    assert out.loc["sw", "closed"] == pytest.approx(0.25)    # gap 20 -> 15
    assert np.isnan(out.loc["fr", "closed"]) and np.isnan(out.loc["fr", "share"])   # fr beat English: nothing to close


def test_translate_train_closure_by_hand():
    zs = _long({"m": {"en": 90, "de": 80, "sw": 70}})
    tt = _long({"m": {"en": 91, "de": 85, "sw": 79}})
    r = P.translate_train_closure(zs, tt).iloc[0]
    # zero-shot gap 15; others 75 -> 82: closes 7/15; translate-train's own gap 91 - 82 = 9
    assert (r["gap_zs"], r["others_tt"], r["gap_tt"]) == pytest.approx((15.0, 82.0, 9.0))
    assert r["closed"] == pytest.approx(7 / 15)


def test_translate_train_closes_less_of_the_gap_as_mt5_grows(pub):
    tt = P.load_translate_train()
    out = P.translate_train_closure(pub[(pub["task"] == "xnli")], tt[tt["task"] == "xnli"]).set_index("model")
    # Xue et al. Table 7: mT5-Small others 66.62 -> 71.58 of a 12.98 gap; mT5-XXL 84.54 -> 86.68 of 7.06
    assert out.loc["mt5-small", "closed"] == pytest.approx((71.58 - 66.62) / 12.98, abs=0.002)
    assert out.loc["mt5-xxl", "closed"] == pytest.approx((86.68 - 84.54) / 7.06, abs=0.002)


def test_xstilts_gains_and_average_check():
    xs = load_xstilts()
    chk = P.xstilts_average_check(xs)
    assert chk.loc[~chk["consistent"], ["intermediate", "mlm"]].values.tolist() == [["QQP", "yes"]]
    bad = chk[~chk["consistent"]].iloc[0]
    assert (bad["printed"], round(bad["recomputed"], 1)) == (72.3, 74.3)
    g = P.xstilts_gains(xs)
    xnli = g[(g["target"] == "xnli") & (g["mlm"] == "no")].set_index("intermediate")
    assert xnli.loc["HellaSwag", "gain"] == -0.3 and xnli.loc["HellaSwag", "rank"] == 1
    assert xnli.loc["SQuAD", "task"] == "squad" and xnli.loc["CSQA", "task"] == "commonsenseqa"
    mlqa = g[(g["target"] == "mlqa") & (g["metric"] == "f1") & (g["mlm"] == "no")].set_index("intermediate")
    assert mlqa.loc["SQuAD", "gain"] == 1.9 and mlqa.loc["SQuAD", "rank"] == 1


def test_compare_with_reference_by_hand():
    xg = pd.DataFrame([dict(intermediate="SQuAD", task="squad", mlm="no", target="xnli", metric="accuracy", gain=-1.4),
                       dict(intermediate="HellaSwag", task="hellaswag", mlm="no", target="xnli", metric="accuracy",
                            gain=-0.3),
                       dict(intermediate="CCG", task=None, mlm="no", target="xnli", metric="accuracy", gain=-2.6),
                       dict(intermediate="SQuAD", task="squad", mlm="yes", target="xnli", metric="accuracy", gain=9.0)])
    ref = pd.DataFrame([dict(model="m", intermediate="squad", target="xnli", metric="accuracy", gain_avg=2.0),
                        dict(model="m", intermediate="hellaswag", target="xnli", metric="accuracy", gain_avg=-1.0),
                        dict(model="m", intermediate="sst2", target="xnli", metric="accuracy", gain_avg=5.0),
                        dict(model="m", intermediate="none", target="xnli", metric="accuracy", gain_avg=float("nan"))])
    out = P.compare_with_reference(xg, ref).set_index("task")
    assert list(out.index) == ["hellaswag", "squad"]          # shared tasks only, by X-STILTs rank
    assert out.loc["squad", "xstilts_gain"] == -1.4           # the no-MLM row
    assert list(out["same_sign"]) == [True, False]
    assert (out.loc["squad", "xstilts_rank"], out.loc["squad", "reference_rank"]) == (2, 1)
    assert (out["n_tasks"] == 2).all()
    # nothing shared: an empty table that still has its columns (the book then says so)
    none = P.compare_with_reference(xg, ref[ref["intermediate"] == "sst2"], primary_only=True)
    assert none.empty and {"model", "same_sign", "n_tasks"} <= set(none.columns)
    assert P.reference_agreement(none).empty
