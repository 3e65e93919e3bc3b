"""Do the study's 95% intervals cover 95%? A simulation of the study's design with its measured variances.

The book's gains and contrasts are linear contrasts of run x language means, each run scored on the same
evaluation examples (``robustness.linear_contrast``). Whether an interval procedure is calibrated depends on
the design -- examples within languages, a fixed set of languages, seeds per run, several runs per model on
the same examples -- and on the sizes of the variance components, which :func:`robustness.variance_components`
measures in ``results/``. This module simulates whole studies with that design and those components
(Gaussian values on the 0..100 scale: per-example scores are 0/100 for accuracy, but every interval here
rests on means over 100-3,000 examples), plants known gains, and counts how often each procedure's 95%
interval holds the truth:

* ``calibrated``: ``robustness.linear_contrast`` -- paired example-level variance plus the run-level seed
  components pooled over a model's runs, the part a model's runs share at one seed cancelling where the
  contrast's run weights within the model sum to 0 (gains, gain changes); t with Satterthwaite df. The
  book's interval for every statistic (``BOOK_METHOD``). With one seed per
  run the seed components cannot be measured in the study itself; they come from a 2-seed pilot of the same
  design (in the book: the committed 2-seed study).
* ``seed-paired``: ``robustness.seed_paired_contrast`` -- for gains only (a contrast within one model whose
  runs share their seeds): the seed part from the spread over seeds of the per-seed gain, pooled over the
  model's gains; a comparison (it was the book's interval for gains before the calibrated one cancelled the
  shared seed). With fewer than ``robustness.MIN_PAIRED_SEEDS`` seeds it falls back to ``calibrated``.
* ``examples only``: the same without the seed term (seeds averaged, example sampling only).
* ``language bootstrap``: resample languages (seeds and examples averaged), percentile interval.
* ``crossed bootstrap (old)``: ``robustness.bootstrap_gain`` / the per-run draws the book used before:
  examples resampled per language (shared by all runs), then seeds within each run.

The truth is the contrast of the expected scores of the study's own languages (the study reports its
languages, it does not sample them). Run ``python -m xlt_helpers.calibration`` to write the coverage table
the methods page shows (``book/_static/coverage.csv``).
"""
from __future__ import annotations

import argparse
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from . import robustness as R
from .tasks import NONE_TASK

METHODS: tuple[str, ...] = ("seed-paired", "calibrated", "examples only", "language bootstrap",
                             "crossed bootstrap (old)")
STATISTICS: tuple[str, ...] = ("gain", "gap change", "gain change")
# the interval the book reports for each statistic: gains within a model are seed-paired (their runs share
# seeds), contrasts across models are not (different models share no seed), so they keep the calibrated one
BOOK_METHOD: dict[str, str] = {"gain": "calibrated", "gap change": "calibrated", "gain change": "calibrated"}
COVERAGE_PATH = Path(__file__).resolve().parents[1] / "book" / "_static" / "coverage.csv"


@dataclass(frozen=True)
class Design:
    """One simulated study: ``n_models`` models (the contrast compares the last with the first), each with a
    baseline and ``n_tasks`` intermediate tasks, ``n_seeds`` seeds per run, ``n_langs`` languages (the first
    is English) with ``n_examples`` evaluation examples each, shared by every run."""

    n_langs: int
    n_examples: int
    n_seeds: int
    n_tasks: int = 3
    n_models: int = 2
    gain_lang_sd: float = 1.0     # how much a task's true gain differs between languages (points)


Run = tuple[int, str]          # (model index, task) -- "none" is the baseline


def simulate_study(rng: np.random.Generator, design: Design, comp: Mapping[str, float]
                   ) -> tuple[dict[Run, dict[str, np.ndarray]], dict[Run, dict[str, float]]]:
    """One study: ``cells[run][lang]`` (n_seeds, n_examples) and the expected score ``mu[run][lang]``.

    y = mu_rl + e_li + x_rli + u_rs + v_rsl + w_rsli with the components of :func:`robustness.components_of_runs`;
    e (the example's difficulty) is shared by every run of every model, which is what the pairing exploits.
    The seed shift u_rs = a_ms + b_rs: a_ms (``var_seed_shared``) is common to every run of model m at seed s
    (the study's runs share the target phase's seed), b_rs the run's own, var(b) = ``var_seed`` -
    ``var_seed_shared`` (``var_seed`` is a run's whole seed variance, as measured). A ``comp`` without
    ``var_seed_shared`` (a table written before it was measured) plants independent seeds, and draws the
    same random numbers as before."""
    d = design
    shared = float(comp.get("var_seed_shared", 0.0) or 0.0)
    shared = shared if np.isfinite(shared) and shared > 0 else 0.0
    sd = {k: float(np.sqrt(max(comp.get(k, 0.0), 0.0))) for k in R.VC_COLUMNS}
    sd["var_seed"] = float(np.sqrt(max(comp["var_seed"] - shared, 0.0)))
    sd["var_seed_shared"] = float(np.sqrt(shared))
    langs = [R.ENGLISH] + [f"l{i:02d}" for i in range(1, d.n_langs)]
    level = 50 + sd["var_lang"] * rng.standard_normal(d.n_langs)
    example = sd["var_example"] * rng.standard_normal((d.n_langs, d.n_examples))
    tasks = [NONE_TASK] + [f"t{k}" for k in range(d.n_tasks)]
    cells: dict[Run, dict[str, np.ndarray]] = {}
    mu: dict[Run, dict[str, float]] = {}
    for m in range(d.n_models):
        model_level = level + 5.0 * m + (2.0 if m else 0.0) * (np.arange(d.n_langs) == 0)   # a gap that changes
        seed_shift = sd["var_seed_shared"] * rng.standard_normal((d.n_seeds, 1, 1)) if shared else 0.0
        for t in tasks:
            gain = 0.0 if t == NONE_TASK else 1.0 + 0.5 * m + d.gain_lang_sd * rng.standard_normal(d.n_langs)
            true = model_level + gain
            shape = (d.n_seeds, d.n_langs, d.n_examples)
            y = (true[None, :, None] + example[None]
                 + sd["var_run_example"] * rng.standard_normal((1, d.n_langs, d.n_examples))
                 + sd["var_seed"] * rng.standard_normal((d.n_seeds, 1, 1)) + seed_shift
                 + sd["var_seed_lang"] * rng.standard_normal((d.n_seeds, d.n_langs, 1))
                 + sd["var_resid"] * rng.standard_normal(shape))
            cells[m, t] = {lang: y[:, i, :] for i, lang in enumerate(langs)}
            mu[m, t] = {lang: float(true[i]) for i, lang in enumerate(langs)}
    return cells, mu


def _statistics(design: Design, langs: Sequence[str]) -> list[tuple[str, dict[Run, dict[str, float]]]]:
    """(statistic, coefficients) of every gain, the gap change and the gain change of one simulated study."""
    tasks = [f"t{k}" for k in range(design.n_tasks)]
    last = design.n_models - 1
    out: list[tuple[str, dict[Run, dict[str, float]]]] = []
    for m in range(design.n_models):
        for t in tasks:
            out.append(("gain", R.gain_coefficients((m, t), (m, NONE_TASK), langs)))
    others = [lang for lang in langs if lang != R.ENGLISH]
    gap = {lang: (1.0 if lang == R.ENGLISH else -1.0 / len(others)) for lang in langs}
    out.append(("gap change", {(last, NONE_TASK): dict(gap), (0, NONE_TASK): {k: -v for k, v in gap.items()}}))
    change: dict[Run, dict[str, float]] = {}
    for m, sign in ((last, 1.0), (0, -1.0)):
        for t in tasks:
            change[m, t] = {lang: sign / (len(tasks) * len(langs)) for lang in langs}
        change[m, NONE_TASK] = {lang: -sign / len(langs) for lang in langs}
    out.append(("gain change", change))
    return out


def _truth(coef: Mapping[Run, Mapping[str, float]], mu: Mapping[Run, Mapping[str, float]]) -> float:
    return sum(c * mu[r][lang] for r, cs in coef.items() for lang, c in cs.items())


def _seed_vars(cells: Mapping[Run, Mapping[str, np.ndarray]], n_models: int) -> dict[Run, R.SeedVariance]:
    """Each model's seed components measured on its own runs (as ``robustness.seed_variances`` does)."""
    out: dict[Run, R.SeedVariance] = {}
    for m in range(n_models):
        c = R.components_of_runs({r: v for r, v in cells.items() if r[0] == m})
        sv = R.seed_variance(c, f"model {m}")
        out.update({r: sv for r in cells if r[0] == m})
    return out


def _language_bootstrap(cells, coef, rng: np.random.Generator, n_boot: int) -> tuple[float, float]:
    """Percentile interval from resampling languages: each language's contribution (seeds and examples
    averaged) is resampled; English stays in place when its coefficient differs from the others' (a gap)."""
    langs = sorted({lang for cs in coef.values() for lang in cs})
    contrib = np.array([sum(cs.get(lang, 0.0) * cells[r][lang].mean() for r, cs in coef.items()) for lang in langs])
    en = langs.index(R.ENGLISH) if R.ENGLISH in langs else None
    weights = {round(abs(cs.get(lang, 0.0)), 12) for cs in coef.values() for lang in langs}
    if en is not None and len(weights) > 1:      # a gap: English fixed, the other languages resampled
        rest = np.delete(contrib, en)
        idx = rng.integers(0, len(rest), (n_boot, len(rest)))
        draws = contrib[en] + rest[idx].sum(1)
    else:
        idx = rng.integers(0, len(langs), (n_boot, len(langs)))
        draws = contrib[idx].sum(1)
    return R._ci(draws)


def _crossed_bootstrap(cells, coef, seed: int, n_boot: int) -> tuple[float, float]:
    """The book's former interval: every run's draws with examples resampled per language (the same draws
    for every run: common random numbers) and then seeds within the run (``robustness._run_draws``)."""
    draws = {r: R._run_draws(cells[r], n_boot, seed, (str(r),)) for r in coef}
    total = sum(c * draws[r][lang] for r, cs in coef.items() for lang, c in cs.items())
    return R._ci(total)


def coverage(design: Design, comp: Mapping[str, float], reps: int, seed: int = 0,
             methods: Sequence[str] = METHODS, n_boot: int = 400) -> pd.DataFrame:
    """Simulate ``reps`` studies; one row per (method, statistic): coverage of the truth by the 95%
    interval, its Monte-Carlo SE (binomial, counting each interval as independent; the gains of one study
    share a baseline, so the true MC error is somewhat larger), the mean half-width, and the count."""
    rng = np.random.default_rng(np.random.SeedSequence(R._stable_seed(seed, "coverage", *design.__dict__.values())))
    langs = [R.ENGLISH] + [f"l{i:02d}" for i in range(1, design.n_langs)]
    stats = _statistics(design, langs)
    hits = {(m, s): [] for m in methods for s in STATISTICS}
    widths = {(m, s): [] for m in methods for s in STATISTICS}
    for rep in range(reps):
        cells, mu = simulate_study(rng, design, comp)
        if "calibrated" in methods or "seed-paired" in methods:
            if design.n_seeds >= 2:
                seed_var = _seed_vars(cells, design.n_models)
            else:   # one seed: as robustness.seed_variances does, borrow the seed components of the models
                # of a 2-seed study of the same design (in the book: the committed 2-seed study), each
                # model measured on its own runs, then pooled
                pilot, _ = simulate_study(rng, Design(**{**design.__dict__, "n_seeds": 2}), comp)
                per_model = pd.DataFrame([R.components_of_runs({r: v for r, v in pilot.items() if r[0] == m})
                                          for m in range(design.n_models)])
                sv = R.borrowed_seed_variance(per_model, "pilot")
                seed_var = {r: sv for r in cells}
        none = R.SeedVariance(0.0, 0.0, np.inf, "none")
        paired = "seed-paired" in methods and design.n_seeds >= R.MIN_PAIRED_SEEDS   # as summary_table decides
        if paired:    # each model's gains pooled, as summary_table does
            spreads = {m: R.paired_seed_spread([(cells, coef) for stat, coef in stats
                                                if stat == "gain" and next(iter(coef))[0] == m], f"model {m}")
                       for m in range(design.n_models)}
        for stat, coef in stats:
            truth = _truth(coef, mu)
            for method in methods:
                if method == "seed-paired" and stat != "gain":
                    continue         # across models there is no shared seed to pair on
                if method == "seed-paired" and paired:
                    res = R.seed_paired_contrast(cells, coef, spreads[next(iter(coef))[0]])
                    lo, hi = res["lo"], res["hi"]
                elif method in ("calibrated", "seed-paired"):
                    res = R.linear_contrast(cells, coef, {r: seed_var[r] for r in coef})
                    lo, hi = res["lo"], res["hi"]
                elif method == "examples only":
                    res = R.linear_contrast(cells, coef, {r: none for r in coef})
                    lo, hi = res["lo"], res["hi"]
                elif method == "language bootstrap":
                    lo, hi = _language_bootstrap(cells, coef, rng, n_boot)
                elif method == "crossed bootstrap (old)":
                    lo, hi = _crossed_bootstrap(cells, coef, seed * 100003 + rep, n_boot)
                else:
                    raise ValueError(f"coverage: unknown method {method!r}; known: {list(METHODS)}")
                hits[method, stat].append(lo <= truth <= hi)
                widths[method, stat].append((hi - lo) / 2)
    rows = []
    for (method, stat), h in hits.items():
        if not h:
            continue
        p = float(np.mean(h))
        rows.append({"method": method, "statistic": stat, "book": BOOK_METHOD[stat] == method,
                     "n_seeds": design.n_seeds, "n_langs": design.n_langs,
                     "n_examples": design.n_examples, "n_tasks": design.n_tasks, "reps": reps, "intervals": len(h),
                     "coverage": 100 * p, "mc_se": 100 * float(np.sqrt(p * (1 - p) / len(h))),
                     "mean_half_width": float(np.mean(widths[method, stat]))})
    return pd.DataFrame(rows)


def _coverage_part(job: tuple) -> tuple[pd.DataFrame, float]:
    """One (target, seeds) row block of :func:`coverage_table`, with its wall seconds (a process-pool job)."""
    target, metric, s, comp, reps, seed, methods, n_boot = job
    t0 = time.time()
    d = Design(n_langs=int(comp["n_langs"]), n_examples=int(comp["n_examples"]), n_seeds=s,
               n_tasks=int(comp.get("n_tasks", Design.n_tasks)))
    part = coverage(d, comp, reps, seed=seed, methods=methods, n_boot=n_boot)
    return part.assign(target=target, metric=metric, **{c: comp[c] for c in R.VC_COLUMNS}), time.time() - t0


def coverage_table(components: pd.DataFrame, reps: int = 400, seeds: Sequence[int] = (1, 3), seed: int = 0,
                   methods: Sequence[str] = METHODS, n_boot: int = 400,
                   targets: Mapping[str, str] | None = None, progress: bool = False, jobs: int = 1) -> pd.DataFrame:
    """:func:`coverage` for each (target, primary metric) of the measured ``components``
    (:func:`robustness.variance_components`), at each number of seeds; the planted components ride along
    in the table so it says what it simulated. ``jobs`` > 1 runs the (target, seeds) blocks in that many
    processes: each block is seeded on its own, so the table is the same at any ``jobs``."""
    targets = dict(targets or {"xnli": "accuracy", "mlqa": "f1"})
    pooled = R.pooled_components(components)
    work = []
    for target, metric in targets.items():
        row = pooled[(pooled["target"] == target) & (pooled["metric"] == metric)]
        if row.empty:
            raise ValueError(f"coverage_table: no variance components for {target}/{metric}; measure them with "
                             "robustness.variance_components on a per-example table that has this target")
        comp = row.iloc[0].to_dict()
        work += [(target, metric, s, comp, reps, seed, tuple(methods), n_boot) for s in seeds]
    if jobs > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=min(jobs, len(work))) as pool:
            done = list(pool.map(_coverage_part, work))
    else:
        done = map(_coverage_part, work)
    parts = []
    for job, (part, secs) in zip(work, done):
        parts.append(part)
        if progress:
            print(f"{job[0]}/{job[1]}, {job[2]} seed(s): {reps} studies in {secs:.0f} s", flush=True)
    cols = ["target", "metric", "n_seeds", "statistic", "method", "book", "coverage", "mc_se", "mean_half_width",
            "reps", "intervals", "n_langs", "n_examples", "n_tasks", *R.VC_COLUMNS]
    return pd.concat(parts, ignore_index=True)[cols]


def stale_components(table: pd.DataFrame, measured: pd.DataFrame, rel: float = 1e-3) -> list[str]:
    """The (target, metric) whose planted components in a coverage ``table`` differ from the ``measured``
    pooled components (``robustness.pooled_components``) by more than ``rel``: the table is then out of
    date with the results and must be rewritten. A table written before a component was measured (it lacks
    its column, e.g. ``var_seed_shared``) did not plant it: stale too, and the entry names the column."""
    out = []
    missing = [c for c in R.VC_COLUMNS if c not in table.columns]
    for (target, metric), g in table.groupby(["target", "metric"], sort=True):
        m = measured[(measured["target"] == target) & (measured["metric"] == metric)]
        if m.empty:
            out.append(f"{target}/{metric} (not in the results)")
            continue
        if missing:
            out.append(f"{target}/{metric} (the table predates {', '.join(missing)}: not planted)")
            continue
        planted = g.iloc[0]
        if not all(np.isclose(planted[c], m.iloc[0][c], rtol=rel, atol=1e-3) for c in R.VC_COLUMNS):
            out.append(f"{target}/{metric}")
    return out


def coverage_summary(path: str | Path = COVERAGE_PATH, measured: pd.DataFrame | None = None) -> str:
    """HTML for the methods page: per (target, seeds, statistic), each method's coverage (%) with its mean
    half-width, from the committed coverage table; a notice instead when it is missing, and a warning
    when its planted components are not the ones ``measured`` in the current results."""
    path = Path(path)
    if not path.is_file():
        return (f"<p><b>No coverage table at <code>{path.name}</code>.</b> Write it with "
                "<code>python -m xlt_helpers.calibration</code>.</p>")
    table = pd.read_csv(path)
    book = table["book"].astype(bool) if "book" in table.columns else pd.Series(False, index=table.index)
    cell = table.assign(text=[f"{c:.1f} (±{w:.2f})" + (" *" if b else "")
                              for c, w, b in zip(table["coverage"], table["mean_half_width"], book)])
    wide = cell.pivot_table(index=["target", "metric", "n_seeds", "statistic"], columns="method", values="text",
                            aggfunc="first").reset_index()
    wide = wide[["target", "metric", "n_seeds", "statistic", *[m for m in METHODS if m in wide.columns]]]
    wide.columns.name = None
    wide = wide.fillna("—")     # the seed-paired interval is for gains only
    se = table.groupby(["n_seeds", "statistic"])["mc_se"].max().max()
    note = (f"<p>Coverage of nominal 95% intervals in %, mean half-width in points; {int(table['reps'].iloc[0])} "
            f"simulated studies per row (Monte-Carlo SE at most {se:.1f} points)"
            + ("; * the interval the book reports for that statistic" if book.any() else "")
            + (f" (the seed-paired interval is for gains only; with fewer than {R.MIN_PAIRED_SEEDS} seeds it is "
               "the calibrated one)"
               if "seed-paired" in set(table["method"]) else "") + ".</p>")
    if measured is not None:
        stale = stale_components(table, measured)
        if stale:
            note += (f"<p><b>Out of date:</b> the components planted for {', '.join(stale)} are not the ones "
                     "measured in the current results; rewrite the table with "
                     "<code>python -m xlt_helpers.calibration</code>.</p>")
    return wide.to_html(index=False, classes="dataframe") + note


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the coverage table of the interval procedures (methods page).")
    p.add_argument("--results", default=None, help="results folder with per_example.csv.gz (default: <repo>/results)")
    p.add_argument("--out", default=str(COVERAGE_PATH), help=f"CSV to write (default: {COVERAGE_PATH})")
    p.add_argument("--reps", type=int, default=1000, help="simulated studies per (target, seeds); default 1000")
    p.add_argument("--n-boot", type=int, default=400, help="bootstrap resamples of the bootstrap methods")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--jobs", type=int, default=1, help="processes, one (target, seeds) block each; same table")
    args = p.parse_args(argv)
    from .analysis import analysed_results
    from .results import load_results

    res = load_results(args.results)
    if res is not None:       # the runs the book's intervals use (failed run seeds left out)
        res = analysed_results(res)[0]
    if res is None or res.per_example is None:
        raise SystemExit(f"no per_example.csv.gz under {args.results or 'results/'}: nothing to measure the "
                         "variance components from; run the study (make study) first")
    table = coverage_table(R.variance_components(res.per_example), reps=args.reps, seed=args.seed,
                           n_boot=args.n_boot, progress=True, jobs=args.jobs)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    table.round(4).to_csv(args.out, index=False)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
