"""The grid analysis, section by section: called by notebooks/04_analysis.ipynb, which is also the book's results page.

Each section function takes an :class:`Analysis` and returns the items to display (plotly figures
and HTML fragments) in reading order, so the notebook stays thin and a test can check what a section
draws. :func:`from_runs` turns a runs folder (e.g. the smoke grid's) into the
same tidy tables the committed ``results/`` holds, so any grid can be analysed the same way. The
statements the pages print about these sections are generated in :mod:`xlt_helpers.statements`.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Union

import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML

from . import figures, robustness
from .results import Results, export, load_results, write_tables
from .tasks import NONE_TASK, primary_metric, targets_in

Item = Union[go.Figure, HTML]
NO_RESULTS = "No reference-study results are committed yet."


# ------------------------------------------------------------------ what every results page shows around its sections
def stands_for_table(models, meta: dict | None = None) -> pd.DataFrame:
    """model, family, what it stands for — printed next to results, straight from the model registry —
    and, given the results' ``meta.json``, the device that trained it (``devices_by_model``; a meta.json
    written before that field labels every model with its one ``device``) and the arithmetic of its
    training and evaluation (``precision_by_model``; absent in a meta.json written before it)."""
    from .models import get_model

    by_model = (meta or {}).get("devices_by_model") or {}
    fallback = [(meta or {}).get("device", "unknown")]
    precision = (meta or {}).get("precision_by_model") or {}

    def arithmetic(m: str) -> str:
        p = precision.get(m)
        if p is None:
            return "not recorded"
        return f"training {'/'.join(p['training'])}, evaluation {'/'.join(p['evaluation']) or '–'}"

    rows = [{"model": m, "family": get_model(m).family, "stands in for": get_model(m).stands_for,
             "trained on": "; ".join(by_model.get(m, fallback)), "precision": arithmetic(m)} for m in models]
    columns = ["model", "family", "stands in for", "trained on", "precision"]
    return pd.DataFrame(rows, columns=columns if meta is not None else columns[:3])


def format_summary(summary: pd.DataFrame) -> pd.DataFrame:
    """The reader-facing columns of ``robustness.summary_table``, rounded, gains with their 95% CI.

    ``gain [95% CI]`` reads "+1.2 [+0.3, +2.0]*" (``*``: CI excludes 0); without per-example
    scores the interval is absent and the gain stands alone. ``±`` is the interval's half-width and
    ``MDE`` the gain detected with 80% power (both NaN without an interval).
    """
    def gain(row) -> str:
        if pd.isna(row["gain_avg"]):
            return "–"
        text = f"{row['gain_avg']:+.1f}"
        if pd.notna(row.get("gain_avg_lo")):
            text += f" [{row['gain_avg_lo']:+.1f}, {row['gain_avg_hi']:+.1f}]"
            sig = row.get("sig_avg")
            text += "*" if pd.notna(sig) and bool(sig) else ""
        return text

    out = pd.DataFrame({
        "model": summary["model"], "intermediate": summary["intermediate"],
        "target": summary["target"], "metric": summary["metric"],
        "en": summary["en"].round(1), "mean": summary["avg"].round(1),
        "gap": summary["gap"].round(1), "gain [95% CI]": summary.apply(gain, axis=1),
        "±": summary.get("gain_avg_hw", pd.Series(float("nan"), index=summary.index)).round(1),
        "MDE": summary.get("gain_avg_mde", pd.Series(float("nan"), index=summary.index)).round(1),
        "hurt": summary["neg_transfer_share"].map(lambda v: "–" if pd.isna(v) else f"{100 * v:.0f}%"),
        "worst": summary["worst_lang"].fillna("–"),
        "seeds": summary["n_seeds"]})
    return out


RESULTS_HINT = ("Run the study (<code>make study</code>, or <code>xlt run --profile cpu</code>) and rebuild the "
                "book (<code>xlt book</code>); this page is drawn from <code>results/</code> once it holds results.")


def no_results_html(what: str = NO_RESULTS, hint: str = RESULTS_HINT) -> str:
    """The plain notice a page shows instead of figures when its input is absent (no fake numbers)."""
    return f'<div class="no-results"><p><b>{what}</b></p><p>{hint}</p></div>'


def progress_html(res: Results) -> str:
    """How much of the profile's grid the committed results cover, so a partial study says so."""
    meta = res.meta or {}
    name, done = meta.get("profile"), meta.get("nodes")
    try:
        from .grid import build_grid
        from .profiles import load_profile
        total = len(build_grid(load_profile(name))) if name else None
    except Exception:  # noqa: BLE001 - a renamed/removed profile must not break the book
        total = None
    if not done or not total or done >= total:
        return ""
    return (f'<div class="no-results"><p><b>Study in progress:</b> {done} of the {total} nodes of profile '
            f'<code>{name}</code> are finished and committed; every number below comes from those alone and will '
            f'change as the rest arrive (<code>make study</code> resumes it).</p></div>')


@dataclass(frozen=True)
class Analysis:
    """Results plus what every section derives from them once."""

    res: Results
    targets: list[str]
    summary: pd.DataFrame             # robustness.summary_table (all targets and metrics)
    difficulty: pd.DataFrame | None   # robustness.difficulty_table, None without intermediate.csv
    components: pd.DataFrame | None = None   # robustness.variance_components, None without per-example scores
    n_boot: int = 1000                # resamples of the bootstrap over tasks (difficulty correlations)
    # intermediate-task run seeds that failed to learn the target (runs_below_floor): left out of ``res``
    failed: pd.DataFrame | None = None


def analyse(res: Results, n_boot: int = 1000, floors: dict[str, float] | None = None) -> Analysis:
    """Summary (with calibrated 95% intervals when per-example scores exist: robustness.linear_contrast,
    seed components measured once here and shared by every gain and contrast) and task difficulty.
    ``n_boot`` is the number of resamples of the one bootstrap left, over tasks (gain vs difficulty).

    Intermediate-task run seeds that failed to learn their target (:func:`runs_below_floor`; ``floors``,
    default: the profile that wrote ``res``: :func:`results_floors`) are left out first (:func:`without_failed`; ``Analysis.failed`` names
    them): a seed that never learned the target task is a failure, not a draw from the seed distribution
    the intervals assume, and inside the pooled seed variance it would widen every interval of its model
    (measured: one such seed took e5-L12's XNLI seed variance from 0.11 to 56 squared points)."""
    res, failed = analysed_results(res, floors)
    components = robustness.variance_components(res.per_example) if res.per_example is not None else None
    summary = robustness.summary_table(res.scores, res.per_example, components=components)
    difficulty = robustness.difficulty_table(res.intermediate) if res.intermediate is not None else None
    return Analysis(res, targets_in(res.scores), summary, difficulty, components, n_boot, failed)


def analysed_results(res: Results, floors: dict[str, float] | None = None) -> tuple[Results, pd.DataFrame]:
    """(the results every interval and statistic is computed from, the run seeds left out of them): ``res``
    without the intermediate-task run seeds that failed to learn their target (:func:`runs_below_floor`;
    ``floors``, default: the profile that wrote ``res``). One place, so the summary, the variance components the methods page shows and the
    coverage simulation plants (``python -m xlt_helpers.calibration``) all see the same runs."""
    failed = runs_below_floor(res.scores, results_floors(res) if floors is None else floors)
    return without_failed(res, failed), failed


RUN_SEED_KEYS = ["model", "intermediate", "target", "seed"]


def without_failed(res: Results, failed: pd.DataFrame) -> Results:
    """``res`` without the run seeds of ``failed`` (:func:`runs_below_floor`): every metric and language
    of each (model, intermediate, target, seed) dropped from the scores and per-example tables alike."""
    if failed.empty:
        return res

    def drop(df: pd.DataFrame | None) -> pd.DataFrame | None:
        if df is None:
            return None
        hit = df[RUN_SEED_KEYS].merge(failed[RUN_SEED_KEYS].drop_duplicates(), how="left", indicator=True)
        return df[(hit["_merge"] == "left_only").to_numpy()].reset_index(drop=True)

    return replace(res, scores=drop(res.scores), per_example=drop(res.per_example))


def from_runs(runs_dir: str | Path, ids: list[str] | None = None, profile: str | None = None,
              into: str | Path | None = None) -> Results | None:
    """Tidy result tables of the finished nodes in ``runs_dir`` (only ``ids`` when given), written
    into ``into`` (default: a new temporary folder) and loaded; None when no node has finished."""
    out = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="xlt-analysis-"))
    export(Path(runs_dir), out, ids)
    write_tables(out, profile, ids)
    return load_results(out)


def grid_results(results_dir: str = "", runs_dir: str = "", profile: str = "") -> tuple[Results | None, str]:
    """The results the analysis notebook shows, from its parameters, and an HTML phrase naming where they came from.

    Both folders empty (the book's case): the store the book reads (``$XLT_RESULTS_DIR`` or ``<repo>/results``),
    None while it holds nothing, so the page says so. ``runs_dir``: the finished nodes there, only those of
    ``profile``'s grid when given. A folder named explicitly that holds nothing is an error naming it: a run
    pointed at the wrong folder must stop, not draw an empty page."""
    if runs_dir:
        ids = None
        if profile:
            from .grid import build_grid
            from .profiles import load_profile
            ids = [n.id for n in build_grid(load_profile(profile))]
        res = from_runs(runs_dir, ids=ids, profile=profile or None)
        where = f"the finished nodes in <code>{runs_dir}</code>"
    else:
        res = load_results(results_dir or None)
        where = f"<code>{res.dir.name}/</code>" if res is not None else ""
    if res is None and (results_dir or runs_dir):
        what = (f"no finished phase-2 node in runs folder {runs_dir}" + (f" of profile {profile}" if profile else "")
                if runs_dir else f"no scores.csv in results folder {results_dir}")
        raise FileNotFoundError(f"{what}. Fix: run the grid first (`xlt run --profile smoke`), or point results_dir "
                                f"at a folder with scores.csv (\"\" = the committed study)")
    return res, where


def _primary(a: Analysis, target: str) -> tuple[str, pd.DataFrame]:
    metric = primary_metric(target)
    return metric, a.summary[(a.summary["target"] == target) & (a.summary["metric"] == metric)]


def _per_target(a: Analysis, draw, what: str) -> list[Item]:
    """``draw(summary rows of one target's primary metric, title=...)`` for every target."""
    out: list[Item] = []
    for target in a.targets:
        metric, sub = _primary(a, target)
        out.append(draw(sub, title=f"{target.upper()}: {what} ({metric})"))
    return out


def gain_heatmaps(a: Analysis) -> list[Item]:
    """Gain of the cross-language mean over the no-intermediate baseline, intermediate task x model."""
    return _per_target(a, figures.gain_heatmap, "gain over the no-intermediate baseline")


def gain_vs_size(a: Analysis) -> list[Item]:
    """Gain against parameter count, one panel per family, one line per intermediate task."""
    return _per_target(a, figures.gain_vs_size, "gain vs model size")


def gap_vs_size(a: Analysis) -> list[Item]:
    """Transfer gap (English minus the mean of the others) against parameter count."""
    return _per_target(a, figures.gap_vs_size, "transfer gap vs model size")


CORRELATION_COLUMNS = ["model", "target", "metric", "n", "pearson_r", "pearson_r_lo", "pearson_r_hi",
                       "spearman_rho", "slope", "slope_lo", "slope_hi"]


def gain_vs_difficulty(a: Analysis) -> list[Item]:
    """Gain against intermediate-task difficulty per target, then the correlation table."""
    if not a.targets:
        return []
    if a.difficulty is None:
        return [HTML("<p>No <code>intermediate.csv</code> in the results: task difficulty is unknown.</p>")]
    out: list[Item] = []
    for target in a.targets:
        _, sub = _primary(a, target)
        table = sub[sub["intermediate"] != NONE_TASK].merge(a.difficulty[["model", "intermediate", "difficulty"]],
                                                         on=["model", "intermediate"])
        if not table.empty:
            out.append(figures.gain_vs_difficulty(table, title=f"{target.upper()}: gain vs intermediate-task difficulty"))
    corr = robustness.gain_vs_difficulty(a.summary[a.summary["intermediate"] != NONE_TASK], a.difficulty,
                                         n_boot=a.n_boot)
    if corr.empty:
        out.append(HTML("<p>No model has gains over its baseline yet: the correlation of gain with "
                        "difficulty is not computed.</p>"))
    else:
        out.append(HTML(corr[CORRELATION_COLUMNS].round(2).to_html(index=False, classes="dataframe", na_rep="–")))
    out.append(HTML("<p>The two difficulty measures per task and model: <code>difficulty</code> from the "
                    "English dev score, and V-usable information in bits (higher = more of the label is "
                    "usable from the input, i.e. easier; – where it was not recorded or is not cheap, "
                    "as for extractive QA).</p>"))
    out.append(HTML(a.difficulty[DIFFICULTY_COLUMNS].round(3).to_html(index=False, classes="dataframe", na_rep="–")))
    out.append(HTML("<p><b>Does the dependence on difficulty change with size?</b> Per family and size step, the "
                    "slope of gain on difficulty at the larger model minus at the smaller (points of gain per unit "
                    "of difficulty), with a 95% t interval from the two fits' scatter (robustness.slope_change). "
                    "<i>status</i> says where the tasks are too few for an interval, or for a narrow one.</p>"))
    slopes = slope_changes(a)
    if slopes.empty:
        out.append(HTML("<p>No family has two sizes with intermediate-task gains yet.</p>"))
    else:
        out.append(HTML(slopes[SLOPE_COLUMNS].round(2).to_html(index=False, classes="dataframe", na_rep="–")))
    return out


SLOPE_COLUMNS = ["family", "target", "small", "large", "k_small", "k_large", "slope_small", "slope_large",
                 "slope_change", "lo", "hi", "df", "status"]


def slope_changes(a: Analysis) -> pd.DataFrame:
    """robustness.difficulty_slope_changes of each target's primary-metric gains (cross-language mean) on
    score-based difficulty, over the size steps of :func:`size_steps`; empty without difficulty."""
    if a.difficulty is None or not a.targets:
        return pd.DataFrame()
    prim = pd.concat([_primary(a, t)[1] for t in a.targets])
    return robustness.difficulty_slope_changes(prim, a.difficulty, steps=size_steps)


DIFFICULTY_COLUMNS = ["model", "intermediate", "dev_score", "chance", "n_seeds", "difficulty", "v_info_bits",
                      "n_seeds_v_info"]


def _gain_correlations(a: Analysis, difficulty: pd.DataFrame) -> pd.DataFrame:
    """robustness.gain_vs_difficulty of every model's gains on ``difficulty`` (model, intermediate,
    difficulty), kept to each target's primary metric: the one place both measures are correlated."""
    corr = robustness.gain_vs_difficulty(a.summary[a.summary["intermediate"] != NONE_TASK], difficulty, n_boot=a.n_boot)
    return corr[corr["metric"] == corr["target"].map(primary_metric)] if not corr.empty else corr


def v_information_correlations(a: Analysis) -> pd.DataFrame:
    """Gain against V-usable information (bits) per model and target (primary metric), over the tasks
    that have it: the score-based difficulty replaced by V-information. Empty when no phase-1 run
    recorded V-information."""
    if a.difficulty is None or a.difficulty["v_info_bits"].isna().all():
        return pd.DataFrame()
    return _gain_correlations(a, a.difficulty.dropna(subset=["v_info_bits"])
                              .assign(difficulty=lambda d: d["v_info_bits"]))


def difficulty_correlations(a: Analysis) -> pd.DataFrame:
    """Gain against score-based difficulty per model and target (primary metric); empty without
    intermediate-task results."""
    return pd.DataFrame() if a.difficulty is None else _gain_correlations(a, a.difficulty)


DECISIVE_HALF_WIDTH: dict[str, float] = {"xnli": 1.5, "mlqa": 3.0}   # issue 16's target for a gain's half-width


def decisiveness(a: Analysis, targets: dict[str, float] | None = None) -> pd.DataFrame:
    """Per target (primary metric) and model: the gains with an interval, their median half-width and
    median MDE (80% power), the target half-width, the half-width predicted from the model's measured
    variance components, and the evaluation examples per language that would meet the target at the
    study's seeds and at 3 seeds (robustness.examples_for_half_width; inf when the seed term alone is wider
    than the target, so that more seeds, not more examples, are needed), the seeds per arm that would meet
    it at today's examples (robustness.seeds_for_half_width), and Bartlett's test of whether the model's runs
    (baseline included) share one seed variance, as the pooled seed variance behind every interval assumes
    (``seed_sd_by_run``: each run's SD over seeds of its cross-language mean)."""
    targets = DECISIVE_HALF_WIDTH if targets is None else targets
    if a.components is None or not a.targets:
        return pd.DataFrame()
    rows = []
    for target in a.targets:
        metric, s = _primary(a, target)
        for model, g in s[(s["intermediate"] != NONE_TASK)].dropna(subset=["gain_avg_hw"]).groupby("model", sort=False):
            comp = a.components[(a.components["model"] == model) & (a.components["target"] == target)
                                & (a.components["metric"] == metric)]
            if comp.empty or comp.iloc[0]["df_seed"] == 0:
                continue
            c = comp.iloc[0].to_dict()
            c["var_run_example"] = 0.0 if pd.isna(c["var_run_example"]) else c["var_run_example"]
            seeds, langs, goal = int(g["n_seeds"].median()), int(c["n_langs"]), targets.get(target, float("nan"))
            rows.append({"target": target, "metric": metric, "model": model, "gains": len(g), "seeds": seeds,
                         "langs": langs, "examples_per_lang": int(c["n_examples"]),
                         "median_half_width": float(g["gain_avg_hw"].median()),
                         "median_mde": float(g["gain_avg_mde"].median()), "target_half_width": goal,
                         "predicted_half_width": robustness.half_width_for_examples(c["n_examples"], c, langs, seeds),
                         "examples_needed": robustness.examples_for_half_width(goal, c, langs, seeds),
                         "examples_needed_3_seeds": robustness.examples_for_half_width(goal, c, langs, 3),
                         "seeds_needed": robustness.seeds_for_half_width(goal, c, langs, c["n_examples"]),
                         **_seed_homogeneity(s[s["model"] == model])})
    return pd.DataFrame(rows)


def _seed_homogeneity(runs: pd.DataFrame) -> dict[str, object]:
    """Bartlett's test over a model's runs (summary rows of one target and metric) and each run's seed SD."""
    runs = runs.dropna(subset=["std_seeds"])
    test = robustness.bartlett(runs["n_seeds"].tolist(), (runs["std_seeds"] ** 2).tolist())
    return {"seed_sd_by_run": dict(zip(runs["intermediate"], runs["std_seeds"].astype(float))),
            "seed_homogeneity_p": test["p"], "seed_homogeneity_stat": test["stat"]}


FLOOR_COLUMNS = ["model", "target", "metric", "seeds", "en_by_seed", "en_mean", "en_min", "floor", "clears"]


def floor_table(scores: pd.DataFrame, floors: dict[str, float], english: str = robustness.ENGLISH) -> pd.DataFrame:
    """Every no-intermediate baseline's English score (each target's primary metric) per seed against the
    profile's floor for that target (issue 16: XNLI accuracy >= 55, MLQA F1 >= 35). ``clears`` asks it of
    every seed, not the mean: one collapsed seed inside a mean drags each gain that uses it. A target
    without a floor gets none (NaN, ``clears`` None)."""
    en = english_primary(scores, english)
    base = en[en["intermediate"] == NONE_TASK]
    rows = []
    for (model, target, metric), g in base.groupby(["model", "target", "metric"], sort=False):
        g = g.sort_values("seed")
        floor = floors.get(target)
        rows.append({"model": model, "target": target, "metric": metric, "seeds": len(g),
                     "en_by_seed": " / ".join(f"{v:.1f}" for v in g["score"]), "en_mean": float(g["score"].mean()),
                     "en_min": float(g["score"].min()), "floor": float("nan") if floor is None else float(floor),
                     "clears": None if floor is None else bool(g["score"].min() >= floor)})
    return pd.DataFrame(rows, columns=FLOOR_COLUMNS)


def english_primary(scores: pd.DataFrame, english: str = robustness.ENGLISH) -> pd.DataFrame:
    """The English rows of each target's primary metric: what a floor is held against."""
    en = scores[scores["lang"] == english]
    return en[en["metric"] == en["target"].map(primary_metric)]


def results_floors(res: Results) -> dict[str, float]:
    """The floors (``study.floors``) of the profile that wrote ``res`` (meta.json), {} when the profile
    states none or ``configs/`` no longer has it (the pages then hold nothing to a floor, and say so)."""
    from .profiles import ProfileError, load_profile

    name = (res.meta or {}).get("profile")
    try:
        return dict(load_profile(name).study.floors) if name else {}
    except ProfileError:
        return {}


BELOW_FLOOR_COLUMNS = ["model", "intermediate", "target", "metric", "seed", "en", "floor", "halfway", "seeds",
                       "gain_avg", "gain_avg_without"]


def runs_below_floor(scores: pd.DataFrame, floors: dict[str, float],
                     english: str = robustness.ENGLISH) -> pd.DataFrame:
    """Every intermediate-task run seed that failed to learn its target: English score below the target's
    floor *and* below ``halfway``, chance plus half of what the model's baseline (seed mean) learned above
    chance. Both, because a run that learned the target worse than its baseline (negative transfer, e.g.
    MLQA F1 28.7 after SST-2 against a baseline of 47.7) is an outcome to report, not a failure; one that
    kept less than half of the baseline's margin over chance did not train (e.g. XNLI 43.1 after SST-2
    against 69.3, chance 33.3: its loss stayed near ln 3, 1.11 -> 1.01, where the other seeds reached 0.69).

    :func:`analyse` leaves such seeds out of the gains and the seed variance (see there why); this table
    names them and shows what that changes: ``gain_avg`` is the cross-language mean gain over all seeds
    (seed means of the run minus those of the baseline), ``gain_avg_without`` the same with that seed left
    out of the run (the baseline keeps all its seeds, as in the gain the book reports). Baselines are held
    to the floor by :func:`floor_table`."""
    from .tasks import get_task

    en = english_primary(scores, english)
    base_en = en[en["intermediate"] == NONE_TASK].groupby(["model", "target", "metric"])["score"].mean()
    low = en[(en["intermediate"] != NONE_TASK) & (en["score"] < en["target"].map(floors))]
    rows = []
    for r in low.sort_values(["target", "model", "intermediate", "seed"]).itertuples():
        chance = 100.0 * (get_task(r.target).chance or 0.0)
        baseline = base_en.get((r.model, r.target, r.metric))
        halfway = chance + (baseline - chance) / 2 if baseline is not None else float("nan")
        if not r.score < halfway:          # a baseline-less run is never called failed
            continue
        s = scores[(scores["model"] == r.model) & (scores["target"] == r.target) & (scores["metric"] == r.metric)]
        run = s[s["intermediate"] == r.intermediate].pivot_table(index="seed", columns="lang", values="score")
        base = s[s["intermediate"] == NONE_TASK].pivot_table(index="seed", columns="lang", values="score")

        def gain(drop: int | None) -> float:
            a = run.drop(index=drop) if drop is not None else run
            return float((a.mean() - base.mean()).mean()) if len(a) and len(base) else float("nan")

        rows.append({"model": r.model, "intermediate": r.intermediate, "target": r.target, "metric": r.metric,
                     "seed": int(r.seed), "en": float(r.score), "floor": float(floors[r.target]),
                     "halfway": float(halfway), "seeds": len(run), "gain_avg": gain(None),
                     "gain_avg_without": gain(int(r.seed))})
    return pd.DataFrame(rows, columns=BELOW_FLOOR_COLUMNS)


def components_table(a: Analysis) -> pd.DataFrame:
    """The variance components measured in the study, per (family, model, target, metric), as squared
    points on the 0..100 scale (robustness.variance_components)."""
    if a.components is None:
        return pd.DataFrame()
    cols = ["family", "model", "target", "metric", "n_runs", "n_seeds", "n_langs", "n_examples", "df_seed",
            *robustness.VC_COLUMNS]
    return a.components[cols]


def language_bars(a: Analysis) -> list[Item]:
    """Per-language scores: every model without an intermediate task, then the largest model of each
    family by intermediate task (error bars: one standard deviation over seeds)."""
    out: list[Item] = []
    for target in a.targets:
        metric = primary_metric(target)
        s = a.res.scores[(a.res.scores["target"] == target) & (a.res.scores["metric"] == metric)]
        base = s[s["intermediate"] == NONE_TASK]
        if not base.empty:
            out.append(figures.language_bars(base, by="model",
                                             title=f"{target.upper()}: {metric} per language, no intermediate task"))
        for _family, fam in s.groupby("family"):
            largest = fam.loc[fam["size"].idxmax(), "model"]
            out.append(figures.language_bars(fam[fam["model"] == largest], by="intermediate",
                                             title=f"{target.upper()}: {metric} per language, {largest} by intermediate task"))
    return out


def seed_points(a: Analysis, target: str) -> pd.DataFrame:
    """One row per (family, model, run, seed) of ``target``'s primary metric: the cross-language mean of that
    seed over the run's languages (the quantity every gain averages over seeds). From the analysed results,
    so seeds that failed to learn (``Analysis.failed``) are not among them."""
    metric = primary_metric(target)
    s = a.res.scores[(a.res.scores["target"] == target) & (a.res.scores["metric"] == metric)]
    return s.groupby(["family", "model", "intermediate", "seed"], as_index=False)["score"].mean()


def seed_spread(a: Analysis) -> list[Item]:
    """Per target, every seed of every run (:func:`figures.seed_spread`), and a note naming the run seeds
    left out as failures, which the figure does not show."""
    out: list[Item] = []
    for target in a.targets:
        pts = seed_points(a, target)
        if pts.empty or pts["seed"].nunique() < 2:
            continue
        out.append(figures.seed_spread(pts, title=f"{target.upper()}: {primary_metric(target)} of each seed "
                                                  "(cross-language mean), by model and intermediate task"))
        gone = a.failed[a.failed["target"] == target] if a.failed is not None and not a.failed.empty else None
        if gone is not None and len(gone):
            out.append(HTML("<p>Not shown, left out as failures to learn (methods: floors): "
                            + "; ".join(f"{r.model} + {r.intermediate}, seed {r.seed} (English {r.en:.1f})"
                                        for r in gone.itertuples()) + ".</p>"))
    return out


def summary_tables(a: Analysis) -> list[Item]:
    """One formatted summary table per target and metric (see format_summary for the columns)."""
    out: list[Item] = []
    for (target, metric), part in (a.summary.groupby(["target", "metric"]) if a.targets else []):
        out.append(HTML(f"<p><b>{target.upper()}, {metric}</b></p>"))
        table = format_summary(part).drop(columns=["target", "metric"])
        out.append(HTML(table.to_html(index=False, classes="dataframe")))
    src = a.summary.dropna(subset=["seed_var_source"]) if a.targets else a.summary
    odd = src[~src["seed_var_source"].str.contains("seed df", regex=False)].drop_duplicates("model")
    if not odd.empty:   # one seed per run: the interval's seed part is borrowed, or missing
        out.append(HTML("<p>Seed variance of the intervals: " + "; ".join(
            f"<code>{r.model}</code> {r.seed_var_source}" for r in odd.itertuples()) + ".</p>"))
    return out


def show_all(items: list[Item]) -> None:
    """Display each item in order: figures through :func:`figures.show` (the page's own plotly.js)."""
    from IPython.display import display

    for item in items:
        if isinstance(item, go.Figure):
            figures.show(item)
        else:
            display(item)


# The sections that draw figures, in the results page's reading order: the tests check that the page (the analysis
# notebook) shows each of their figures (by title), so a section that draws one more needs no test edited.
FIGURE_SECTIONS = (gain_heatmaps, gain_vs_size, gap_vs_size, gain_vs_difficulty, language_bars, seed_spread)


def figure_titles(a: Analysis) -> list[str]:
    """The title of every figure the figure sections draw for ``a``, in reading order."""
    return [item.layout.title.text for section in FIGURE_SECTIONS for item in section(a)
            if isinstance(item, go.Figure)]


def size_steps(models: list[str]) -> list[tuple[str, str]]:
    """The size contrasts of one family, models sorted by size: every step to the next size (each
    step shares its own intermediate tasks, and a trend can reverse between steps), then the
    smallest → largest when there are more than two sizes."""
    steps = list(zip(models, models[1:]))
    return steps + ([(models[0], models[-1])] if len(models) > 2 else [])
