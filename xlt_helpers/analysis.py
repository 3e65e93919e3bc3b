"""The grid analysis, section by section: shared by the book's results page and notebooks/04_analysis.ipynb.

Each section function takes an :class:`Analysis` and returns the items to display (plotly figures
and HTML fragments) in reading order, so the page and the notebook stay one piece of code and a test
can count what a section draws. :func:`from_runs` turns a runs folder (e.g. the smoke grid's) into the
same tidy tables the committed ``results/`` holds, so any grid can be analysed the same way.
"""
from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Union

import pandas as pd
import plotly.graph_objects as go
from IPython.display import HTML

from . import book, figures, robustness
from .results import export, write_tables

Item = Union[go.Figure, HTML]


@dataclass(frozen=True)
class Analysis:
    """Results plus what every section derives from them once."""

    res: book.Results
    targets: list[str]
    summary: pd.DataFrame             # robustness.summary_table (all targets and metrics)
    difficulty: pd.DataFrame | None   # robustness.difficulty_table, None without intermediate.csv


def analyse(res: book.Results, n_boot: int | None = None) -> Analysis:
    """Summary (with paired-bootstrap CIs when per-example scores exist) and task difficulty."""
    kw = {} if n_boot is None else {"n_boot": n_boot}
    summary = robustness.summary_table(res.scores, res.per_example, **kw)
    difficulty = robustness.difficulty_table(res.intermediate) if res.intermediate is not None else None
    return Analysis(res, book.targets_in(res.scores), summary, difficulty)


def from_runs(runs_dir: str | Path, ids: list[str] | None = None, profile: str | None = None,
              into: str | Path | None = None) -> book.Results | None:
    """Tidy result tables of the finished nodes in ``runs_dir`` (only ``ids`` when given), written
    into ``into`` (default: a new temporary folder) and loaded; None when no node has finished."""
    out = Path(into) if into is not None else Path(tempfile.mkdtemp(prefix="xlt-analysis-"))
    export(Path(runs_dir), out, ids)
    write_tables(out, profile, ids)
    return book.load_results(out)


def _primary(a: Analysis, target: str) -> tuple[str, pd.DataFrame]:
    metric = book.primary_metric(target)
    return metric, a.summary[(a.summary["target"] == target) & (a.summary["metric"] == metric)]


def gain_heatmaps(a: Analysis) -> list[Item]:
    """Gain of the cross-language mean over the no-intermediate baseline, intermediate task x model."""
    out: list[Item] = []
    for target in a.targets:
        metric, sub = _primary(a, target)
        out.append(figures.gain_heatmap(sub, title=f"{target.upper()}: gain over the no-intermediate baseline ({metric})"))
    return out


def gain_vs_size(a: Analysis) -> list[Item]:
    """Gain against parameter count, one panel per family, one line per intermediate task."""
    out: list[Item] = []
    for target in a.targets:
        metric, sub = _primary(a, target)
        out.append(figures.gain_vs_size(sub, title=f"{target.upper()}: gain vs model size ({metric})"))
    return out


def gap_vs_size(a: Analysis) -> list[Item]:
    """Transfer gap (English minus the mean of the others) against parameter count."""
    out: list[Item] = []
    for target in a.targets:
        metric, sub = _primary(a, target)
        out.append(figures.gap_vs_size(sub, title=f"{target.upper()}: transfer gap vs model size ({metric})"))
    return out


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
        table = sub[sub["intermediate"] != "none"].merge(a.difficulty[["model", "intermediate", "difficulty"]],
                                                         on=["model", "intermediate"])
        if not table.empty:
            out.append(figures.gain_vs_difficulty(table, title=f"{target.upper()}: gain vs intermediate-task difficulty"))
    corr = robustness.gain_vs_difficulty(a.summary[a.summary["intermediate"] != "none"], a.difficulty)
    if corr.empty:
        out.append(HTML("<p>No model has gains over its baseline yet: the correlation of gain with "
                        "difficulty is not computed.</p>"))
    else:
        out.append(HTML(corr[CORRELATION_COLUMNS].round(2).to_html(index=False, classes="dataframe", na_rep="–")))
    return out


def language_bars(a: Analysis) -> list[Item]:
    """Per-language scores: every model without an intermediate task, then the largest model of each
    family by intermediate task (error bars: one standard deviation over seeds)."""
    out: list[Item] = []
    for target in a.targets:
        metric = book.primary_metric(target)
        s = a.res.scores[(a.res.scores["target"] == target) & (a.res.scores["metric"] == metric)]
        base = s[s["intermediate"] == "none"]
        if not base.empty:
            out.append(figures.language_bars(base, by="model",
                                             title=f"{target.upper()}: {metric} per language, no intermediate task"))
        for _family, fam in s.groupby("family"):
            largest = fam.loc[fam["size"].idxmax(), "model"]
            out.append(figures.language_bars(fam[fam["model"] == largest], by="intermediate",
                                             title=f"{target.upper()}: {metric} per language, {largest} by intermediate task"))
    return out


def summary_tables(a: Analysis) -> list[Item]:
    """One formatted summary table per target and metric (see book.format_summary for the columns)."""
    out: list[Item] = []
    for (target, metric), part in (a.summary.groupby(["target", "metric"]) if a.targets else []):
        out.append(HTML(f"<p><b>{target.upper()}, {metric}</b></p>"))
        table = book.format_summary(part).drop(columns=["target", "metric"])
        out.append(HTML(table.to_html(index=False, classes="dataframe")))
    return out


def show_all(items: list[Item]) -> None:
    """Display each item in order: figures through :func:`figures.show` (the page's own plotly.js)."""
    from IPython.display import display

    for item in items:
        if isinstance(item, go.Figure):
            figures.show(item)
        else:
            display(item)
