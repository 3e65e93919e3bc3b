"""The grid-analysis sections on the synthetic results folder of conftest.py (not study results)."""
from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from xlt_helpers import analysis, robustness, statements
from xlt_helpers.results import Results, load_results
from xlt_helpers.tasks import primary_metric


def test_sections_and_statements(tmp_path, synthetic_results):
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    a = analysis.analyse(res, n_boot=50)
    assert a.targets == ["xnli", "mlqa"]
    assert len(analysis.gain_heatmaps(a)) == 2 and len(analysis.summary_tables(a)) == 2 * 3  # mlqa: f1 and em
    assert statements.near_chance_statements(a) == []                  # synthetic accuracies sit near 55-70
    sizes = statements.size_statements(a)
    assert len(sizes) == 4 and all("[" in s and "95% level" in s for s in sizes)   # 2 targets x 2 families
    families = statements.family_statements(a)             # 2 targets x (L3, L6) depth pairs
    assert len(families) == 4 and all("(encoder-decoder)" in s and s.count("95% level") == 2 for s in families)
    assert statements.depth_pairs(["e5-L3", "e5-L6", "e5ed-L3", "tiny-xlmr", "not-a-model"]) == [("e5-L3", "e5ed-L3")]
    # decisiveness: one headline per target, then one line per model with the examples a ±target would need
    dec = statements.decisiveness_statements(a)
    heads = [line for line in dec if line.startswith("- **")]
    assert [h.split(" (")[0] for h in heads] == ["- **XNLI", "- **MLQA"] and all("median half-width ±" in h for h in heads)
    d = analysis.decisiveness(a)
    assert len(dec) == len(heads) + len(d) and (d["median_half_width"] > 0).all()
    (brief,) = statements.decisiveness_brief(a)       # synthetic: 10 examples, half-widths far above ±1.5 / ±3
    assert brief.count("(missed") == 2 and brief.count("seeds per arm that would meet it") == 2
    assert (d["seeds_needed"] >= 1).all() and all("seeds per arm for ±" in line for line in dec if line.startswith("  - "))
    # the synthetic grid has 2 tasks per model: the change of the difficulty slope with size has no interval
    slopes = statements.slope_change_statements(a)
    assert len(slopes) == len(analysis.slope_changes(a)) > 0
    assert all("no interval (undefined" in line and "has 2 task(s)" in line for line in slopes)

    low = res.scores.copy()
    pick = (low["model"] == "e5-L3") & (low["intermediate"] == "none") & (low["target"] == "xnli") & (low["lang"] == "en")
    low.loc[pick, "score"] = 35.0
    a_low = analysis.analyse(Results(res.dir, low, res.per_example, res.intermediate, res.meta, ()), n_boot=20)
    (line,) = statements.near_chance_statements(a_low)
    assert "`e5-L3` on XNLI" in line and "35.0" in line and "33.3" in line

    # one collapsed seed inside a healthy mean is named with its seed
    one = res.scores.copy()
    seed0 = pick & (one["seed"] == one.loc[pick, "seed"].min())
    assert seed0.sum() == 1 and one.loc[pick & ~seed0, "score"].min() > 45
    one.loc[seed0, "score"] = 34.0
    one.loc[pick & ~seed0, "score"] = 80.0       # mean 57: not near chance as a model
    a_one = analysis.analyse(Results(res.dir, one, res.per_example, res.intermediate, res.meta, ()), n_boot=20)
    (line,) = statements.near_chance_statements(a_one)
    assert "`e5-L3` on XNLI" in line and "seed 0 34.0" in line and "80.0" in line and "failed to learn" in line

    # a family with one size says so in the words of the brief ("one size"), not as work in progress
    no_l6 = res.scores[res.scores["model"] != "e5ed-L6"]
    a_one_size = analysis.analyse(Results(res.dir, no_l6, res.per_example, res.intermediate, res.meta, ()), n_boot=20)
    lines = statements.size_statements(a_one_size)
    assert [s for s in lines if "encoder-decoder" in s] == [
        f"- {t}, encoder-decoder: one size (`e5ed-L3`) has results, so no size contrast." for t in ("XNLI", "MLQA")]


def test_decisiveness_names_runs_whose_seed_spread_differs(tmp_path, synthetic_results):
    """The pooled seed variance assumes a model's runs vary alike over seeds. e5-L3's XNLI runs are made
    steady (every language 60 at seed 0, 60.5 at seed 1: SD 0.35) but for one task whose seed 0 loses 20
    points everywhere (40 against 60.5: SD 20.5 / sqrt 2 = 14.5). Bartlett over 3 runs of 2 seeds: variances
    0.125, 0.125, 210.1, pooled 70.1, T = [3 ln 70.1 - ln 0.125^2 - ln 210.1] / (1 + (3 - 1/3) / 6) = 8.0
    on 2 df, p = e^-4 = 0.018; the model's line names each run's SD."""
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    sc = res.scores.copy()
    runs = (sc["model"] == "e5-L3") & (sc["target"] == "xnli")
    sc.loc[runs, "score"] = 60.0 + 0.5 * sc.loc[runs, "seed"]
    task = sorted(sc.loc[runs & (sc["intermediate"] != "none"), "intermediate"].unique())[0]
    sc.loc[runs & (sc["intermediate"] == task) & (sc["seed"] == 0), "score"] -= 20.0
    a = analysis.analyse(Results(res.dir, sc, res.per_example, res.intermediate, res.meta, ()), n_boot=20)
    row = analysis.decisiveness(a).set_index(["target", "model"]).loc[("xnli", "e5-L3")]
    assert row["seed_homogeneity_stat"] == pytest.approx(8.0, abs=0.05)
    assert row["seed_homogeneity_p"] == pytest.approx(0.018, abs=0.001)
    (line,) = [x for x in statements.decisiveness_statements(a) if x.startswith("  - `e5-L3`") and "Bartlett" in x]
    assert f"{task} 14.5" in line and "none 0.4" in line and "p = 0.018" in line and "averages them" in line
    # and the conclusion's brief names it as a finding: the baseline's SD, then each task's, largest first
    (brief,) = [x for x in statements.seed_stability_brief(a) if "`e5-L3` on XNLI" in x]
    assert "0.4 without an intermediate task, after each task " + f"{task} 14.5" in brief
    assert brief in statements.brief_statements(a)


def test_seed_spread_shows_each_seed_and_names_the_failures_it_leaves_out(tmp_path, synthetic_results):
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    a = analysis.analyse(res, n_boot=20)
    pts = analysis.seed_points(a, "xnli")
    one = res.scores[(res.scores["target"] == "xnli") & (res.scores["metric"] == "accuracy")
                     & (res.scores["model"] == "e5-L3") & (res.scores["intermediate"] == "none") & (res.scores["seed"] == 0)]
    got = pts[(pts["model"] == "e5-L3") & (pts["intermediate"] == "none") & (pts["seed"] == 0)]["score"]
    assert got.tolist() == pytest.approx([one["score"].mean()])             # the seed's cross-language mean
    items = analysis.seed_spread(a)
    assert len(items) == 2 and all(hasattr(f, "data") for f in items)        # one figure per target, nothing failed
    failed = pd.DataFrame([{"model": "e5-L3", "intermediate": "sst2", "target": "xnli", "seed": 1, "en": 40.2}])
    with_failed = analysis.Analysis(a.res, a.targets, a.summary, a.difficulty, a.components, a.n_boot, failed)
    notes = [i.data for i in analysis.seed_spread(with_failed) if not hasattr(i, "layout")]
    assert notes == ["<p>Not shown, left out as failures to learn (methods: floors): e5-L3 + sst2, seed 1 "
                     "(English 40.2).</p>"]


def test_published_average_statements_say_what_an_average_cannot_show():
    def row(model, size, avg, source, intermediate="none", metric="accuracy", per_language=False):
        return dict(model=model, family="encoder-decoder", size_params=size, intermediate=intermediate,
                    task="xnli", metric=metric, avg=avg, source=source, per_language=per_language,
                    paper=source.split(" (")[0])
    table = pd.DataFrame([
        row("s", 1, 60.0, "Xue et al. 2021 (a)"), row("m", 2, 65.0, "Xue et al. 2021 (a)"),
        row("l", 3, 64.0, "Xue et al. 2021 (a)"),
        row("l", 3, 66.0, "Phang et al. 2020 (b)", intermediate="mnli"),
    ])
    lines = statements.published_average_statements(table)
    assert len(lines) == 2
    assert "60.0 → 64.0" in lines[0] and "+4.0 points over 3 sizes, not rising at every step" in lines[0]
    assert "not the transfer gap" in lines[0]
    assert "+2.0 points" in lines[1] and "not a controlled gain" in lines[1]
    # a non-primary metric is left to the tables, not the conclusion
    assert statements.published_average_statements(table.assign(task="mlqa", metric="em")) == []
    assert len(statements.published_average_statements(table.assign(task="mlqa", metric="f1"))) == 2


def test_size_steps_are_adjacent_then_end_to_end():
    assert analysis.size_steps(["s"]) == []
    assert analysis.size_steps(["s", "m"]) == [("s", "m")]
    assert analysis.size_steps(["s", "m", "l"]) == [("s", "m"), ("m", "l"), ("s", "l")]


def test_v_information_statements_need_recorded_bits(tmp_path, synthetic_results):
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    a = analysis.analyse(res, n_boot=20)
    assert statements.v_information_statements(a) == [
        "- No phase-1 run recorded V-usable information, so this measure is not available."]
    inter = res.intermediate.copy()
    # stand-in bits = 1 - difficulty (chance-normalised score): V-information measures *ease*
    inter["v_info_bits"] = (inter["score"] - inter["chance"]) / (100.0 - inter["chance"])
    with_v = Results(res.dir, res.scores, res.per_example, inter, res.meta, ())
    a_v = analysis.analyse(with_v, n_boot=20)
    assert a_v.difficulty["v_info_bits"].notna().all()
    lines = statements.v_information_statements(a_v)
    corr = analysis.v_information_correlations(a_v)
    primary = corr[corr["metric"] == corr["target"].map(primary_metric)]
    assert len(lines) == len(primary) > 0 and all(line.startswith("- `") for line in lines)
    # the synthetic grid has two intermediate tasks per model: too few for a correlation, and it says so
    assert (primary["n"] == 2).all() and all("needs at least 3" in line for line in lines)


def test_brief_names_exactly_the_significant_findings_and_counts_the_rest(tmp_path, synthetic_results):
    # enough examples and seeds that the planted gains (sst2 +4, udpos -3 points) clear their intervals: a run's
    # own seed variance is measured on the run x seed interaction, (R - 1)(S - 1) df, 2 at 3 runs x 2 seeds
    res = load_results(synthetic_results(tmp_path / "r", n_examples=400, seeds=(0, 1, 2), with_runs=False))
    a = analysis.analyse(res, n_boot=200)
    brief = statements.brief_statements(a)
    assert [line.split(":**")[0] for line in brief] == [
        "- **Size × task difficulty, the study's question", "- **Intermediate tasks", "- **Model size", "- **Model family (encoder → encoder-decoder)",
        "- **Gain vs score-based difficulty",        # no V-information recorded in the synthetic results
        "- **How decisive"]

    primary = a.summary[(a.summary["metric"] == a.summary["target"].map(primary_metric))
                        & (a.summary["intermediate"] != "none")]
    sig = primary[(primary["gain_avg_lo"] > 0) | (primary["gain_avg_hi"] < 0)]
    pos, neg = sig[sig["gain_avg"] > 0], sig[sig["gain_avg"] < 0]
    assert len(pos) > 0 and len(neg) > 0 and set(pos["intermediate"]) == {"sst2"} and set(neg["intermediate"]) == {"udpos"}
    central, brief = brief[0], brief[1:]       # the study's question comes first (issue 16)
    assert central.count("(no interval: small model has 2 task(s)") == len(analysis.slope_changes(a)) > 0   # 2 tasks per model
    tasks = brief[0]
    assert (f"of {len(primary)} gains" in tasks and f"{len(pos)} are significantly positive and {len(neg)} "
            "significantly negative" in tasks)
    for r in sig.itertuples():                       # each named once, with its own interval
        named = f"`{r.model}` + {r.intermediate} on {r.target.upper()} {r.gain_avg:+.1f} [{r.gain_avg_lo:+.1f}, "
        assert tasks.count(named) == 1
    assert tasks.count("`") == 2 * len(sig)          # and nothing else is named

    # the size line counts the same contrasts the detailed statements print, and names the significant ones
    contrasts = statements.size_contrasts(a)
    n_gap_sig = sum((c.result["gap_change_lo"] > 0) or (c.result["gap_change_hi"] < 0) for c in contrasts)
    assert f"the transfer gap changes significantly in {n_gap_sig} of {len(contrasts)} comparisons" in brief[1]
    assert len(statements.size_statements(a)) == len(contrasts) == 4      # 2 targets x 2 families
    xnli = primary[primary["target"] == "xnli"]["gain_avg_hw"]     # the brief's median is the gains' own
    assert f"XNLI (accuracy) ±{xnli.median():.2f} over {len(xnli)} gains against a target of ±1.5" in brief[-1]
    corr = analysis.difficulty_correlations(a)      # 2 tasks per model: rho needs 3, an interval 5
    assert len(corr) == 8 and brief[3].endswith(f"0 of 8 model × target correlations have the "
                                                f"{robustness.MIN_POINTS_FOR_CI} or more tasks an interval needs; 0 exclude 0.")


def test_brief_without_per_example_scores_says_there_is_nothing_to_summarise(tmp_path, synthetic_results):
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    bare = Results(res.dir, res.scores, None, res.intermediate, res.meta, ())
    a = analysis.analyse(bare, n_boot=20)
    assert statements.size_contrasts(a) == [] and statements.family_contrasts(a) == []
    central, *rest = statements.brief_statements(a)    # the slope and correlations need no per-example scores
    assert central.startswith("- **Size × task difficulty, the study's question:**")
    assert [line.split(":**")[0] for line in rest] == ["- **Gain vs score-based difficulty"]
    assert statements.brief_statements(a, central=False) == rest     # the conclusion states it above, once
    nothing = analysis.analyse(Results(res.dir, res.scores, None, None, res.meta, ()), n_boot=20)
    assert statements.brief_statements(nothing) == [
        "- No results with per-example scores yet: no gains or contrasts with intervals to summarise."]


def test_central_statement_names_a_family_with_one_size(tmp_path, synthetic_results):
    res = load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False))
    keep = res.scores["model"] != "e5ed-L6"
    one = Results(res.dir, res.scores[keep], None, res.intermediate, res.meta, ())
    (line,) = statements.central_statements(analysis.analyse(one, n_boot=20))
    assert "encoder-decoders on XNLI: one size (`e5ed-L3`), so no change with size" in line
    assert "encoders `e5-L3` → `e5-L6` on XNLI" in line and "encoders `e5-L3` → `e5-L6` on MLQA" in line


def test_floor_table_holds_every_seed_to_the_floor():
    rows = [("e5-L6", "xnli", "accuracy", 0, 60.0), ("e5-L6", "xnli", "accuracy", 1, 50.0),
            ("e5-L12", "xnli", "accuracy", 0, 70.0), ("e5-L12", "mlqa", "f1", 0, 40.0),
            ("e5-L12", "mlqa", "em", 0, 20.0), ("e5-L12", "pawsx", "accuracy", 0, 80.0)]
    scores = pd.DataFrame([{"model": m, "intermediate": "none", "target": t, "metric": met, "seed": s, "lang": "en",
                            "score": v} for m, t, met, s, v in rows]
                          + [{"model": "e5-L6", "intermediate": "none", "target": "xnli", "metric": "accuracy",
                              "seed": 0, "lang": "de", "score": 10.0},          # not English: not a floor row
                             {"model": "e5-L6", "intermediate": "sst2", "target": "xnli", "metric": "accuracy",
                              "seed": 0, "lang": "en", "score": 10.0}])         # not a baseline
    ft = analysis.floor_table(scores, {"xnli": 55, "mlqa": 35}).set_index(["model", "target"])
    assert list(ft.reset_index().columns) == analysis.FLOOR_COLUMNS and len(ft) == 4    # mlqa EM is not primary
    r = ft.loc[("e5-L6", "xnli")]
    assert (r["en_by_seed"], r["en_mean"], r["en_min"], r["floor"], r["clears"]) == ("60.0 / 50.0", 55.0, 50.0, 55.0, False)
    assert ft.loc[("e5-L12", "xnli"), "clears"] is True and ft.loc[("e5-L12", "mlqa"), "clears"] is True
    assert ft.loc[("e5-L12", "mlqa"), "metric"] == "f1" and ft.loc[("e5-L12", "mlqa"), "en_mean"] == 40.0
    assert pd.isna(ft.loc[("e5-L12", "pawsx"), "floor"]) and ft.loc[("e5-L12", "pawsx"), "clears"] is None


def test_runs_below_floor_names_collapsed_intermediate_seeds_and_their_pull_on_the_gain():
    """Hand-worked: baseline seeds 0/1 score (en, de) = (60, 50) and (62, 52); after sst2, seed 0 collapsed
    to (40, 34), seed 1 (63, 55). Gain over both seeds = mean over languages of (51.5 - 61, 44.5 - 51) =
    (-9.5 - 6.5) / 2 = -8.0; without seed 0 (the baseline keeps both): ((63 - 61) + (55 - 51)) / 2 = +3.0. Seed 1 clears
    the floor of 55, the baseline is not this table's business, and a target without a floor is skipped."""
    vals = {("none", 0): (60, 50), ("none", 1): (62, 52), ("sst2", 0): (40, 34), ("sst2", 1): (63, 55)}
    rows = [{"model": "e5-L12", "intermediate": t, "target": "xnli", "metric": "accuracy", "seed": sd,
             "lang": lang, "score": float(v)} for (t, sd), pair in vals.items() for lang, v in zip(("en", "de"), pair)]
    rows.append({**rows[-1], "target": "pawsx", "score": 1.0})            # no floor for PAWS-X
    # below the floor (55) but above halfway, chance + (61 - 33.3) / 2 = 47.2: worse than the baseline, not failed
    rows += [{**rows[0], "intermediate": "mnli", "seed": 0, "score": 50.0}, {**rows[1], "intermediate": "mnli", "seed": 0}]
    rows.append({**rows[4], "metric": "em", "score": 1.0})               # not the primary metric
    low = analysis.runs_below_floor(pd.DataFrame(rows), {"xnli": 55.0})
    assert list(low.columns) == analysis.BELOW_FLOOR_COLUMNS and len(low) == 1
    r = low.iloc[0]
    assert (r["model"], r["intermediate"], r["seed"], r["en"], r["floor"], r["seeds"]) == ("e5-L12", "sst2", 0, 40.0, 55.0, 2)
    assert r["halfway"] == pytest.approx(100 / 3 + (61 - 100 / 3) / 2)
    assert r["gain_avg"] == pytest.approx(-8.0) and r["gain_avg_without"] == pytest.approx(3.0)
    assert analysis.runs_below_floor(pd.DataFrame(rows), {"xnli": 30.0}).empty
    # the conclusion names it with both gains, and says nothing when every run clears
    (line,) = statements.below_floor_statements(low)
    assert line.startswith("- **Runs that failed to learn:** 1 intermediate-task run seed ended")
    assert "`e5-L12` + sst2 on XNLI, seed 0: English 40.0 (floor 55); mean gain +3.0 without it, -8.0 with it" in line
    assert statements.below_floor_statements(analysis.runs_below_floor(pd.DataFrame(rows), {"xnli": 30.0})) == []
    # the analysis leaves the failed seed out of scores and per-example rows, every metric and language of it
    from xlt_helpers.results import Results
    scores = pd.DataFrame(rows)
    pe = scores.rename(columns={"score": "value"}).assign(example_id="x0")
    res = Results(dir=None, scores=scores, per_example=pe, intermediate=None, meta=None, runs=())
    kept = analysis.without_failed(res, low)
    gone = lambda df: df[(df["intermediate"] == "sst2") & (df["target"] == "xnli") & (df["seed"] == 0)]  # noqa: E731
    assert gone(kept.scores).empty and gone(kept.per_example).empty
    assert len(kept.scores) == len(scores) - 3 and len(kept.per_example) == len(pe) - 3    # en, de and em rows
    assert not kept.scores["intermediate"].eq("mnli").empty                 # the worse-than-baseline run stays
    assert analysis.without_failed(res, low.iloc[:0]) is res
    a = analysis.analyse(Results(dir=None, scores=scores.assign(family="encoder", size=1, n=10), per_example=None,
                                 intermediate=None, meta=None, runs=()), floors={"xnli": 55.0})
    assert len(a.failed) == 1 and gone(a.res.scores).empty
    g = a.summary[(a.summary["intermediate"] == "sst2") & (a.summary["target"] == "xnli")]
    assert g["gain_avg"].iloc[0] == pytest.approx(3.0)                   # the reported gain: without the failure


def test_results_floors_come_from_the_profile_that_wrote_the_results():
    from types import SimpleNamespace

    assert analysis.results_floors(SimpleNamespace(meta={"profile": "cpu"})) == {"xnli": 55, "mlqa": 35}
    assert analysis.results_floors(SimpleNamespace(meta={"profile": "no-such-profile"})) == {}
    assert analysis.results_floors(SimpleNamespace(meta=None)) == {}


def test_full_scale_statements_open_with_slopes_equal_size_and_x_stilts():
    from xlt_helpers.published import load_full_scale

    fs = load_full_scale(n_boot=200)
    lines = statements.full_scale_statements(fs)
    assert lines[0].startswith("- **Gap vs size at full scale**")
    assert "XNLI (accuracy) encoder -2.70" in lines[0] and "encoder-decoder -2.31" in lines[0]
    assert "difference encoder-decoder - encoder" in lines[0]
    eq = next(s for s in lines if s.startswith("- **Equal size**"))
    assert "`mt5-base`" in eq and "gap 10.1 vs 10.0" in eq and "gap 13.9 vs 20.2" in eq
    xs = next(s for s in lines if s.startswith("- **X-STILTs at full scale**"))
    assert "MLQA (f1) SQuAD +1.9 > CSQA +1.6" in xs and "printed 72.3 while its cells give 74.3" in xs
    assert not any("reference study" in s for s in lines)          # no reference summary given
    ref = pd.DataFrame([dict(model="m", intermediate=t, target="xnli", metric="accuracy", gain_avg=g,
                             gain_avg_lo=g - 1, gain_avg_hi=g + 1)
                        for t, g in (("squad", -1.0), ("hellaswag", 0.5), ("commonsenseqa", -3.0))])
    (last,) = [s for s in statements.full_scale_statements(fs, ref) if "reference study" in s]
    # X-STILTs XNLI: hellaswag -0.3, squad -1.4, commonsenseqa -2.9 -> signs agree 2 of 3, same order (rho +1)
    assert "same sign in 2 of 3" in last and "ρ = +1.00 over 3 tasks" in last and "1 of these reference gains has an interval" in last


def test_published_size_statements_stay_within_one_paper():
    from xlt_helpers.published import load_published, to_scores_table

    lines = statements.published_size_statements(to_scores_table(load_published()))
    assert not any("xlmr-large-xtreme" in s for s in lines)       # XTREME's run is no ladder of its own
    assert any("`mt5-small` → `mt5-xxl`: transfer gap 13.0 → 7.1" in s for s in lines)


def test_progress_note_says_how_much_of_the_grid_is_committed():
    res = lambda meta: Results(Path("."), pd.DataFrame(), None, None, meta, ())  # noqa: E731
    assert "3 of the 13 nodes" in analysis.progress_html(res({"profile": "smoke", "nodes": 3}))
    assert analysis.progress_html(res({"profile": "smoke", "nodes": 13})) == "", "a finished grid needs no notice"
    assert analysis.progress_html(res({"profile": "no-such-profile", "nodes": 3})) == ""


def test_stands_for_table_labels_each_model_with_its_device():
    meta = {"device": "CPU: x86_64, 2 threads", "devices_by_model": {"e5-L3": ["GPU: NVIDIA H200"]}}
    t = analysis.stands_for_table(["e5-L3", "e5-L6"], meta)
    assert list(t["trained on"]) == ["GPU: NVIDIA H200", "CPU: x86_64, 2 threads"]   # older meta: its one device
    assert list(t["precision"]) == ["not recorded"] * 2                               # older meta: no precision field
    meta["precision_by_model"] = {"e5-L3": {"training": ["bf16"], "evaluation": ["bf16", "fp32"]},
                                  "e5-L6": {"training": ["fp32"], "evaluation": []}}
    assert list(analysis.stands_for_table(["e5-L3", "e5-L6"], meta)["precision"]) == [
        "training bf16, evaluation bf16/fp32", "training fp32, evaluation –"]
    assert "trained on" not in analysis.stands_for_table(["e5-L3"]).columns


def test_grid_results_reads_the_books_store_by_default_and_refuses_an_empty_folder_named_on_purpose(
        tmp_path, synthetic_results, monkeypatch):
    """The analysis notebook's parameters: "" = the store the book reads (None while empty, so the page says so);
    a folder the user named that holds nothing stops the run, naming it."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setenv("XLT_RESULTS_DIR", str(empty))
    assert analysis.grid_results() == (None, "")
    store = synthetic_results(tmp_path / "results", n_examples=4, with_runs=False)
    monkeypatch.setenv("XLT_RESULTS_DIR", str(store))
    res, where = analysis.grid_results()
    assert res.dir == store and where == "<code>results/</code>"
    res, _ = analysis.grid_results(results_dir=str(store))
    assert res.dir == store
    with pytest.raises(FileNotFoundError, match=f"no scores.csv in results folder {empty}. Fix: run the grid"):
        analysis.grid_results(results_dir=str(empty))
    with pytest.raises(FileNotFoundError, match=f"no finished phase-2 node in runs folder {empty}. Fix:"):
        analysis.grid_results(runs_dir=str(empty))


def test_detail_statements_hold_each_group_under_its_heading_in_reading_order(tmp_path, synthetic_results):
    a = analysis.analyse(load_results(synthetic_results(tmp_path / "r", n_examples=10, with_runs=False)), n_boot=50)
    lines, best = statements.detail_statements(a), statements.best_task_statements(a)
    assert lines[:len(best)] == best
    heads = [line.split("**")[1] for line in lines[len(best):] if line.startswith("\n**")]
    # the synthetic runs all learned something, so the "Runs that learned nothing" group is left out
    assert heads == ["Gain vs intermediate-task difficulty", "Gain vs V-usable information",
                     "How the dependence on difficulty changes with size", "Model size", "Model family",
                     "How decisive the study is"]
    start = next(i for i, line in enumerate(lines) if line.startswith("\n**Model size")) + 1
    assert lines[start:start + len(statements.size_statements(a))] == statements.size_statements(a)
    assert lines[-len(statements.decisiveness_statements(a)):] == statements.decisiveness_statements(a)
    # a run near chance brings its group in, under its heading, before the size contrasts
    low = a.res.scores.copy()
    pick = (low["model"] == "e5-L3") & (low["intermediate"] == "none") & (low["target"] == "xnli") & (low["lang"] == "en")
    low.loc[pick, "score"] = 35.0
    a_low = analysis.analyse(Results(a.res.dir, low, a.res.per_example, a.res.intermediate, a.res.meta, ()), n_boot=20)
    lines = statements.detail_statements(a_low)
    weak = lines.index("\n**Runs that learned nothing** (baseline English score near chance)\n")
    assert lines[weak + 1:weak + 2] == statements.near_chance_statements(a_low) and lines[weak + 2].startswith("\n**Model size")


def test_counts_in_sentences_agree_in_number():
    # counts change as nodes land ("1 gains" was read at 98 nodes of the decisive study): the noun follows the number
    from xlt_helpers.statements import _count
    assert [_count(n, "gain") for n in (0, 1, 2)] == ["0 gains", "1 gain", "2 gains"]
    assert _count(1, "shared intermediate task") == "1 shared intermediate task"
