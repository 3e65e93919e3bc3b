"""Published full-scale numbers, as data, so our small-scale results sit next to them.

``resources/published.csv`` holds one row per (model, intermediate, task, metric, language),
copied from the papers' per-language tables; ``source`` names paper, arXiv id and table;
``avg_reported`` is the paper's own average, kept so a test can recompute it from the
per-language rows and catch a typo. Only tables found in a public copy of the paper are
included; nothing is estimated. Note the published XNLI / MLQA numbers are on the **test**
sets, while the study evaluates on dev sets: compare shapes (gaps, worst languages, rank
order), not decimals.

:func:`to_scores_table` turns the rows into the study's tidy scores table, so
:mod:`xlt_helpers.robustness` analyses published and own runs with the same code.

Resources (``xlt_helpers/resources/``), each validated on load:

* ``published.csv``: zero-shot per-language rows (English fine-tuning only): XLM-R Base/Large
  (Conneau et al. 2020), mT5-Small..XXL and XTREME's XLM-R Large run (``xlmr-large-xtreme``), both
  from Xue et al. 2021's Appendix B (Tables 7 and 11).
* ``published_translate_train.csv``: the same columns for mT5's *translate-train* rows (English
  plus machine-translated training data in every language). A separate file, not a ``setting``
  column, because every consumer of ``published.csv`` means zero-shot transfer: with a column, one
  that forgot to filter would silently mix target-language training into "zero-shot" gaps. They are
  a reference line (what target-language data is worth), never a point of the size analysis.
* ``mc4_language_distribution.csv``: mT5's pre-training share per language (Xue et al. Table 6).
* ``xstilts_v1_table2.csv``: X-STILTs' Table 2 (Phang et al. 2020, arXiv v1), XLM-R Large after
  each English intermediate task, as printed (deltas against the authors' baseline).
* ``published_averages.csv``: printed averages with no per-language table here.

Two conflicts inside the mT5 paper: the appendix (used here) prints mT5-Base MLQA F1 64.4 and
mT5-XL MLQA EM 54.4, the main-body Table 2 (and the authors' README) 64.6 and 54.5; the appendix
figures are the ones its per-language rows recompute to (64.41, 54.43).
"""
from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources

import numpy as np
import pandas as pd

from .tasks import NONE_TASK, get_task

COLUMNS: tuple[str, ...] = ("model", "family", "size_params", "intermediate", "task", "metric",
                            "lang", "score", "avg_reported", "source")
FAMILIES: tuple[str, ...] = ("encoder", "encoder-decoder")   # models.Family
# which metrics each target task reports (the scores-table metric names)
TASK_METRICS: dict[str, tuple[str, ...]] = {"xnli": ("accuracy",), "mlqa": ("f1", "em")}
KEYS: tuple[str, ...] = ("model", "intermediate", "task", "metric", "lang")


def _fail(i: int, row: pd.Series, msg: str, file: str = "published.csv") -> None:
    # CSV line = index + 2 (header is line 1)
    raise ValueError(f"{file} line {i + 2} ({row.get('model')!r}, {row.get('task')!r}, "
                     f"{row.get('lang', '')!r}): {msg}")


def _check_common(df: pd.DataFrame, columns: tuple[str, ...], numeric: tuple[str, ...],
                  file: str) -> pd.DataFrame:
    """The checks both published files share: header, numeric columns, family, task, metric,
    a 0..100 percentage, a source and an intermediate on every row, one size and family per model."""
    if list(df.columns) != list(columns):
        raise ValueError(f"{file} columns {list(df.columns)} != expected {list(columns)}; "
                         "keep the header as documented in xlt_helpers/published.py")
    df = df.copy()
    for c in ("size_params", *numeric):
        df[c] = pd.to_numeric(df[c], errors="raise")
    for i, row in df.iterrows():
        if row["family"] not in FAMILIES:
            _fail(i, row, f"family {row['family']!r} not in {FAMILIES}", file)
        if row["task"] not in TASK_METRICS:
            _fail(i, row, f"task {row['task']!r} not in {sorted(TASK_METRICS)}", file)
        if row["metric"] not in TASK_METRICS[row["task"]]:
            _fail(i, row, f"metric {row['metric']!r} is not reported for {row['task']!r}; "
                          f"use one of {TASK_METRICS[row['task']]}", file)
        for c in numeric:
            if not 0 <= row[c] <= 100:
                _fail(i, row, f"{c} {row[c]} outside 0..100; copy percentages as printed", file)
        if not isinstance(row["source"], str) or not row["source"].strip():
            _fail(i, row, "empty source; name the paper, arXiv id and table", file)
        if not isinstance(row["intermediate"], str) or not row["intermediate"].strip():
            _fail(i, row, 'empty intermediate; write "none" for a plain model', file)
    for key, g in df.groupby(["model"]):
        if g["size_params"].nunique() != 1 or g["family"].nunique() != 1:
            raise ValueError(f"{file}: model {key[0]!r} has several sizes/families "
                             f"{sorted(g['size_params'].unique())} / {sorted(g['family'].unique())}; "
                             "a model has one parameter count and family")
    return df


def _check_unique(df: pd.DataFrame, keys: tuple[str, ...], file: str) -> None:
    dup = df.duplicated(list(keys), keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        _fail(i, df.iloc[i], f"repeats the key {list(keys)}; keep one row per key", file)


def validate_published(df: pd.DataFrame, file: str = "published.csv") -> pd.DataFrame:
    """Check columns, families, tasks, metrics, languages (from the task registry), score range
    and uniqueness; return ``df`` with numeric columns typed. Errors name the CSV line and fix."""
    df = _check_common(df, COLUMNS, ("score", "avg_reported"), file)
    for i, row in df.iterrows():
        langs = get_task(row["task"]).languages
        if row["lang"] not in langs:
            _fail(i, row, f"language {row['lang']!r} is not a {row['task']} language {langs}", file)
    _check_unique(df, KEYS, file)
    return df


def _read_resource(name: str, **kw) -> pd.DataFrame:
    with resources.files("xlt_helpers").joinpath(f"resources/{name}").open("r", encoding="utf-8") as f:
        return pd.read_csv(f, keep_default_na=False, **kw)


def load_published() -> pd.DataFrame:
    """The published zero-shot per-language numbers (validated), one row per (model, intermediate,
    task, metric, language)."""
    df = _read_resource("published.csv", dtype={"model": str, "intermediate": str, "lang": str})
    return validate_published(df)


TRANSLATE_TRAIN_FILE = "published_translate_train.csv"


def load_translate_train() -> pd.DataFrame:
    """mT5's translate-train per-language rows (Xue et al. 2021, Tables 7 and 11): the same columns
    and checks as :func:`load_published`, kept apart so no zero-shot analysis can pick them up."""
    df = _read_resource(TRANSLATE_TRAIN_FILE, dtype={"model": str, "intermediate": str, "lang": str})
    return validate_published(df, TRANSLATE_TRAIN_FILE)


# ---- mT5's pre-training language distribution (Xue et al. 2021, Appendix A, Table 6) --------------
MC4_FILE = "mc4_language_distribution.csv"
MC4_COLUMNS: tuple[str, ...] = ("code", "language", "tokens_billion", "pages_million", "mt5_sampling_pct",
                                "source")


def validate_mc4(df: pd.DataFrame) -> pd.DataFrame:
    """Header, positive numbers, one row per language code ("-" marks the six Latin-script variants
    Table 6 prints without a code), and sampling shares that sum to 100 (printed to 2 decimals)."""
    if list(df.columns) != list(MC4_COLUMNS):
        raise ValueError(f"{MC4_FILE} columns {list(df.columns)} != expected {list(MC4_COLUMNS)}")
    df = df.copy()
    for c in ("tokens_billion", "pages_million", "mt5_sampling_pct"):
        df[c] = pd.to_numeric(df[c], errors="raise")
        bad = df.index[~(df[c] > 0)]
        if len(bad):
            raise ValueError(f"{MC4_FILE} line {bad[0] + 2} ({df.loc[bad[0], 'code']!r}): {c} "
                             f"{df.loc[bad[0], c]} must be > 0; copy Table 6 as printed")
    coded = df[df["code"] != "-"]
    dup = coded.duplicated("code", keep=False)
    if dup.any():
        i = coded.index[dup][0]
        raise ValueError(f"{MC4_FILE} line {i + 2}: language code {df.loc[i, 'code']!r} repeats; one row per code")
    total = df["mt5_sampling_pct"].sum()
    if abs(total - 100) > 0.1:
        raise ValueError(f"{MC4_FILE}: mt5_sampling_pct sums to {total:.2f}, not 100 (within rounding); "
                         "a share is mistyped or a language missing")
    if (df["source"].str.strip() == "").any():
        raise ValueError(f"{MC4_FILE}: a row without source; cite Xue et al. 2021, Table 6")
    return df


def load_mc4() -> pd.DataFrame:
    """mC4 tokens, pages and mT5's sampling share (%) per language (validated)."""
    return validate_mc4(_read_resource(MC4_FILE, dtype={"code": str}))


# ---- X-STILTs, Table 2 (Phang et al. 2020, arXiv 2005.13013 v1, p. 5) -------------------------------
XSTILTS_FILE = "xstilts_v1_table2.csv"
XSTILTS_COLUMNS: tuple[str, ...] = ("intermediate", "mlm", "target", "metric", "delta", "score", "row", "source")
# X-STILTs' intermediate tasks in the table's spelling -> this project's task name (None: not in the project)
XSTILTS_TASKS: dict[str, str | None] = {"ANLI+": "anli", "QQP": "qqp", "SQuAD": "squad", "HellaSwag": "hellaswag",
                                        "CCG": None, "CosmosQA": "cosmosqa", "CSQA": "commonsenseqa",
                                        "Multi-task": None}
# the nine XTREME targets (the table's columns) and their metrics; "avg" is the table's average column
XSTILTS_TARGETS: dict[str, tuple[str, ...]] = {
    "xnli": ("accuracy",), "pawsx": ("accuracy",), "udpos": ("f1",), "panx": ("f1",), "xquad": ("f1", "em"),
    "mlqa": ("f1", "em"), "tydiqa": ("f1", "em"), "bucc": ("f1",), "tatoeba": ("accuracy",), "avg": ("score",)}
XSTILTS_BASELINE_ROW = "XLM-R (Ours), the baseline"
XSTILTS_DEV_ROW = "dev mean over the target's languages"


def validate_xstilts(df: pd.DataFrame) -> pd.DataFrame:
    """Header, known intermediate tasks / targets / metrics, ``mlm`` yes/no exactly on task rows,
    scores in 0..100, one row per key, and on every dev row ``score`` = the baseline's score +
    ``delta`` (the table prints deltas; a mismatch is a transcription error)."""
    file = XSTILTS_FILE
    if list(df.columns) != list(XSTILTS_COLUMNS):
        raise ValueError(f"{file} columns {list(df.columns)} != expected {list(XSTILTS_COLUMNS)}")
    df = df.copy()
    df["score"] = pd.to_numeric(df["score"], errors="raise")
    df["delta"] = pd.to_numeric(df["delta"].replace("", np.nan), errors="raise")

    def fail(i: int, msg: str) -> None:
        r = df.loc[i]
        raise ValueError(f"{file} line {i + 2} ({r['intermediate']!r}, mlm {r['mlm']!r}, {r['target']!r}, "
                         f"{r['metric']!r}): {msg}")

    known = {NONE_TASK, "best-per-target", *XSTILTS_TASKS}
    for i, r in df.iterrows():
        if r["intermediate"] not in known:
            fail(i, f"intermediate {r['intermediate']!r} not in {sorted(known)}")
        task_row = r["intermediate"] in XSTILTS_TASKS
        if (r["mlm"] in ("yes", "no")) != task_row or r["mlm"] not in ("yes", "no", ""):
            fail(i, "mlm must be yes/no on intermediate-task rows and empty on baseline/best rows")
        if r["metric"] not in XSTILTS_TARGETS.get(r["target"], ()):
            fail(i, f"target/metric not in {XSTILTS_TARGETS}")
        if not 0 <= r["score"] <= 100:
            fail(i, f"score {r['score']} outside 0..100")
        if not str(r["source"]).strip():
            fail(i, "empty source; cite Phang et al. 2020, Table 2")
    dup = df.duplicated(["intermediate", "mlm", "target", "metric", "row"], keep=False)
    if dup.any():
        fail(int(df.index[dup][0]), "repeats its key; one row per (intermediate, mlm, target, metric, row)")
    base = df[df["row"] == XSTILTS_BASELINE_ROW].set_index(["target", "metric"])["score"]
    for i, r in df[df["row"] == XSTILTS_DEV_ROW].iterrows():
        b = base.get((r["target"], r["metric"]))
        if b is None or abs(b + r["delta"] - r["score"]) > 0.051:
            fail(i, f"score {r['score']} != baseline {b} + delta {r['delta']}")
    return df


def load_xstilts() -> pd.DataFrame:
    """X-STILTs Table 2 (validated): one row per (intermediate, mlm, target, metric, row)."""
    return validate_xstilts(_read_resource(XSTILTS_FILE, dtype={"intermediate": str, "mlm": str, "row": str}))


def to_scores_table(df: pd.DataFrame) -> pd.DataFrame:
    """Published rows in the study's tidy scores format (seed 0, n NaN), so the robustness
    functions run on them unchanged."""
    return pd.DataFrame({
        "family": df["family"].to_numpy(),
        "model": df["model"].to_numpy(),
        "size": df["size_params"].astype("int64").to_numpy(),
        "intermediate": df["intermediate"].to_numpy(),
        "target": df["task"].to_numpy(),
        "seed": 0,
        "lang": df["lang"].to_numpy(),
        "metric": df["metric"].to_numpy(),
        "score": df["score"].astype(float).to_numpy(),
        "n": np.nan,
    })


# ---------------------------------------------------------------------------------------------
# Averages only. Printed cross-language averages with no per-language table in published.csv (now
# only X-STILTs' best task per target, on the test sets) are kept apart, in
# resources/published_averages.csv: they carry the score level, not the transfer gap (an average
# mixes English with the other languages), so the robustness functions never see them.

AVG_COLUMNS: tuple[str, ...] = ("model", "family", "size_params", "intermediate", "task", "metric",
                                "avg", "source")
AVG_KEYS: tuple[str, ...] = ("model", "intermediate", "task", "metric")


def validate_published_averages(df: pd.DataFrame) -> pd.DataFrame:
    """The checks of :func:`validate_published` that apply to averages (no languages)."""
    df = _check_common(df, AVG_COLUMNS, ("avg",), "published_averages.csv")
    _check_unique(df, AVG_KEYS, "published_averages.csv")
    return df


def load_published_averages() -> pd.DataFrame:
    """Published cross-language averages for models whose per-language tables are not public here."""
    path = resources.files("xlt_helpers").joinpath("resources/published_averages.csv")
    with path.open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, dtype={"model": str, "intermediate": str}, keep_default_na=False)
    return validate_published_averages(df)


def paper_of(source: str) -> str:
    """The citation a ``source`` starts with ("Xue et al. 2021"): runs from one paper form a ladder."""
    return source.split(" (")[0].strip()


def average_table(pub: pd.DataFrame, avgs: pd.DataFrame) -> pd.DataFrame:
    """One row per (model, intermediate, task, metric) with the paper's printed average: the
    per-language models' ``avg_reported`` and the averages-only rows, side by side, plus ``paper`` and
    ``per_language`` (whether the per-language rows, and so the transfer gap, are in published.csv)."""
    per_lang = (pub.drop_duplicates(list(AVG_KEYS))
                .rename(columns={"avg_reported": "avg"})[list(AVG_COLUMNS)])
    out = pd.concat([per_lang.assign(per_language=True), avgs[list(AVG_COLUMNS)].assign(per_language=False)],
                    ignore_index=True)
    out["paper"] = out["source"].map(paper_of)
    return out.sort_values(["family", "paper", "size_params", "task", "metric"], ignore_index=True)


def average_size_change(table: pd.DataFrame) -> pd.DataFrame:
    """Average score of the smallest vs the largest model of each family *within one paper* (no
    intermediate task): a size trend only compares runs made under one protocol.

    Returns one row per (family, paper, task, metric) with at least two sizes: ``small``,
    ``large``, ``n_models``, ``avg_small``, ``avg_large``, ``change`` (points), ``monotone``
    (whether every step up in size raised the average), ``per_language``."""
    rows = []
    plain = table[table["intermediate"] == NONE_TASK]
    for (family, paper, task, metric), g in plain.groupby(["family", "paper", "task", "metric"], sort=True):
        g = g.sort_values("size_params")
        if g["model"].nunique() < 2:
            continue
        steps = np.diff(g["avg"].to_numpy(dtype=float))
        rows.append(dict(family=family, paper=paper, task=task, metric=metric,
                         small=g["model"].iloc[0], large=g["model"].iloc[-1], n_models=len(g),
                         avg_small=float(g["avg"].iloc[0]), avg_large=float(g["avg"].iloc[-1]),
                         change=float(g["avg"].iloc[-1] - g["avg"].iloc[0]),
                         monotone=bool((steps > 0).all()), per_language=bool(g["per_language"].all())))
    return pd.DataFrame(rows, columns=["family", "paper", "task", "metric", "small", "large", "n_models",
                                       "avg_small", "avg_large", "change", "monotone", "per_language"])


def average_gains(table: pd.DataFrame) -> pd.DataFrame:
    """Average with an intermediate task minus the same model's plain average, per task and metric.

    ``same_paper`` is False when the two averages come from different papers' runs (X-STILTs vs
    XTREME's XLM-R Large): such a difference mixes the intermediate task with two fine-tuning
    protocols, and the book says so rather than calling it a gain."""
    rows = []
    inter = table[table["intermediate"] != NONE_TASK]
    for _, r in inter.iterrows():
        base = table[(table["model"] == r["model"]) & (table["intermediate"] == NONE_TASK)
                     & (table["task"] == r["task"]) & (table["metric"] == r["metric"])]
        if base.empty:
            continue
        b = base.iloc[0]
        rows.append(dict(model=r["model"], intermediate=r["intermediate"], task=r["task"], metric=r["metric"],
                         base=float(b["avg"]), with_task=float(r["avg"]), gain=float(r["avg"] - b["avg"]),
                         same_paper=r["paper"] == b["paper"], paper=r["paper"], base_paper=b["paper"]))
    return pd.DataFrame(rows, columns=["model", "intermediate", "task", "metric", "base", "with_task", "gain",
                                       "same_paper", "paper", "base_paper"])


# =============================================================================================
# The full-scale analysis: pure functions over the resources above (I/O only in load_full_scale).
#
# Definitions are robustness.py's (transfer gap = English minus the mean of the other languages,
# relative gap = gap / English, worst language, population SD across languages), applied to the
# printed per-language numbers. Sizes are counted from the architectures (models.parameter_counts);
# the size axis is log10 of the *non-embedding* parameters, because at the small end most of a model
# is its 250k-token vocabulary matrix (mT5-Small: 85% of 300M).

# published model name -> models.ARCHITECTURES name (a re-run of the same architecture)
ARCHITECTURE_OF: dict[str, str] = {"xlmr-large-xtreme": "xlmr-large"}


def architecture_of(model: str) -> str:
    return ARCHITECTURE_OF.get(model, model)


def model_sizes(models: Sequence[str]) -> pd.DataFrame:
    """``model, architecture, paper_total, total, non_embedding, log10_non_embedding`` for each
    published model: the papers' rounded totals beside the counts from the architectures."""
    from .models import PAPER_TOTALS, parameter_counts

    rows = []
    for m in models:
        arch = architecture_of(m)
        total, non_emb = _counts(arch)
        rows.append(dict(model=m, architecture=arch, paper_total=PAPER_TOTALS[arch], total=total,
                         non_embedding=non_emb, log10_non_embedding=float(np.log10(non_emb))))
    return pd.DataFrame(rows, columns=["model", "architecture", "paper_total", "total", "non_embedding",
                                       "log10_non_embedding"])


@functools.lru_cache(maxsize=None)
def _counts(arch: str) -> tuple[int, int]:
    from .models import parameter_counts

    return parameter_counts(arch)


def transfer_gaps(pub: pd.DataFrame, sizes: pd.DataFrame | None = None, english: str = "en") -> pd.DataFrame:
    """One row per plain (no intermediate task) published model, task and metric: ``family, paper,
    model, task, metric, en, others_mean, gap, rel_gap, worst_lang, worst_score, std_langs, n_langs,
    avg`` (robustness.language_stats on the printed numbers) plus the size columns of
    :func:`model_sizes` when ``sizes`` is given."""
    from .robustness import language_stats

    plain = pub[pub["intermediate"] == NONE_TASK]
    stats = language_stats(to_scores_table(plain), english)
    paper = plain.drop_duplicates("model").set_index("model")["source"].map(paper_of)
    out = stats.rename(columns={"target": "task"}).assign(paper=lambda d: d["model"].map(paper))
    cols = ["family", "paper", "model", "task", "metric", "en", "others_mean", "gap", "rel_gap", "worst_lang",
            "worst_score", "std_langs", "n_langs", "avg"]
    out = out[cols]
    if sizes is not None:
        out = out.merge(sizes, on="model", how="left")
    return out.sort_values(["task", "metric", "family", "paper", "non_embedding" if sizes is not None else "model"],
                           ignore_index=True)


def ladders(pub: pd.DataFrame) -> dict[tuple[str, str], list[str]]:
    """(family, paper) -> its plain models, when a paper has two or more sizes of one family: a size
    trend only compares runs made under one protocol (Conneau et al.'s XLM-R Base/Large; Xue et al.'s
    mT5 Small..XXL). XTREME's single XLM-R Large run forms no ladder."""
    plain = pub[pub["intermediate"] == NONE_TASK].drop_duplicates("model")
    out = {}
    for (family, paper), g in plain.groupby([plain["family"], plain["source"].map(paper_of)], sort=True):
        if len(g) >= 2:
            out[(family, paper)] = g.sort_values("size_params")["model"].tolist()
    return out


def _by_lang(long: pd.DataFrame, model: str) -> dict[str, float]:
    g = long[long["model"] == model]
    if g.empty:
        raise ValueError(f"no per-language scores for model {model!r}")
    return g.groupby("lang")["score"].mean().to_dict()


def gap_size_fit(long: pd.DataFrame, ladder: Mapping[str, Sequence[str]], x: Mapping[str, float],
                 n_boot: int = 2000, seed: int = 0, english: str = "en") -> tuple[pd.DataFrame, dict[str, float]]:
    """Least-squares line of the transfer gap on ``x`` (log10 non-embedding parameters) per family,
    with a 95% interval from resampling languages, and the difference of the families' slopes.

    ``long``: ``model, lang, score`` of one task and metric; ``ladder``: family -> its models (two or
    more); ``x``: model -> size coordinate. Each bootstrap draw resamples the non-English languages
    shared by every model, with replacement, **the same draw for every model of both families**, and
    refits every line, so the slope difference is paired by language.

    What the interval covers: how much the slope depends on *which* languages the benchmark happens to
    contain (the languages treated as a sample from a population of languages like them). What it
    does not cover: test-set sampling error and fine-tuning randomness (the papers print one number
    per cell), the choice of a straight line in log size (with two XLM-R sizes the line passes through
    both points, so only its language dependence is measured), and differences between the papers'
    fine-tuning protocols. English is held fixed in every draw.

    Returns (per family: ``family, models, n_models, n_langs, slope, slope_lo, slope_hi, intercept``;
    ``{"families", "diff", "diff_lo", "diff_hi"}`` for the second family's slope minus the first's, in
    ``ladder`` order, or ``{}`` with fewer than two families)."""
    from .robustness import _ci, _slope_rows, _stable_seed

    models = [m for ms in ladder.values() for m in ms]
    by = {m: _by_lang(long, m) for m in models}
    for fam, ms in ladder.items():
        if len(ms) < 2:
            raise ValueError(f"gap_size_fit: family {fam!r} has {list(ms)}; a slope needs two or more models")
    for m in models:
        if english not in by[m]:
            raise ValueError(f"gap_size_fit: model {m!r} has no {english!r} score")
    langs = sorted(set.intersection(*(set(by[m]) for m in models)) - {english})
    if len(langs) < 2:
        raise ValueError(f"gap_size_fit: the models share {langs} besides {english!r}; need two or more")
    rng = np.random.default_rng(np.random.SeedSequence(_stable_seed(seed, "gap-size-fit", *langs)))
    idx = rng.integers(0, len(langs), size=(n_boot, len(langs)))
    rows, boots = [], {}
    for fam, ms in ladder.items():
        xs = np.array([x[m] for m in ms], float)
        en = np.array([by[m][english] for m in ms])
        other = np.array([[by[m][lang] for lang in langs] for m in ms])        # models x langs
        gaps = en - other.mean(1)
        slope = float(_slope_rows(xs, gaps))
        bgaps = en[None, :] - other[:, idx].mean(-1).T                          # n_boot x models
        boots[fam] = _slope_rows(np.broadcast_to(xs, bgaps.shape), bgaps)
        lo, hi = _ci(boots[fam])
        rows.append(dict(family=fam, models=", ".join(ms), n_models=len(ms), n_langs=len(langs), slope=slope,
                         slope_lo=lo, slope_hi=hi, intercept=float(gaps.mean() - slope * xs.mean())))
    fits = pd.DataFrame(rows, columns=["family", "models", "n_models", "n_langs", "slope", "slope_lo", "slope_hi",
                                       "intercept"])
    diff: dict[str, float] = {}
    if len(ladder) >= 2:
        a, b = list(ladder)[:2]
        lo, hi = _ci(boots[b] - boots[a])
        diff = {"families": f"{b} - {a}", "diff": float(fits.iloc[1]["slope"] - fits.iloc[0]["slope"]),
                "diff_lo": lo, "diff_hi": hi}
    return fits, diff


def nearest_in_size(sizes: pd.DataFrame, model: str, candidates: Sequence[str], column: str) -> str:
    """The candidate whose ``column`` (``total`` or ``non_embedding``) is nearest to ``model``'s on a
    log scale (a factor, not a difference: 2x larger and 2x smaller are equally far)."""
    s = sizes.set_index("model")[column].astype(float)
    dist = {c: abs(np.log(s[c] / s[model])) for c in candidates}
    return min(dist, key=dist.get)


def equal_size_comparison(long: pd.DataFrame, sizes: pd.DataFrame, model: str, candidates: Sequence[str],
                          n_boot: int = 2000, seed: int = 0) -> pd.DataFrame:
    """``model`` against the candidate nearest to it in total and in non-embedding parameters: one
    row per criterion with both gaps and the difference (candidate minus model) with a 95% interval
    over resampled languages (robustness.language_resampled_gap_change, the same draw for both)."""
    from .robustness import language_resampled_gap_change

    rows = []
    s = sizes.set_index("model")
    for column in ("total", "non_embedding"):
        other = nearest_in_size(sizes, model, candidates, column)
        c = language_resampled_gap_change(_by_lang(long, model), _by_lang(long, other), n_boot=n_boot, seed=seed)
        rows.append(dict(criterion=column, model=model, nearest=other, size_model=int(s.loc[model, column]),
                         size_nearest=int(s.loc[other, column]), gap_model=c["gap_small"], gap_nearest=c["gap_large"],
                         diff=c["gap_change"], diff_lo=c["gap_change_lo"], diff_hi=c["gap_change_hi"],
                         n_langs=c["n_langs"]))
    return pd.DataFrame(rows)


def catch_up(small: Mapping[str, float], large: Mapping[str, float], share: Mapping[str, float],
             english: str = "en") -> pd.DataFrame:
    """Per non-English language: its own gap to English (English minus the language) in the small
    and the large model, the fraction of the small model's gap that scaling closed
    (``(gap_small - gap_large) / gap_small``; NaN where the small gap is not positive, since there is
    nothing to close) and the language's share of pre-training data (``share``, %)."""
    langs = sorted((set(small) & set(large)) - {english})
    rows = []
    for lang in langs:
        gs, gl = small[english] - small[lang], large[english] - large[lang]
        rows.append(dict(lang=lang, gap_small=gs, gap_large=gl,
                         closed=(gs - gl) / gs if gs > 0 else np.nan, share=share.get(lang, np.nan)))
    return pd.DataFrame(rows, columns=["lang", "gap_small", "gap_large", "closed", "share"])


def translate_train_closure(zero_shot: pd.DataFrame, translate_train: pd.DataFrame,
                            english: str = "en") -> pd.DataFrame:
    """Per model (``model, lang, score`` tables of one task and metric): the zero-shot gap, the
    other-language mean with and without translated training data, and the share of the zero-shot gap
    that translate-train closes, ``(others_tt - others_zs) / gap_zs`` (1 = the other languages reach
    English's zero-shot score). ``gap_tt`` is translate-train's own English-minus-others gap."""
    rows = []
    for m in sorted(set(zero_shot["model"]) & set(translate_train["model"])):
        zs, tt = _by_lang(zero_shot, m), _by_lang(translate_train, m)
        langs = sorted((set(zs) & set(tt)) - {english})
        o_zs, o_tt = np.mean([zs[x] for x in langs]), np.mean([tt[x] for x in langs])
        gap = zs[english] - o_zs
        rows.append(dict(model=m, en_zs=zs[english], others_zs=float(o_zs), gap_zs=float(gap), en_tt=tt[english],
                         others_tt=float(o_tt), gap_tt=float(tt[english] - o_tt),
                         closed=float((o_tt - o_zs) / gap) if gap > 0 else np.nan))
    return pd.DataFrame(rows, columns=["model", "en_zs", "others_zs", "gap_zs", "en_tt", "others_tt", "gap_tt",
                                       "closed"])


# ---- X-STILTs ---------------------------------------------------------------------------------

def xstilts_average_check(xs: pd.DataFrame) -> pd.DataFrame:
    """Table 2's "Avg" column against the mean of each row's cells (9 targets, a QA target scored as
    the mean of its F1 and EM, as the table does): ``intermediate, mlm, row, printed, recomputed,
    consistent`` (within 0.1). One row fails: "QQP, with MLM" prints 72.3 (+5.1) while its cells
    give 74.3 (+7.1), an error in the paper, kept as printed."""
    cells = xs[xs["target"] != "avg"]
    recomputed = (cells.groupby(["intermediate", "mlm", "row", "target"], sort=False)["score"].mean()
                  .groupby(["intermediate", "mlm", "row"], sort=False).mean().rename("recomputed"))
    printed = xs[xs["target"] == "avg"].set_index(["intermediate", "mlm", "row"])["score"].rename("printed")
    out = pd.concat([printed, recomputed], axis=1).reset_index()
    out["consistent"] = (out["printed"] - out["recomputed"]).abs() <= 0.1
    return out


def xstilts_gains(xs: pd.DataFrame) -> pd.DataFrame:
    """The dev-set gains of each intermediate task over the authors' baseline (the table's deltas):
    ``intermediate, task, mlm, target, metric, gain, score`` (``task``: this project's name, or None),
    ranked within (target, metric, mlm) by ``rank`` (1 = largest gain)."""
    dev = xs[xs["row"] == XSTILTS_DEV_ROW]
    out = pd.DataFrame({"intermediate": dev["intermediate"], "task": dev["intermediate"].map(XSTILTS_TASKS),
                        "mlm": dev["mlm"], "target": dev["target"], "metric": dev["metric"],
                        "gain": dev["delta"].astype(float), "score": dev["score"]}).reset_index(drop=True)
    out["rank"] = out.groupby(["target", "metric", "mlm"])["gain"].rank(ascending=False, method="min").astype(int)
    return out


def compare_with_reference(xgains: pd.DataFrame, reference: pd.DataFrame, mlm: str = "no",
                           primary_only: bool = False) -> pd.DataFrame:
    """X-STILTs' full-scale gains (no MLM co-training, as the reference study trains) beside the
    reference study's gains for the intermediate tasks both have.

    ``reference``: ``model, intermediate, target, metric, gain_avg`` (robustness.summary_table or
    robustness.gains rows; ``gain_avg_lo/hi`` carried when present). Returns one row per (model,
    target, metric, task): ``xstilts_gain, reference_gain, same_sign``, plus ``xstilts_rank`` and
    ``reference_rank`` among the tasks shared by that model and target (1 = largest gain).
    ``primary_only`` keeps each target's headline metric (tasks.primary_metric: XNLI accuracy, MLQA F1).
    No shared task gives an empty table with these columns."""
    x = xgains[(xgains["mlm"] == mlm) & xgains["task"].notna()][["task", "target", "metric", "gain"]]
    x = x.rename(columns={"gain": "xstilts_gain"})
    keep = [c for c in ("family", "size", "model", "intermediate", "target", "metric", "gain_avg", "gain_avg_lo",
                        "gain_avg_hi") if c in reference.columns]
    r = reference[reference["intermediate"] != NONE_TASK][keep].rename(
        columns={"intermediate": "task", "gain_avg": "reference_gain", "gain_avg_lo": "reference_lo",
                 "gain_avg_hi": "reference_hi"})
    out = r.merge(x, on=["task", "target", "metric"], how="inner")
    if primary_only:
        from .tasks import primary_metric

        out = out[np.array([m == primary_metric(t) for t, m in zip(out["target"], out["metric"])], dtype=bool)]
    out = out.copy()
    out["same_sign"] = np.sign(out["xstilts_gain"]) == np.sign(out["reference_gain"])
    grp = out.groupby(["model", "target", "metric"])
    out["xstilts_rank"] = grp["xstilts_gain"].rank(ascending=False, method="min").astype(int)
    out["reference_rank"] = grp["reference_gain"].rank(ascending=False, method="min").astype(int)
    out["n_tasks"] = grp["task"].transform("size") if len(out) else pd.Series(dtype=int)
    return out.sort_values(["target", "metric", "model", "xstilts_rank"], ignore_index=True)


def reference_agreement(comparison: pd.DataFrame) -> pd.DataFrame:
    """Per (model, target, metric) of :func:`compare_with_reference`: ``n_tasks`` shared, ``n_same_sign``,
    ``n_reference_significant`` (reference interval excludes 0, when given) and ``spearman`` between the
    two gain orderings (NaN below 3 tasks: two points always correlate +-1)."""
    from .robustness import MIN_POINTS_FOR_CORRELATION, spearman

    rows = []
    for (m, t, met), g in comparison.groupby(["model", "target", "metric"], sort=True):
        sig = ((g["reference_lo"] > 0) | (g["reference_hi"] < 0)) if "reference_lo" in g else pd.Series(False)
        rows.append(dict(model=m, target=t, metric=met, n_tasks=len(g), n_same_sign=int(g["same_sign"].sum()),
                         n_reference_significant=int(sig.sum()),
                         spearman=spearman(g["xstilts_gain"], g["reference_gain"])
                         if len(g) >= MIN_POINTS_FOR_CORRELATION else np.nan))
    return pd.DataFrame(rows, columns=["model", "target", "metric", "n_tasks", "n_same_sign",
                                       "n_reference_significant", "spearman"])


# ---- everything the full-scale chapter shows, computed once ------------------------------------
PRIMARY: tuple[tuple[str, str], ...] = (("xnli", "accuracy"), ("mlqa", "f1"))
EQUAL_SIZE_MODEL = "xlmr-large-xtreme"   # XLM-R Large run under the same protocol/table as mT5 (Xue et al.)


@dataclass(frozen=True)
class FullScale:
    """The full-scale analysis of the published tables, per (task, metric) in :data:`PRIMARY`."""

    pub: pd.DataFrame               # published.csv (zero-shot)
    translate_train: pd.DataFrame
    mc4: pd.DataFrame
    xstilts: pd.DataFrame
    sizes: pd.DataFrame             # model_sizes
    gaps: pd.DataFrame              # transfer_gaps with sizes
    ladders: dict                   # (family, paper) -> models
    fits: dict                      # (task, metric) -> (per-family fits, slope difference)
    equal_size: dict                # (task, metric) -> equal_size_comparison
    catch_up: dict                  # (task, metric) -> catch_up (mT5 smallest -> largest)
    catch_up_corr: dict             # (task, metric) -> robustness.correlate(share, closed)
    tt_closure: dict                # (task, metric) -> translate_train_closure
    xstilts_gains: pd.DataFrame
    xstilts_avg: pd.DataFrame


def full_scale(pub: pd.DataFrame, translate_train: pd.DataFrame, mc4: pd.DataFrame, xstilts: pd.DataFrame,
               n_boot: int = 2000) -> FullScale:
    """Every full-scale table from the four resources (pure; :func:`load_full_scale` reads them)."""
    from .robustness import correlate

    sizes = model_sizes(sorted(pub.loc[pub["intermediate"] == NONE_TASK, "model"].unique()))
    x = sizes.set_index("model")["log10_non_embedding"].to_dict()
    lad = ladders(pub)
    by_family = {fam: ms for (fam, _), ms in lad.items()}
    mt5 = by_family.get("encoder-decoder", [])
    share = mc4[mc4["code"] != "-"].set_index("code")["mt5_sampling_pct"].to_dict()
    fits, equal, cu, cu_corr, tt = {}, {}, {}, {}, {}
    for task, metric in PRIMARY:
        long = pub[(pub["task"] == task) & (pub["metric"] == metric) & (pub["intermediate"] == NONE_TASK)]
        fits[(task, metric)] = gap_size_fit(long, by_family, x, n_boot=n_boot)
        if EQUAL_SIZE_MODEL in set(long["model"]) and mt5:
            equal[(task, metric)] = equal_size_comparison(long, sizes, EQUAL_SIZE_MODEL, mt5, n_boot=n_boot)
        if len(mt5) >= 2:
            small, large = (long[long["model"] == m].set_index("lang")["score"].to_dict() for m in (mt5[0], mt5[-1]))
            cu[(task, metric)] = c = catch_up(small, large, share).assign(small=mt5[0], large=mt5[-1])
            cu_corr[(task, metric)] = correlate(c["share"], c["closed"], key=("catch-up", task, metric))
        t = translate_train[(translate_train["task"] == task) & (translate_train["metric"] == metric)]
        tt[(task, metric)] = (translate_train_closure(long, t).merge(sizes[["model", "non_embedding"]], on="model")
                              .sort_values("non_embedding", ignore_index=True))
    return FullScale(pub, translate_train, mc4, xstilts, sizes, transfer_gaps(pub, sizes), lad, fits, equal, cu,
                     cu_corr, tt, xstilts_gains(xstilts), xstilts_average_check(xstilts))


def load_full_scale(n_boot: int = 2000) -> FullScale:
    """:func:`full_scale` on the shipped resources."""
    return full_scale(load_published(), load_translate_train(), load_mc4(), load_xstilts(), n_boot=n_boot)
