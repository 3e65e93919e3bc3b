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
"""
from __future__ import annotations

from importlib import resources

import numpy as np
import pandas as pd

from .tasks import get_task

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


def validate_published(df: pd.DataFrame) -> pd.DataFrame:
    """Check columns, families, tasks, metrics, languages (from the task registry), score range
    and uniqueness; return ``df`` with numeric columns typed. Errors name the CSV line and fix."""
    df = _check_common(df, COLUMNS, ("score", "avg_reported"), "published.csv")
    for i, row in df.iterrows():
        langs = get_task(row["task"]).languages
        if row["lang"] not in langs:
            _fail(i, row, f"language {row['lang']!r} is not a {row['task']} language {langs}")
    _check_unique(df, KEYS, "published.csv")
    return df


def load_published() -> pd.DataFrame:
    """The published per-language numbers (validated), one row per (model, intermediate, task,
    metric, language)."""
    with resources.files("xlt_helpers").joinpath("resources/published.csv").open("r", encoding="utf-8") as f:
        df = pd.read_csv(f, dtype={"model": str, "intermediate": str, "lang": str}, keep_default_na=False)
    return validate_published(df)


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
# Averages only. Where no public copy of a paper's per-language table could be found (mT5's and
# X-STILTs' appendices), the cross-language averages that *are* public are kept apart, in
# resources/published_averages.csv: they carry the score level and its trend with size, but not
# the transfer gap (an average mixes English with the other languages), so the robustness
# functions never see them.

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
    plain = table[table["intermediate"] == "none"]
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
    inter = table[table["intermediate"] != "none"]
    for _, r in inter.iterrows():
        base = table[(table["model"] == r["model"]) & (table["intermediate"] == "none")
                     & (table["task"] == r["task"]) & (table["metric"] == r["metric"])]
        if base.empty:
            continue
        b = base.iloc[0]
        rows.append(dict(model=r["model"], intermediate=r["intermediate"], task=r["task"], metric=r["metric"],
                         base=float(b["avg"]), with_task=float(r["avg"]), gain=float(r["avg"] - b["avg"]),
                         same_paper=r["paper"] == b["paper"], paper=r["paper"], base_paper=b["paper"]))
    return pd.DataFrame(rows, columns=["model", "intermediate", "task", "metric", "base", "with_task", "gain",
                                       "same_paper", "paper", "base_paper"])
