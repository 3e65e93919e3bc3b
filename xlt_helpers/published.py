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


def _fail(i: int, row: pd.Series, msg: str) -> None:
    # CSV line = index + 2 (header is line 1)
    raise ValueError(f"published.csv line {i + 2} ({row.get('model')!r}, {row.get('task')!r}, "
                     f"{row.get('lang')!r}): {msg}")


def validate_published(df: pd.DataFrame) -> pd.DataFrame:
    """Check columns, families, tasks, metrics, languages (from the task registry), score range
    and uniqueness; return ``df`` with numeric columns typed. Errors name the CSV line and fix."""
    if list(df.columns) != list(COLUMNS):
        raise ValueError(f"published.csv columns {list(df.columns)} != expected {list(COLUMNS)}; "
                         "keep the header as documented in xlt_helpers/published.py")
    df = df.copy()
    for c in ("size_params", "score", "avg_reported"):
        df[c] = pd.to_numeric(df[c], errors="raise")
    for i, row in df.iterrows():
        if row["family"] not in FAMILIES:
            _fail(i, row, f"family {row['family']!r} not in {FAMILIES}")
        if row["task"] not in TASK_METRICS:
            _fail(i, row, f"task {row['task']!r} not in {sorted(TASK_METRICS)}")
        if row["metric"] not in TASK_METRICS[row["task"]]:
            _fail(i, row, f"metric {row['metric']!r} is not reported for {row['task']!r}; "
                          f"use one of {TASK_METRICS[row['task']]}")
        langs = get_task(row["task"]).languages
        if row["lang"] not in langs:
            _fail(i, row, f"language {row['lang']!r} is not a {row['task']} language {langs}")
        if not 0 <= row["score"] <= 100 or not 0 <= row["avg_reported"] <= 100:
            _fail(i, row, f"score {row['score']} / avg {row['avg_reported']} outside 0..100; "
                          "copy percentages as printed")
        if not isinstance(row["source"], str) or not row["source"].strip():
            _fail(i, row, "empty source; name the paper, arXiv id and table")
        if not isinstance(row["intermediate"], str) or not row["intermediate"].strip():
            _fail(i, row, 'empty intermediate; write "none" for a plain model')
    dup = df.duplicated(list(KEYS), keep=False)
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        _fail(i, df.iloc[i], f"repeats the key {list(KEYS)}; keep one row per key")
    for key, g in df.groupby(["model"]):
        if g["size_params"].nunique() != 1 or g["family"].nunique() != 1:
            raise ValueError(f"published.csv: model {key[0]!r} has several sizes/families "
                             f"{sorted(g['size_params'].unique())} / {sorted(g['family'].unique())}; "
                             "a model has one parameter count and family")
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
