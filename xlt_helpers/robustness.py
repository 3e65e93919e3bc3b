"""How robust is zero-shot transfer, and does a harder intermediate task help more?

Pure functions over the study's tidy tables (numpy and pandas only, no I/O):

* **scores**: one row per (run, language): ``family, model, size, intermediate,
  target, seed, lang, metric, score (0..100), n``; ``intermediate == "none"`` is
  the no-intermediate baseline.
* **per-example**: ``family, model, intermediate, target, seed, lang, example_id,
  metric, value`` (accuracy 0/1, f1 0..100, em 0/100).
* **intermediate dev**: ``model, intermediate, seed, metric, score, chance``
  (both 0..100).

Definitions (one place for each, so the book, the tests and the published
numbers all mean the same thing):

* *cross-language mean* (``avg``): mean over **all** the task's languages,
  English included, of the seed-mean score -- the "Avg" column of XLM-R's,
  mT5's and XTREME's tables, so our numbers sit next to the published ones.
* *others mean*: the same mean without English (the zero-shot languages only).
* *transfer gap*: English minus others mean; *relative gap*: gap / English.
* *worst language*: the non-English language with the lowest seed-mean score.
* *std across languages*: population std (ddof=0) of the seed-mean per
  language -- the languages are the whole set we report, not a sample.
* *std across seeds*: sample std (ddof=1) of the per-seed cross-language mean --
  seeds are a sample of training randomness; NaN with one seed.
* *negative transfer share*: among non-English languages, the share whose
  seed-mean score is **strictly below** the no-intermediate baseline's score in
  that language (same family, model, target, metric): the intermediate task
  hurt that language. NaN for the baseline itself or when it is missing.
* *gain*: intermediate minus baseline, on the cross-language mean and on English.
  Its 95% CI is a **paired bootstrap**: each resample draws examples with
  replacement per language -- the same example ids for both runs, so the
  difficulty of the drawn examples cancels -- and then draws seeds with
  replacement within each arm (seeds are not paired across arms: run *s* of
  the baseline and run *s* of the intermediate model share nothing but a
  number). Significant = the CI excludes 0. With several seeds this crossed
  (examples x seeds) resampling is **conservative**: per-example noise that
  differs between seeds is counted by both stages (Owen 2007's "pigeonhole"
  bootstrap over-states variance by the interaction term). On synthetic data
  with 3 seeds x 2 languages x 400 examples the bootstrap sd was ~1.4x the true
  sd (coverage 99.5% for a nominal 95%); with one seed it was on target (93.5%).
  A "significant" gain is therefore trustworthy; a non-significant one may be
  a miss.
* *task difficulty*: ``1 - (score - chance) / (100 - chance)`` of the English
  intermediate-task dev score, clipped to [0, 1]: 0 = solved, 1 = at chance.
"""
from __future__ import annotations

import functools
import zlib
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from .tasks import TASKS

SCORE_COLUMNS: tuple[str, ...] = ("family", "model", "size", "intermediate", "target", "seed",
                                  "lang", "metric", "score", "n")
PER_EXAMPLE_COLUMNS: tuple[str, ...] = ("family", "model", "intermediate", "target", "seed", "lang",
                                        "example_id", "metric", "value")
DEV_COLUMNS: tuple[str, ...] = ("model", "intermediate", "seed", "metric", "score", "chance")
# one row of the summary per run configuration; `size` rides along (it is a function of model)
GROUP_KEYS: tuple[str, ...] = ("family", "model", "size", "intermediate", "target", "metric")
# per-example values -> the scores' 0..100 scale (accuracy is stored 0/1, f1 0..100, em 0/100)
PER_EXAMPLE_SCALE: dict[str, float] = {"accuracy": 100.0, "f1": 1.0, "em": 1.0}
ENGLISH = "en"
BASELINE = "none"


# ------------------------------------------------------------------ validation

def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} table lacks column(s) {missing}; it has {list(df.columns)}. "
                         f"Build it in the tidy format: {list(columns)}")


def _check_scores(scores: pd.DataFrame) -> None:
    _require(scores, [c for c in SCORE_COLUMNS if c != "n"], "scores")
    if scores.empty:
        raise ValueError("scores table is empty; there is nothing to summarise")
    bad = scores[(scores["score"] < 0) | (scores["score"] > 100)]
    if len(bad):
        row = bad.iloc[0]
        raise ValueError(f"score {row['score']!r} of model {row['model']!r} / {row['intermediate']!r} / "
                         f"{row['lang']!r} is outside 0..100; scores are percentages "
                         "(multiply 0..1 metrics by 100)")
    dup = scores.duplicated(list(GROUP_KEYS) + ["seed", "lang"], keep=False)
    if dup.any():
        row = scores[dup].iloc[0]
        raise ValueError(f"scores has {int(dup.sum())} rows repeating a (run, language), e.g. model "
                         f"{row['model']!r}, intermediate {row['intermediate']!r}, seed {row['seed']!r}, "
                         f"lang {row['lang']!r}; keep one row per (run, language)")


# ------------------------------------------------------------- per-language stats

def seed_means(scores: pd.DataFrame) -> pd.DataFrame:
    """Mean score over seeds per (group, language): the unit every cross-language statistic uses."""
    _check_scores(scores)
    keys = list(GROUP_KEYS) + ["lang"]
    return scores.groupby(keys, dropna=False, sort=True)["score"].mean().reset_index()


def _lang_stats(g: pd.DataFrame, english: str) -> dict[str, object]:
    by_lang = g.groupby("lang")["score"].mean()
    others = by_lang.drop(english, errors="ignore")
    en = float(by_lang[english]) if english in by_lang.index else np.nan
    others_mean = float(others.mean()) if len(others) else np.nan
    gap = en - others_mean
    per_seed = g.groupby("seed")["score"].mean()  # cross-language mean of each seed
    worst = others.idxmin() if len(others) else None
    return {
        "n_langs": int(by_lang.size),
        "n_seeds": int(g["seed"].nunique()),
        "en": en,
        "avg": float(by_lang.mean()),
        "others_mean": others_mean,
        "gap": gap,
        "rel_gap": gap / en if en else np.nan,
        "worst_lang": worst,
        "worst_score": float(others[worst]) if worst is not None else np.nan,
        "std_langs": float(by_lang.std(ddof=0)),
        "std_seeds": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else np.nan,
    }


def language_stats(scores: pd.DataFrame, english: str = ENGLISH) -> pd.DataFrame:
    """One row per (family, model, size, intermediate, target, metric): English score,
    cross-language mean, others mean, gap, relative gap, worst language, the two stds.

    Every seed must cover the same languages, else ``std_seeds`` would compare means over
    different language sets; a missing (seed, language) raises and names it.
    """
    _check_scores(scores)
    rows = []
    for key, g in scores.groupby(list(GROUP_KEYS), dropna=False, sort=True):
        langs_per_seed = g.groupby("seed")["lang"].apply(frozenset)
        if langs_per_seed.nunique() > 1:
            full = frozenset(g["lang"])
            seed, have = next((s, v) for s, v in langs_per_seed.items() if v != full)
            raise ValueError(f"run {dict(zip(GROUP_KEYS, key))} seed {seed!r} lacks language(s) "
                             f"{sorted(full - have)} that other seeds have; evaluate every seed on "
                             "every language (or drop the incomplete seed)")
        rows.append({**dict(zip(GROUP_KEYS, key)), **_lang_stats(g, english)})
    return pd.DataFrame(rows)


def negative_transfer(scores: pd.DataFrame, baseline: str = BASELINE,
                      english: str = ENGLISH) -> pd.DataFrame:
    """Share of non-English languages an intermediate task hurt (seed-mean below baseline's).

    Returns one row per group with ``neg_transfer_share`` and ``n_neg_langs``; the
    comparison uses only languages present in both runs. NaN where there is no baseline.
    """
    sm = seed_means(scores)
    base_keys = ["family", "model", "target", "metric", "lang"]
    base = sm[sm["intermediate"] == baseline][base_keys + ["score"]].rename(columns={"score": "base"})
    merged = sm.merge(base, on=base_keys, how="left")
    merged = merged[merged["lang"] != english]
    rows = []
    for key, g in merged.groupby(list(GROUP_KEYS), dropna=False, sort=True):
        row = dict(zip(GROUP_KEYS, key))
        paired = g.dropna(subset=["base"])
        if row["intermediate"] == baseline or paired.empty:
            row.update(neg_transfer_share=np.nan, n_neg_langs=np.nan)
        else:
            neg = paired["score"] < paired["base"]
            row.update(neg_transfer_share=float(neg.mean()), n_neg_langs=int(neg.sum()))
        rows.append(row)
    return pd.DataFrame(rows)


def gains(scores: pd.DataFrame, baseline: str = BASELINE, english: str = ENGLISH) -> pd.DataFrame:
    """Point gains over the no-intermediate run: ``gain_avg`` (cross-language mean) and ``gain_en``."""
    stats = language_stats(scores, english)
    keys = ["family", "model", "target", "metric"]
    base = stats[stats["intermediate"] == baseline][keys + ["avg", "en"]]
    out = stats[list(GROUP_KEYS) + ["avg", "en"]].merge(base, on=keys, how="left", suffixes=("", "_base"))
    out["gain_avg"] = out["avg"] - out["avg_base"]
    out["gain_en"] = out["en"] - out["en_base"]
    out.loc[out["intermediate"] == baseline, ["gain_avg", "gain_en"]] = np.nan
    return out[list(GROUP_KEYS) + ["gain_avg", "gain_en"]]


# -------------------------------------------------------------- paired bootstrap

def _stable_seed(*parts: object) -> list[int]:
    """Entropy for ``SeedSequence`` that does not depend on Python's salted ``hash``."""
    return [zlib.crc32(str(p).encode()) for p in parts]


@functools.lru_cache(maxsize=64)
def _example_counts(seed: int, lang: str, n: int, n_boot: int) -> np.ndarray:
    """(n_boot, n) counts: how often each of a language's n examples is drawn in each resample.

    A function of (seed, language, n) only, so it is drawn once per dev set and shared by every
    comparison on it (common random numbers; also what makes a full summary fast). Drawn as
    uniform indices + one offset ``bincount`` (numpy's ``multinomial`` with n categories is
    ~10x slower). float32 is exact for counts <= 2**24.
    """
    rng = np.random.default_rng(np.random.SeedSequence(_stable_seed(seed, "examples", lang, n)))
    idx = rng.integers(0, n, size=(n_boot, n)) + (np.arange(n_boot) * n)[:, None]
    counts = np.bincount(idx.ravel(), minlength=n_boot * n).reshape(n_boot, n).astype(np.float32)
    counts.flags.writeable = False
    return counts


def _boot_seed_means(arm: Mapping[str, np.ndarray], seed: int, n_boot: int) -> dict[str, np.ndarray]:
    """lang -> (B, S): each seed's mean over the resampled examples -- one matrix product per
    language (values (S, n) on 0..100). Independent of the other arm, so a baseline's can be
    computed once and reused by every intermediate task compared with it."""
    out = {}
    for lang, values in arm.items():
        counts = _example_counts(seed, lang, values.shape[1], n_boot)
        # einsum, not `@`: a (B, n) x (n, S) product with S ~ 3 is too thin for BLAS, whose thread
        # start-up made it 40x slower on a busy 2-core machine
        out[lang] = np.einsum("bn,sn->bs", counts, values.astype(np.float32)) / np.float32(values.shape[1])
    return out


def _seed_draws(n_seeds: int, n_boot: int, seed: int, key: Sequence[object]) -> np.ndarray:
    """(B, S) counts of seeds drawn with replacement; one draw per resample shared by all
    languages, because a seed is a whole training run."""
    rng = np.random.default_rng(np.random.SeedSequence(_stable_seed(seed, "seeds", *key)))
    idx = rng.integers(0, n_seeds, size=(n_boot, n_seeds)) + (np.arange(n_boot) * n_seeds)[:, None]
    return np.bincount(idx.ravel(), minlength=n_boot * n_seeds).reshape(n_boot, n_seeds)


def _check_arm(arm: Mapping[str, np.ndarray], name: str) -> tuple[dict[str, np.ndarray], int]:
    arm = {lang: np.atleast_2d(np.asarray(v, float)) for lang, v in arm.items()}
    sizes = {lang: a.shape[0] for lang, a in arm.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"bootstrap_gain: {name} seeds per language differ {sizes}; a seed is one "
                         "training run and must be evaluated on every language")
    return arm, next(iter(sizes.values()))


def _ci(draws: np.ndarray) -> tuple[float, float]:
    """The 2.5 / 97.5 percentiles of bootstrap draws: a 95% percentile interval."""
    lo, hi = np.percentile(draws, [2.5, 97.5])
    return float(lo), float(hi)


def _gain_from_boots(treat: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray],
                     bt: Mapping[str, np.ndarray], bb: Mapping[str, np.ndarray],
                     n_boot: int, seed: int, english: str, key: Sequence[object]) -> dict[str, object]:
    langs = sorted(treat)
    s_t, s_b = next(iter(treat.values())).shape[0], next(iter(base.values())).shape[0]
    draws_t = _seed_draws(s_t, n_boot, seed, (*key, "treated"))
    draws_b = _seed_draws(s_b, n_boot, seed, (*key, "baseline"))
    # mean over drawn seeds of each seed's resampled mean, per language: (L, B)
    boot = np.stack([(bt[lang] * draws_t).sum(1) / s_t - (bb[lang] * draws_b).sum(1) / s_b
                     for lang in langs]).astype(float)
    points = np.array([treat[lang].mean() - base[lang].mean() for lang in langs])
    boot_avg = boot.mean(axis=0)
    out: dict[str, object] = {"gain_avg": float(points.mean()), "boot_avg": boot_avg,
                              "ci_avg": _ci(boot_avg)}
    if english in langs:
        i = langs.index(english)
        out.update(gain_en=float(points[i]), boot_en=boot[i],
                   ci_en=_ci(boot[i]))
    else:
        out.update(gain_en=np.nan, boot_en=None, ci_en=(np.nan, np.nan))
    return out


def bootstrap_gain(treat: Mapping[str, np.ndarray], base: Mapping[str, np.ndarray],
                   n_boot: int = 1000, seed: int = 0, english: str = ENGLISH,
                   key: Sequence[object] = ()) -> dict[str, object]:
    """Paired bootstrap of the gain (treat - base) on the cross-language mean and on English.

    ``treat[lang]`` and ``base[lang]`` are arrays (n_seeds, n_examples) on the 0..100 scale
    whose columns are the **same examples in the same order** (the pairing). Each resample
    draws examples per language (the same draw for both arms) and then seeds within each arm;
    the statistic is the cross-language mean of (mean over drawn seeds of the mean over drawn
    examples), treated minus baseline. Deterministic given ``seed``: example draws depend only
    on (seed, language, n_examples), seed draws on (seed, ``key``).

    Returns ``gain_avg``, ``gain_en`` (point estimates from the data as observed),
    ``ci_avg``, ``ci_en`` (2.5 / 97.5 percentiles) and the draws ``boot_avg``, ``boot_en``.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot={n_boot!r}; it counts resamples and must be >= 1 (default 1000)")
    langs = sorted(treat)
    if sorted(base) != langs:
        raise ValueError(f"bootstrap_gain: treated languages {langs} differ from baseline languages "
                         f"{sorted(base)}; compare runs evaluated on the same languages")
    if not langs:
        raise ValueError("bootstrap_gain: no languages given")
    treat, _ = _check_arm(treat, "treated")
    base, _ = _check_arm(base, "baseline")
    for lang in langs:
        nt, nb = treat[lang].shape[1], base[lang].shape[1]
        if nt != nb or nt == 0:
            raise ValueError(f"bootstrap_gain: language {lang!r} has {nt} treated vs {nb} baseline "
                             "examples; pairing needs the same (non-empty) examples in both runs")
    return _gain_from_boots(treat, base, _boot_seed_means(treat, seed, n_boot),
                            _boot_seed_means(base, seed, n_boot), n_boot, seed, english, key)


def _check_per_example(pe: pd.DataFrame) -> None:
    _require(pe, PER_EXAMPLE_COLUMNS, "per-example")
    unknown = set(pe["metric"].unique()) - set(PER_EXAMPLE_SCALE)
    if unknown:
        raise ValueError(f"per-example metric(s) {sorted(unknown)} unknown; known: {sorted(PER_EXAMPLE_SCALE)}")
    acc = pe[pe["metric"] == "accuracy"]["value"]
    if len(acc) and (acc.max() > 1 or acc.min() < 0):
        raise ValueError(f"per-example accuracy values span {acc.min()}..{acc.max()}; store them as 0/1 "
                         "(the per-example format), not percentages")


RUN_KEYS: tuple[str, ...] = ("family", "model", "target", "metric", "intermediate")
Arm = dict[str, tuple[np.ndarray, np.ndarray]]   # lang -> (sorted example ids, values (S, n), 0..100)


def per_example_arrays(per_example: pd.DataFrame) -> dict[tuple, Arm]:
    """Reshape the long per-example table once into arrays, keyed by run configuration
    (``RUN_KEYS``): lang -> (sorted example ids, values (n_seeds, n_examples) on 0..100).

    One sort and one pass, so a summary over ~100 runs x 15 languages x 400 examples costs
    seconds, not a pivot per comparison. Every seed of a run must cover the same example ids
    in a language, and the same seeds every language; a gap raises and names the run.
    """
    _check_per_example(per_example)
    group_cols = list(RUN_KEYS) + ["lang"]
    # integer codes + one numpy lexsort: pandas' groupby over string columns was the bottleneck
    codes, uniques = {}, {}
    for c in group_cols + ["seed", "example_id"]:
        codes[c], uniques[c] = pd.factorize(per_example[c], sort=True)
    order = np.lexsort([codes[c] for c in reversed(group_cols + ["seed", "example_id"])])
    gkey = np.stack([codes[c][order] for c in group_cols], axis=1)
    starts = np.flatnonzero(np.r_[True, (gkey[1:] != gkey[:-1]).any(axis=1)])
    ends = np.r_[starts[1:], len(order)]
    seed_c, id_c = codes["seed"][order], codes["example_id"][order]
    values_all = per_example["value"].to_numpy(float)[order]
    out: dict[tuple, Arm] = {}
    seeds_of: dict[tuple, tuple] = {}
    for a, b in zip(starts, ends):
        key = tuple(uniques[c][k] for c, k in zip(group_cols, gkey[a]))
        run, lang = key[:-1], key[-1]
        uniq_seeds = tuple(uniques["seed"][np.unique(seed_c[a:b])])
        n = (b - a) // len(uniq_seeds)
        ids = id_c[a:b]
        if (b - a) != n * len(uniq_seeds) or len(np.unique(ids[:n])) != n or \
                not (ids.reshape(len(uniq_seeds), n) == ids[:n]).all():
            raise ValueError(f"per-example run {dict(zip(RUN_KEYS, run))} language {lang!r}: seeds "
                             f"{list(uniq_seeds)} do not all cover the same (unique) example ids; "
                             "evaluate every seed once on the whole dev set")
        if seeds_of.setdefault(run, uniq_seeds) != uniq_seeds:
            raise ValueError(f"per-example run {dict(zip(RUN_KEYS, run))}: language {lang!r} has seeds "
                             f"{list(uniq_seeds)}, other languages {list(seeds_of[run])}; a seed is one "
                             "run and must be evaluated on every language")
        values = values_all[a:b].reshape(len(uniq_seeds), n) * PER_EXAMPLE_SCALE[run[3]]
        out.setdefault(run, {})[lang] = (np.asarray(uniques["example_id"])[ids[:n]], values)
    return out


def _pair(arms: Mapping[tuple, Arm], run: tuple, baseline: str) -> tuple[dict, dict]:
    """Treated and baseline arrays of ``run`` (RUN_KEYS), checked to be scored on the same examples."""
    base_run = (*run[:4], baseline)
    for r in (run, base_run):
        if r not in arms:
            raise ValueError(f"per-example table has no rows for {dict(zip(RUN_KEYS, r))}; "
                             "save per-example values for it")
    t_arm, b_arm = arms[run], arms[base_run]
    if sorted(t_arm) != sorted(b_arm):
        raise ValueError(f"{dict(zip(RUN_KEYS, run))} has languages {sorted(t_arm)}, the baseline "
                         f"{sorted(b_arm)}; evaluate both on the same languages")
    treat, base = {}, {}
    for lang in sorted(t_arm):
        (ids_t, t), (ids_b, b) = t_arm[lang], b_arm[lang]
        if len(ids_t) != len(ids_b) or not np.array_equal(ids_t, ids_b):
            raise ValueError(f"language {lang!r}: {run[4]!r} has {len(ids_t)} example ids, {baseline!r} "
                             f"has {len(ids_b)} (or different ones) for model {run[1]!r}, target "
                             f"{run[2]!r}; the paired bootstrap needs both runs scored on the same examples")
        treat[lang], base[lang] = t, b
    return treat, base


def paired_bootstrap(per_example: pd.DataFrame, family: str, model: str, target: str, metric: str,
                     intermediate: str, baseline: str = BASELINE, n_boot: int = 1000, seed: int = 0,
                     english: str = ENGLISH) -> dict[str, object]:
    """:func:`bootstrap_gain` of one intermediate task over the baseline, from the per-example table.

    The two runs must have been scored on the same example ids in every language (the pairing);
    a mismatch raises and names the language.
    """
    run = (family, model, target, metric, intermediate)
    sel = per_example[(per_example["family"] == family) & (per_example["model"] == model)
                      & (per_example["target"] == target) & (per_example["metric"] == metric)
                      & per_example["intermediate"].isin([intermediate, baseline])]
    treat, base = _pair(per_example_arrays(sel), run, baseline)
    return bootstrap_gain(treat, base, n_boot=n_boot, seed=seed, english=english, key=run)


# ------------------------------------------------------------------- size contrasts

def _run_draws(arm: Mapping[str, np.ndarray], n_boot: int, seed: int, key: Sequence[object]) -> dict[str, np.ndarray]:
    """lang -> (B,) bootstrap draws of one run's score (examples resampled, then seeds).

    Example draws depend only on (seed, language, n), so draws of two runs scored on the same
    examples are paired (common random numbers) even across models; seed draws depend on ``key``."""
    bt = _boot_seed_means(arm, seed, n_boot)
    s = next(iter(arm.values())).shape[0]
    draws = _seed_draws(s, n_boot, seed, (*key, "run"))
    return {lang: (bt[lang] * draws).sum(1) / s for lang in arm}


def size_contrast(per_example: pd.DataFrame, family: str, target: str, metric: str, small: str, large: str,
                  intermediates: Sequence[str], baseline: str = BASELINE, n_boot: int = 1000, seed: int = 0,
                  english: str = ENGLISH) -> dict[str, object]:
    """How the transfer gap and the intermediate-task gain change from model ``small`` to ``large``.

    Returns the no-intermediate transfer gap of each model (English − mean of the others) and its
    change ``gap_change`` = large − small; the gain over the baseline (cross-language mean) of each
    model averaged over ``intermediates`` and its change ``gain_change``; each change with a 95%
    bootstrap interval (examples resampled with draws shared by both models, since both were
    scored on the same examples; then seeds within each run). A missing run raises and names it.
    """
    return model_contrast(per_example, target, metric, (family, small), (family, large), intermediates,
                          baseline=baseline, n_boot=n_boot, seed=seed, english=english)


def model_contrast(per_example: pd.DataFrame, target: str, metric: str, first: tuple[str, str],
                   second: tuple[str, str], intermediates: Sequence[str], baseline: str = BASELINE,
                   n_boot: int = 1000, seed: int = 0, english: str = ENGLISH) -> dict[str, object]:
    """:func:`size_contrast` between any two (family, model) pairs scored on the same examples, e.g.
    an encoder and an encoder-decoder of one depth. ``first`` fills the ``*_small`` keys and
    ``second`` the ``*_large`` keys; every change is second − first."""
    if not intermediates:
        raise ValueError("size_contrast: give at least one intermediate task both models ran")
    (fam_a, small), (fam_b, large) = first, second
    family = fam_a if fam_a == fam_b else f"{fam_a} vs {fam_b}"
    families = {small: fam_a, large: fam_b}
    arms = per_example_arrays(per_example[per_example["family"].isin({fam_a, fam_b}) & (per_example["target"] == target)
                                          & (per_example["metric"] == metric)])
    draws: dict[tuple[str, str], dict[str, np.ndarray]] = {}
    point: dict[tuple[str, str], dict[str, float]] = {}
    for model in (small, large):
        for inter in (baseline, *intermediates):
            run = (families[model], model, target, metric, inter)
            if run not in arms:
                raise ValueError(f"size_contrast: no per-example rows for {dict(zip(RUN_KEYS, run))}")
            arm = {lang: v for lang, (_ids, v) in arms[run].items()}
            draws[model, inter] = _run_draws(arm, n_boot, seed, run)
            point[model, inter] = {lang: float(v.mean()) for lang, v in arm.items()}
    langs = sorted(point[small, baseline])
    if any(sorted(point[k]) != langs for k in point):
        raise ValueError(f"size_contrast: {small} and {large} runs differ in languages; compare like with like")
    others = [lang for lang in langs if lang != english]

    def gap(d: Mapping[str, object]):
        return d[english] - sum(d[lang] for lang in others) / len(others)

    def gain(d_t: Mapping[str, object], d_b: Mapping[str, object]):
        return sum(d_t[lang] - d_b[lang] for lang in langs) / len(langs)

    out: dict[str, object] = {"family": family, "target": target, "metric": metric, "small": small, "large": large,
                              "intermediates": tuple(intermediates)}
    g = {m: gap(point[m, baseline]) for m in (small, large)}
    gd = gap(draws[large, baseline]) - gap(draws[small, baseline])
    out.update(gap_small=g[small], gap_large=g[large], gap_change=g[large] - g[small])
    out["gap_change_lo"], out["gap_change_hi"] = _ci(gd)
    gains = {m: np.mean([gain(point[m, t], point[m, baseline]) for t in intermediates]) for m in (small, large)}
    gain_d = {m: np.mean([gain(draws[m, t], draws[m, baseline]) for t in intermediates], axis=0) for m in (small, large)}
    out.update(gain_small=float(gains[small]), gain_large=float(gains[large]),
               gain_change=float(gains[large] - gains[small]))
    out["gain_change_lo"], out["gain_change_hi"] = _ci(gain_d[large] - gain_d[small])
    return out


def language_resampled_gap_change(small: Mapping[str, float], large: Mapping[str, float], n_boot: int = 2000,
                                  seed: int = 0, english: str = ENGLISH) -> dict[str, float]:
    """Change of the transfer gap from ``small`` to ``large`` (lang -> score, e.g. published tables)
    with a 95% interval from resampling the non-English languages (the same draw for both models).

    Published tables have no per-example scores, so this interval says how much the change depends
    on which languages are measured — not sampling error of the test sets."""
    others = sorted(set(small) & set(large) - {english})
    if english not in small or english not in large or len(others) < 2:
        raise ValueError(f"language_resampled_gap_change: need {english!r} and >= 2 shared other languages; "
                         f"got {sorted(small)} and {sorted(large)}")
    s_o, l_o = np.array([small[x] for x in others]), np.array([large[x] for x in others])
    change = (large[english] - l_o.mean()) - (small[english] - s_o.mean())
    rng = np.random.default_rng(np.random.SeedSequence(_stable_seed(seed, "languages", *others)))
    idx = rng.integers(0, len(others), size=(n_boot, len(others)))
    boot = (large[english] - l_o[idx].mean(1)) - (small[english] - s_o[idx].mean(1))
    lo, hi = _ci(boot)
    return {"gap_small": small[english] - s_o.mean(), "gap_large": large[english] - l_o.mean(),
            "gap_change": float(change), "gap_change_lo": lo, "gap_change_hi": hi, "n_langs": len(others)}


# ------------------------------------------------------------------- difficulty

def task_difficulty(score: float | np.ndarray, chance: float | np.ndarray) -> np.ndarray | float:
    """``1 - (score - chance) / (100 - chance)`` clipped to [0, 1] (both on 0..100).

    Chance-normalising puts a 2-way and a 5-way task on one scale: 0 = perfect, 1 = no better
    than guessing (below-chance scores also clip to 1).
    """
    s, c = np.asarray(score, float), np.asarray(chance, float)
    if np.any((c < 0) | (c >= 100)):
        raise ValueError(f"chance {chance!r} must lie in [0, 100) on the 0..100 scale "
                         "(multiply a 0..1 chance by 100)")
    d = np.clip(1.0 - (s - c) / (100.0 - c), 0.0, 1.0)
    return float(d) if d.ndim == 0 else d


def difficulty_table(dev: pd.DataFrame) -> pd.DataFrame:
    """Difficulty per (model, intermediate) from the English intermediate-task dev table.

    Uses the seed-mean dev score. A missing/NaN ``chance`` is filled from the task registry
    (``tasks.TASKS[name].chance``, 0..1 -> 0..100) so chance levels live in one place. An optional
    ``v_info_bits`` column (V-usable information of the dev set, recorded by phase 1 where it is
    cheap) is averaged over the seeds that have it (``n_seeds_v_info``); NaN where none has.
    """
    _require(dev, [c for c in DEV_COLUMNS if c != "chance"], "intermediate dev")
    dev = dev.copy()
    if "chance" not in dev.columns:
        dev["chance"] = np.nan
    missing = dev["chance"].isna()
    for name in dev.loc[missing, "intermediate"].unique():
        spec = TASKS.get(name)
        if spec is None or spec.chance is None:
            raise ValueError(f"intermediate task {name!r} has no chance level in the dev table nor in "
                             "tasks.TASKS; add `chance` to the table or to its TaskSpec")
        dev.loc[missing & (dev["intermediate"] == name), "chance"] = 100.0 * spec.chance
    if "v_info_bits" not in dev.columns:
        dev["v_info_bits"] = np.nan
    g = dev.groupby(["model", "intermediate"], sort=True).agg(
        dev_score=("score", "mean"), chance=("chance", "first"), n_seeds=("seed", "nunique"),
        v_info_bits=("v_info_bits", "mean"), n_seeds_v_info=("v_info_bits", "count")).reset_index()
    g["difficulty"] = task_difficulty(g["dev_score"].to_numpy(), g["chance"].to_numpy())
    return g


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


# ------------------------------------------------------ gain vs difficulty (tasks)

def _rank_rows(a: np.ndarray) -> np.ndarray:
    """Average ranks (1-based, ties share their mean rank) along the last axis."""
    less = (a[..., :, None] > a[..., None, :]).sum(-1)
    equal = (a[..., :, None] == a[..., None, :]).sum(-1)
    return less + (equal + 1) / 2.0


def _pearson_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc, yc = x - x.mean(-1, keepdims=True), y - y.mean(-1, keepdims=True)
    den = np.sqrt((xc ** 2).sum(-1) * (yc ** 2).sum(-1))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, (xc * yc).sum(-1) / den, np.nan)


def _slope_rows(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    xc = x - x.mean(-1, keepdims=True)
    sxx = (xc ** 2).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(sxx > 0, (xc * (y - y.mean(-1, keepdims=True))).sum(-1) / sxx, np.nan)


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
    """Pearson r; NaN when either variable is constant."""
    return float(_pearson_rows(np.asarray(x, float), np.asarray(y, float)))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    """Spearman rho = Pearson r of average ranks (ties handled like scipy's default)."""
    return float(_pearson_rows(_rank_rows(np.asarray(x, float)), _rank_rows(np.asarray(y, float))))


def ols(x: Sequence[float], y: Sequence[float]) -> dict[str, float]:
    """Least-squares line y = intercept + slope x, with the slope's classical standard error."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    slope = float(_slope_rows(x, y))
    intercept = float(y.mean() - slope * x.mean())
    k = len(x)
    resid = y - intercept - slope * x
    sxx = ((x - x.mean()) ** 2).sum()
    se = float(np.sqrt((resid ** 2).sum() / (k - 2) / sxx)) if k > 2 and sxx > 0 else np.nan
    return {"slope": slope, "intercept": intercept, "slope_se": se}


# Below this many tasks a bootstrap over tasks is degenerate (3 points: most resamples hold 2 distinct
# points, whose correlation is +-1), so an interval would look decisive while saying nothing.
MIN_POINTS_FOR_CI = 5
MIN_POINTS_FOR_CORRELATION = 3     # two points always give r = rho = +-1: a sign, not a correlation


def correlate(x: Sequence[float], y: Sequence[float], n_boot: int = 1000, seed: int = 0,
              key: Sequence[object] = ()) -> dict[str, float]:
    """Pearson r, Spearman rho and the OLS slope of y on x, each with a 95% bootstrap CI
    over the points (tasks): resample (x, y) pairs with replacement, vectorised over resamples.

    With ~8 tasks these CIs are wide and honest; resamples with a constant x are dropped
    (NaN-aware percentiles). With fewer than :data:`MIN_POINTS_FOR_CI` points the intervals are
    NaN (the point estimates remain); below :data:`MIN_POINTS_FOR_CORRELATION` r and rho are NaN
    too. Deterministic given ``seed`` and ``key``.
    """
    x, y = np.asarray(x, float), np.asarray(y, float)
    if x.shape != y.shape or x.ndim != 1:
        raise ValueError(f"correlate: x {x.shape} and y {y.shape} must be 1-D and equally long")
    ok = ~(np.isnan(x) | np.isnan(y))
    x, y = x[ok], y[ok]
    k = len(x)
    line = ols(x, y) if k >= 2 else {"slope": np.nan, "intercept": np.nan, "slope_se": np.nan}
    out = {"n": k, **line,
           "pearson_r": pearson(x, y) if k >= MIN_POINTS_FOR_CORRELATION else np.nan,
           "spearman_rho": spearman(x, y) if k >= MIN_POINTS_FOR_CORRELATION else np.nan}
    names = ("pearson_r", "spearman_rho", "slope")
    if k < MIN_POINTS_FOR_CI:
        out.update({f"{n}_{e}": np.nan for n in names for e in ("lo", "hi")})
        return out
    rng = np.random.default_rng(np.random.SeedSequence(_stable_seed(seed, "tasks", *key)))
    idx = rng.integers(0, k, size=(n_boot, k))
    bx, by = x[idx], y[idx]
    boots = {"pearson_r": _pearson_rows(bx, by),
             "spearman_rho": _pearson_rows(_rank_rows(bx), _rank_rows(by)),
             "slope": _slope_rows(bx, by)}
    for n in names:
        b = boots[n][~np.isnan(boots[n])]
        lo, hi = np.percentile(b, [2.5, 97.5]) if len(b) else (np.nan, np.nan)
        out[f"{n}_lo"], out[f"{n}_hi"] = float(lo), float(hi)
    return out


def gain_vs_difficulty(gain_table: pd.DataFrame, difficulty: pd.DataFrame, gain_col: str = "gain_avg",
                       by: Sequence[str] = ("model", "target", "metric"), n_boot: int = 1000,
                       seed: int = 0) -> pd.DataFrame:
    """Per model (and target, metric): does gain rise with intermediate-task difficulty?

    ``gain_table`` has ``model, intermediate, <gain_col>`` (e.g. :func:`summary_table`'s output);
    ``difficulty`` has ``model, intermediate, difficulty`` (:func:`difficulty_table`). Each task
    is one point; returns :func:`correlate`'s columns per group.
    """
    _require(gain_table, list(by) + ["intermediate", gain_col], "gain")
    _require(difficulty, ["model", "intermediate", "difficulty"], "difficulty")
    merged = gain_table.merge(difficulty[["model", "intermediate", "difficulty"]],
                              on=["model", "intermediate"], how="inner").dropna(subset=[gain_col])
    rows = []
    for key, g in merged.groupby(list(by), sort=True):
        key = key if isinstance(key, tuple) else (key,)
        rows.append({**dict(zip(by, key)),
                     **correlate(g["difficulty"], g[gain_col], n_boot=n_boot, seed=seed, key=key)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------------ summary

def summary_table(scores: pd.DataFrame, per_example: pd.DataFrame | None = None,
                  baseline: str = BASELINE, n_boot: int = 1000, seed: int = 0,
                  english: str = ENGLISH) -> pd.DataFrame:
    """Every robustness statistic, one row per (family, model, size, intermediate, target, metric).

    Columns: ``n_langs, n_seeds, en, avg, others_mean, gap, rel_gap, worst_lang, worst_score,
    std_langs, std_seeds, neg_transfer_share, n_neg_langs, gain_avg, gain_en`` and the paired
    bootstrap ``gain_avg_lo/hi, gain_en_lo/hi, sig_avg, sig_en``. CI columns are NaN (and
    ``sig_*`` <NA>) for the baseline rows, and where ``per_example`` is None or lacks the run.
    """
    stats = language_stats(scores, english)
    out = (stats.merge(negative_transfer(scores, baseline, english), on=list(GROUP_KEYS), how="left")
                .merge(gains(scores, baseline, english), on=list(GROUP_KEYS), how="left"))
    for c in ("gain_avg_lo", "gain_avg_hi", "gain_en_lo", "gain_en_hi"):
        out[c] = np.nan
    if per_example is not None:
        if n_boot < 1:
            raise ValueError(f"n_boot={n_boot!r}; it counts resamples and must be >= 1 (default 1000)")
        arms = per_example_arrays(per_example)
        boots: dict[tuple, dict[str, np.ndarray]] = {}
        for i, row in out.iterrows():
            run = tuple(row[k] for k in RUN_KEYS)
            if row["intermediate"] == baseline or run not in arms or (*run[:4], baseline) not in arms:
                continue
            treat, base = _pair(arms, run, baseline)
            for r, arm in ((run, treat), ((*run[:4], baseline), base)):
                if r not in boots:   # each run's resampled seed means once; baselines are reused
                    boots[r] = _boot_seed_means(arm, seed, n_boot)
            res = _gain_from_boots(treat, base, boots[run], boots[(*run[:4], baseline)],
                                   n_boot, seed, english, run)
            out.loc[i, ["gain_avg_lo", "gain_avg_hi"]] = res["ci_avg"]
            out.loc[i, ["gain_en_lo", "gain_en_hi"]] = res["ci_en"]
    for part in ("avg", "en"):
        lo, hi = out[f"gain_{part}_lo"], out[f"gain_{part}_hi"]
        sig = pd.array((lo > 0) | (hi < 0), dtype="boolean")
        sig[lo.isna().to_numpy()] = pd.NA
        out[f"sig_{part}"] = sig
    return out.reset_index(drop=True)
