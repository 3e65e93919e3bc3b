"""The study's figures: pure functions from a tidy DataFrame to a plotly ``go.Figure``.

Why pure: the book pages, the tests and an interactive session all call the same
functions on the same tables, so a figure can be checked without a browser and
re-made from committed results in seconds. No function here computes a
statistic: gains, confidence intervals, gaps and difficulties come from
:mod:`xlt_helpers.robustness` (one row per family × model × size × intermediate ×
target × metric); the figures only arrange them. The one exception is the fitted
line of :func:`gain_vs_difficulty`, an ordinary least-squares line drawn as a
visual guide (the reported slope and its CI belong to ``robustness``).

Column names are keyword arguments with the defaults documented on each
function, so a table whose columns are named differently is renamed at the
call site, not copied into a new format.

:func:`show` embeds a figure into a notebook / book page *without* its own copy
of plotly.js: the book loads one local ``_static/plotly.min.js`` on every page
(see :mod:`xlt_helpers.book`), so pages work offline and stay small.
"""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .tasks import NONE_TASK
from plotly.subplots import make_subplots

# Okabe-Ito: distinguishable under the common colour-vision deficiencies and in greyscale print.
PALETTE: tuple[str, ...] = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00",
                            "#56B4E9", "#F0E442", "#000000", "#999999")
FAMILY_SYMBOL: dict[str, str] = {"encoder": "circle", "encoder-decoder": "square"}
FAMILY_DASH: dict[str, str] = {"encoder": "solid", "encoder-decoder": "dash"}
FONT = dict(family="Helvetica, Arial, sans-serif", size=13, color="#222")


def _check_columns(df: pd.DataFrame, needed: Sequence[str], figure: str) -> None:
    """Fail early with the missing columns, what was there, and where they come from."""
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise KeyError(f"{figure}: input table lacks column(s) {missing}; it has {list(df.columns)}. "
                       f"Pass the right names as keyword arguments (see the docstring of {figure}) "
                       f"or build the table with xlt_helpers.robustness.summary_table.")
    if df.empty:
        raise ValueError(f"{figure}: input table is empty; nothing to draw (check the filters that made it).")


def _style(fig: go.Figure, title: str, *, height: int = 440) -> go.Figure:
    """One look for every figure: white background, thin axes, a title that says what is shown,
    and the legend in a row under the plot so the plot keeps the page's full width."""
    fig.update_layout(template="simple_white", font=FONT, height=height,
                      title=dict(text=title, x=0.0, xanchor="left", font=dict(size=15)),
                      margin=dict(l=70, r=30, t=60, b=40),
                      legend=dict(orientation="h", x=0.0, xanchor="left", y=-0.2, yanchor="top",
                                  bgcolor="rgba(0,0,0,0)", borderwidth=0),
                      hoverlabel=dict(font_size=12))
    fig.update_xaxes(ticks="outside", showline=True, linecolor="#444", mirror=False)
    fig.update_yaxes(ticks="outside", showline=True, linecolor="#444", mirror=False)
    return fig


def model_order(df: pd.DataFrame, *, model: str = "model", family: str = "family",
                size: str = "size") -> list[str]:
    """Models sorted by family, then size, then name: the order every figure uses for its axes."""
    cols = [c for c in (family, size, model) if c in df.columns]
    keys = df[cols].drop_duplicates(subset=[model]).sort_values(cols)
    return keys[model].tolist()


def _ci_arrays(sub: pd.DataFrame, value: str, lo: str | None, hi: str | None):
    """Asymmetric error-bar lengths from CI bounds, or None when the table has no (finite) CI."""
    if lo is None or hi is None or lo not in sub.columns or hi not in sub.columns:
        return None
    lo_v, hi_v = sub[lo].to_numpy(float), sub[hi].to_numpy(float)
    if not np.isfinite(lo_v).any():
        return None
    v = sub[value].to_numpy(float)
    return dict(type="data", symmetric=False, array=np.nan_to_num(hi_v - v),
                arrayminus=np.nan_to_num(v - lo_v), thickness=1.2, width=4)


def _fmt_ci(v: float, lo: float | None, hi: float | None) -> str:
    if lo is None or hi is None or not (np.isfinite(lo) and np.isfinite(hi)):
        return f"{v:+.2f} (no CI: per-example scores absent)"
    return f"{v:+.2f} [{lo:+.2f}, {hi:+.2f}]"


def gain_heatmap(summary: pd.DataFrame, *, value: str = "gain_avg", lo: str | None = "gain_avg_lo",
                 hi: str | None = "gain_avg_hi", significant: str | None = "sig_avg",
                 intermediate: str = "intermediate", model: str = "model", baseline: str = NONE_TASK,
                 title: str = "Gain over the no-intermediate baseline") -> go.Figure:
    """Intermediate task (rows) × model (columns); a cell is the gain over the baseline.

    Input: one row per (model, intermediate) for ONE target and metric — columns
    ``model``, ``intermediate``, ``value`` (points), optionally ``lo``/``hi`` (95% CI bounds),
    ``significant`` (bool: CI excludes 0), ``family``/``size`` (for the column order).
    Rows with ``intermediate == baseline`` are dropped (their gain is 0 by definition).
    Significant cells carry a ``*`` next to their value; the CI is in the hover text.
    Colours diverge around 0 so help and harm read at a glance.
    """
    _check_columns(summary, [model, intermediate, value], "gain_heatmap")
    df = summary[summary[intermediate] != baseline]
    if df.empty or df[value].notna().sum() == 0:
        return no_data(title, NO_GAINS)
    if df.duplicated([model, intermediate]).any():
        dup = df[df.duplicated([model, intermediate], keep=False)][[model, intermediate]].drop_duplicates()
        raise ValueError(f"gain_heatmap: several rows per (model, intermediate), e.g. {dup.head(3).values.tolist()}; "
                         f"filter the table to one target and one metric first.")
    models = model_order(df, model=model)
    # rows: tasks sorted by their mean gain so the best helper is on top
    tasks = df.groupby(intermediate)[value].mean().sort_values().index.tolist()
    z = np.full((len(tasks), len(models)), np.nan)
    text = np.full(z.shape, "", dtype=object)
    hover = np.full(z.shape, "", dtype=object)
    for _, r in df.iterrows():
        i, j = tasks.index(r[intermediate]), models.index(r[model])
        v = float(r[value])
        lo_v = float(r[lo]) if lo and lo in df.columns else None
        hi_v = float(r[hi]) if hi and hi in df.columns else None
        sig = bool(r[significant]) if significant and significant in df.columns and pd.notna(r[significant]) else False
        z[i, j] = v
        text[i, j] = f"{v:+.1f}{'*' if sig else ''}"
        hover[i, j] = (f"model {r[model]}<br>intermediate {r[intermediate]}<br>gain {_fmt_ci(v, lo_v, hi_v)}"
                       f"<br>{'significant (CI excludes 0)' if sig else 'not significant'}")
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=models, y=tasks, text=text, texttemplate="%{text}",
                               customdata=hover, hovertemplate="%{customdata}<extra></extra>",
                               colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound,
                               colorbar=dict(title=dict(text="gain<br>(points)"), thickness=14),
                               xgap=2, ygap=2))
    fig.update_xaxes(title_text="model (by family, then size)   ·   * = 95% CI excludes 0", showline=False,
                     ticks="")
    fig.update_yaxes(title_text="intermediate task", showline=False, ticks="")
    return _style(fig, title, height=max(300, 150 + 48 * len(tasks)))


def no_data(title: str, why: str) -> go.Figure:
    """An empty figure that says why it is empty (a study still running has, e.g., no gains yet):
    partial results render as a page that explains itself instead of failing the build."""
    fig = _style(go.Figure(), title, height=220)
    fig.add_annotation(text=why, x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False,
                       font=dict(size=14, color="#555"))
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return fig


NO_GAINS = "No intermediate-task runs with a matching baseline yet: nothing to compare."


def _by_family_panels(families: Sequence[str], title: str, y_title: str, height: int = 420) -> go.Figure:
    fig = make_subplots(rows=1, cols=len(families), shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=[f"{f} models" for f in families])
    for c in range(1, len(families) + 1):
        fig.update_xaxes(type="log", title_text="parameters", row=1, col=c)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    return _style(fig, title, height=height)


def gain_vs_size(summary: pd.DataFrame, *, value: str = "gain_avg", lo: str | None = "gain_avg_lo",
                 hi: str | None = "gain_avg_hi", size: str = "size", family: str = "family",
                 intermediate: str = "intermediate", model: str = "model", baseline: str = NONE_TASK,
                 title: str = "Gain from intermediate training vs model size") -> go.Figure:
    """One panel per model family: gain (y) vs parameters (log x), one line per intermediate task.

    Input: one row per (model, intermediate) for ONE target and metric — columns ``family``,
    ``model``, ``size`` (parameters), ``intermediate``, ``value``, optionally ``lo``/``hi``
    (95% CI bounds, drawn as error bars). The baseline rows are dropped. A dotted line marks 0.
    """
    _check_columns(summary, [family, size, intermediate, value, model], "gain_vs_size")
    df = summary[summary[intermediate] != baseline].sort_values([family, size])
    families = sorted(df[family].unique())
    if not families:
        return no_data(title, NO_GAINS)
    fig = _by_family_panels(families, title, "gain over baseline (points)")
    tasks = sorted(df[intermediate].unique())
    for c, fam in enumerate(families, start=1):
        for k, task in enumerate(tasks):
            sub = df[(df[family] == fam) & (df[intermediate] == task)]
            if sub.empty:
                continue
            fig.add_trace(go.Scatter(
                x=sub[size], y=sub[value], mode="lines+markers", name=task, legendgroup=task,
                showlegend=c == 1 or task not in set(df[df[family] == families[0]][intermediate]),
                line=dict(color=PALETTE[k % len(PALETTE)], width=1.6, dash=FAMILY_DASH.get(fam, "solid")),
                marker=dict(symbol=FAMILY_SYMBOL.get(fam, "circle"), size=8),
                error_y=_ci_arrays(sub, value, lo, hi), customdata=sub[[model]].to_numpy(),
                hovertemplate=f"{task}<br>%{{customdata[0]}} (%{{x:.3s}} params)<br>gain %{{y:+.2f}}<extra></extra>"),
                row=1, col=c)
        fig.add_hline(y=0, line=dict(color="#888", width=1, dash="dot"), row=1, col=c)
    return fig


def gap_vs_size(summary: pd.DataFrame, *, value: str = "gap", lo: str | None = None,
                hi: str | None = None, size: str = "size", family: str = "family",
                intermediate: str = "intermediate", model: str = "model",
                show_intermediates: bool = True,
                title: str = "Cross-lingual transfer gap vs model size",
                y_title: str = "English − mean of other languages (points)",
                value_label: str = "gap") -> go.Figure:
    """Transfer gap (English minus the mean of the other languages) vs parameters, per family.

    Input: one row per (model, intermediate) for ONE target and metric — columns ``family``,
    ``model``, ``size``, ``intermediate``, ``value`` (the gap, points), optionally ``lo``/``hi``.
    One line per family through the baseline (``intermediate == NONE_TASK``) rows, or through
    the per-model mean over intermediate tasks when there is no baseline; with
    ``show_intermediates`` the intermediate-task rows are drawn as small grey points behind it.
    ``y_title`` / ``value_label`` rename the quantity when the same picture shows another per-model
    number against size (the published averages page draws cross-language averages with it).
    """
    _check_columns(summary, [family, size, value, intermediate, model], "gap_vs_size")
    fig = _style(go.Figure(), title)
    fig.update_layout(showlegend=True)   # name the family even when it is the only trace
    fig.update_xaxes(type="log", title_text="parameters")
    fig.update_yaxes(title_text=y_title)
    for k, fam in enumerate(sorted(summary[family].unique())):
        fam_df = summary[summary[family] == fam].sort_values(size)
        base = fam_df[fam_df[intermediate] == NONE_TASK]
        label = f"{fam} (no intermediate task)"
        if base.empty:
            base = fam_df.groupby([model, size], as_index=False)[value].mean().sort_values(size)
            label = f"{fam} (mean over intermediate tasks)"
        color = PALETTE[k % len(PALETTE)]
        if show_intermediates:
            rest = fam_df[fam_df[intermediate] != NONE_TASK]
            if not rest.empty:
                fig.add_trace(go.Scatter(
                    x=rest[size], y=rest[value], mode="markers", name=f"{fam}: with an intermediate task",
                    marker=dict(color=color, opacity=0.35, size=6, symbol=FAMILY_SYMBOL.get(fam, "circle")),
                    customdata=rest[[model, intermediate]].to_numpy(),
                    hovertemplate=f"%{{customdata[0]}} + %{{customdata[1]}}<br>{value_label} %{{y:.2f}}<extra></extra>"))
        fig.add_trace(go.Scatter(
            x=base[size], y=base[value], mode="lines+markers", name=label,
            line=dict(color=color, width=2, dash=FAMILY_DASH.get(fam, "solid")),
            marker=dict(size=9, symbol=FAMILY_SYMBOL.get(fam, "circle")),
            error_y=_ci_arrays(base, value, lo, hi), customdata=base[[model]].to_numpy(),
            hovertemplate=f"%{{customdata[0]}} (%{{x:.3s}} params)<br>{value_label} %{{y:.2f}}<extra></extra>"))
    return fig


def gain_vs_difficulty(table: pd.DataFrame, *, difficulty: str = "difficulty", value: str = "gain_avg",
                       model: str = "model", intermediate: str = "intermediate",
                       lo: str | None = "gain_avg_lo", hi: str | None = "gain_avg_hi",
                       title: str = "Gain vs intermediate-task difficulty") -> go.Figure:
    """Gain (y) vs task difficulty (x, 0 = solved, 1 = chance), one colour per model.

    Input: one row per (model, intermediate task) — columns ``model``, ``intermediate``,
    ``difficulty`` (from ``robustness``: 1 − chance-normalised English dev score), ``value``,
    optionally ``lo``/``hi``. Each model gets an OLS line (a visual guide; drawn only with
    ≥ 3 tasks of distinct difficulty) and the task names as hover text.
    """
    _check_columns(table, [difficulty, value, model, intermediate], "gain_vs_difficulty")
    if table.dropna(subset=[difficulty, value]).empty:
        return no_data(title, "No intermediate task has both a gain and an English dev score yet.")
    fig = _style(go.Figure(), title)
    fig.update_xaxes(title_text="task difficulty (1 − chance-normalised English dev score)")
    fig.update_yaxes(title_text="gain over baseline (points)")
    for k, m in enumerate(model_order(table, model=model)):
        sub = table[table[model] == m].dropna(subset=[difficulty, value]).sort_values(difficulty)
        color = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(
            x=sub[difficulty], y=sub[value], mode="markers", name=m, legendgroup=m,
            marker=dict(color=color, size=9), error_y=_ci_arrays(sub, value, lo, hi),
            customdata=sub[[intermediate]].to_numpy(),
            hovertemplate=f"{m} + %{{customdata[0]}}<br>difficulty %{{x:.2f}}<br>gain %{{y:+.2f}}<extra></extra>"))
        x, y = sub[difficulty].to_numpy(float), sub[value].to_numpy(float)
        if len(np.unique(x)) >= 3:
            slope, intercept = np.polyfit(x, y, 1)
            xs = np.array([x.min(), x.max()])
            fig.add_trace(go.Scatter(x=xs, y=intercept + slope * xs, mode="lines", legendgroup=m,
                                     showlegend=False, line=dict(color=color, width=1.5, dash="dash"),
                                     hovertemplate=f"{m}: OLS slope {slope:+.2f} points per unit difficulty"
                                                   "<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#888", width=1, dash="dot"))
    return fig


def language_bars(scores: pd.DataFrame, *, by: str = "model", score: str = "score", lang: str = "lang",
                  seed: str = "seed", languages: Sequence[str] | None = None,
                  title: str | None = None) -> go.Figure:
    """Score per language, bars grouped by ``by`` (a model or an intermediate task column).

    Input: a scores table (``results/scores.csv`` layout) filtered to ONE target and metric —
    columns ``lang``, ``score`` (0..100), ``by``, optionally ``seed``. Bars are the mean over
    seeds; error bars (± one standard deviation over seeds) appear when there are ≥ 2 seeds.
    ``languages`` fixes the x order (default: English first, then alphabetical).
    """
    _check_columns(scores, [lang, score, by], "language_bars")
    group_cols = [by, lang]
    agg = scores.groupby(group_cols)[score].agg(["mean", "std", "count"]).reset_index()
    langs = list(languages) if languages is not None else sorted(agg[lang].unique(), key=lambda x: (x != "en", x))
    if by == "model" and "model" in scores.columns:
        groups = model_order(scores)
    else:
        groups = sorted(agg[by].unique(), key=lambda g: (g != NONE_TASK, str(g)))
    fig = _style(go.Figure(), title or f"Zero-shot score per language, by {by}")
    for k, g in enumerate(groups):
        sub = agg[agg[by] == g].set_index(lang).reindex(langs)
        err = sub["std"].to_numpy(float)
        show_err = bool((sub["count"] >= 2).any())
        fig.add_trace(go.Bar(
            x=langs, y=sub["mean"], name=str(g), marker_color=PALETTE[k % len(PALETTE)],
            error_y=dict(type="data", array=np.nan_to_num(err), visible=show_err, thickness=1, width=3),
            customdata=sub["count"].fillna(0).to_numpy()[:, None],
            hovertemplate=f"{g}<br>%{{x}}: %{{y:.1f}} (mean of %{{customdata[0]}} seed(s))<extra></extra>"))
    fig.update_layout(barmode="group", bargap=0.2, bargroupgap=0.05)
    fig.update_xaxes(title_text="language")
    fig.update_yaxes(title_text=f"{score} (0–100)", rangemode="tozero")
    return fig


def seed_spread(points: pd.DataFrame, *, model: str = "model", run: str = "intermediate", seed: str = "seed",
                value: str = "score", title: str | None = None, y_title: str = "cross-language mean") -> go.Figure:
    """Each seed of each run as a point: one panel per model, runs along x (the baseline first), so a run
    whose seeds scatter (one seed far under the others) shows at a glance, beside runs whose seeds agree.
    The pooled seed variance behind the book's intervals assumes a model's runs scatter alike; this is
    the figure that shows whether they do.

    Input: one row per (model, run, seed) with ``value`` (e.g. the cross-language mean of one target's
    primary metric over that seed's languages). A short horizontal bar marks each run's mean over seeds."""
    _check_columns(points, [model, run, seed, value], "seed_spread")
    models = model_order(points, model=model) if "family" in points.columns else sorted(points[model].unique())
    fig = make_subplots(rows=1, cols=len(models), shared_yaxes=True, horizontal_spacing=0.04,
                        subplot_titles=[str(m) for m in models])
    seeds = sorted(points[seed].unique())
    for c, m in enumerate(models, start=1):
        sub = points[points[model] == m]
        runs = sorted(sub[run].unique(), key=lambda r: (r != NONE_TASK, str(r)))
        for k, sd in enumerate(seeds):
            p = sub[sub[seed] == sd].set_index(run).reindex(runs).dropna(subset=[value])
            fig.add_trace(go.Scatter(
                x=p.index.astype(str), y=p[value], mode="markers", name=f"seed {sd}", legendgroup=f"seed {sd}",
                showlegend=c == 1, marker=dict(color=PALETTE[k % len(PALETTE)], size=9, symbol="circle-open",
                                               line=dict(width=2)),
                hovertemplate=f"{m} · %{{x}} · seed {sd}: %{{y:.2f}}<extra></extra>"), row=1, col=c)
        means = sub.groupby(run)[value].mean().reindex(runs)
        fig.add_trace(go.Scatter(x=[str(r) for r in runs], y=means, mode="markers", name="mean over seeds",
                                 legendgroup="mean", showlegend=c == 1,
                                 marker=dict(symbol="line-ew", size=22, line=dict(width=2, color="#444")),
                                 hovertemplate=f"{m} · %{{x}}: mean %{{y:.2f}}<extra></extra>"), row=1, col=c)
        # the order of the runs, not of first appearance (a seed left out of one run would reorder them)
        fig.update_xaxes(categoryorder="array", categoryarray=[str(r) for r in runs], row=1, col=c)
    _style(fig, title or "Each seed of each run", height=420)
    fig.update_yaxes(title_text=y_title, row=1, col=1)
    fig.update_xaxes(tickangle=-30)
    return fig


def loss_curve(log_history: Sequence[dict], *, title: str = "Training loss") -> go.Figure:
    """Training loss against optimizer step, from a Trainer's ``log_history`` (entries with ``loss``)."""
    pts = [(h["step"], float(h["loss"])) for h in log_history if "loss" in h and "step" in h]
    fig = _style(go.Figure(), title, height=340)
    if pts:
        x, y = zip(*pts)
        fig.add_trace(go.Scatter(x=x, y=y, mode="lines+markers", name="loss", marker_color=PALETTE[0],
                                 hovertemplate="step %{x}: loss %{y:.3f}<extra></extra>"))
    fig.update_xaxes(title_text="optimizer step")
    fig.update_yaxes(title_text="training loss")
    return fig


def learning_curve(points: Sequence[dict], *, batch_size: int, metric: str = "F1",
                   title: str = "Training loss against examples seen, one run per training-set size") -> go.Figure:
    """Runs of one model on growing training sets: the training loss (y) against examples seen (x = step ×
    ``batch_size``), one line per run, its final score in the legend. ``points``: dicts with ``train_n``,
    ``loss_curve`` ([step, loss] pairs) and ``score`` (the English score on ``metric``)."""
    fig = _style(go.Figure(), title, height=380)
    for k, p in enumerate(sorted(points, key=lambda p: p["train_n"])):
        steps, losses = zip(*p["loss_curve"]) if p["loss_curve"] else ((), ())
        fig.add_trace(go.Scatter(x=[s * batch_size for s in steps], y=losses, mode="lines+markers",
                                 name=f"{p['train_n']:,} questions: English {metric} {p['score']:.1f}",
                                 marker_color=PALETTE[k % len(PALETTE)],
                                 hovertemplate="%{x:,} examples seen: loss %{y:.2f}<extra></extra>"))
    fig.update_xaxes(title_text="training examples seen (step × batch size)")
    fig.update_yaxes(title_text="training loss per target token")
    return fig


def run_language_bars(scores: dict[str, dict[str, float]], *, title: str = "Score per language") -> go.Figure:
    """One run's score per language (``metrics.json["scores"]``: lang -> {metric: value, "n": n}).

    English (the training language) first and darker; a dashed line marks the mean of the others.
    """
    langs = sorted(scores, key=lambda x: (x != "en", x))
    metric = next(k for k in scores[langs[0]] if k != "n")
    y = [scores[lang][metric] for lang in langs]
    fig = _style(go.Figure(), title, height=360)
    fig.add_trace(go.Bar(x=langs, y=y, name=metric,
                         marker_color=[PALETTE[1] if lang == "en" else PALETTE[0] for lang in langs],
                         customdata=[[scores[lang].get("n", 0)] for lang in langs],
                         hovertemplate="%{x}: %{y:.1f} (n=%{customdata[0]})<extra></extra>"))
    others = [v for lang, v in zip(langs, y) if lang != "en"]
    if others:
        fig.add_hline(y=float(np.mean(others)), line=dict(color="#555", dash="dash", width=1),
                      annotation_text=f"mean of non-English: {np.mean(others):.1f}")
    fig.update_xaxes(title_text="language (en = training language)")
    fig.update_yaxes(title_text=f"{metric} (0–100)", rangemode="tozero")
    return fig


def delta_bars(table: pd.DataFrame, *, lang: str = "lang", delta: str = "delta",
               title: str = "Change over the baseline per language") -> go.Figure:
    """Per-language difference of one run over its no-intermediate baseline (``report.language_table``).

    Green bars: the intermediate task helped that language; red: negative transfer. English first.
    """
    _check_columns(table, [lang, delta], "delta_bars")
    t = table.dropna(subset=[delta])
    fig = _style(go.Figure(), title, height=340)
    fig.add_trace(go.Bar(x=t[lang], y=t[delta], name="run − baseline",
                         marker_color=["#2ca02c" if v >= 0 else "#d62728" for v in t[delta]],
                         hovertemplate="%{x}: %{y:+.1f} points<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#555", width=1))
    fig.update_xaxes(title_text="language (en = training language)")
    fig.update_yaxes(title_text="run − baseline (points)")
    return fig


def show(fig: go.Figure):
    """Display ``fig`` in a notebook or book page, relying on the page's own plotly.js.

    Why not ``fig.show()``: that embeds a renderer-specific bundle (or a CDN link); here
    the book loads ``_static/plotly.min.js`` once per page and every figure is a small div.
    The display bundle also carries plotly's JSON mimetype, which JupyterLab renders
    natively, so the same call draws the figure when a person edits the notebook.
    Returns the ``IPython.display.HTML`` object (handy for tests).
    """
    import json

    from IPython.display import HTML, display

    html = HTML(fig.to_html(include_plotlyjs=False, full_html=False, config={"responsive": True, "displaylogo": False}))
    display({"application/vnd.plotly.v1+json": json.loads(fig.to_json()), "text/html": html.data}, raw=True)
    return html


def scaling_figure(df: pd.DataFrame, *, sweep: str = "sweep", wall: str = "node_wall_s",
                   rss: str = "peak_rss_mb") -> go.Figure:
    """Cost of one phase-2 node as the training set grows and as the model deepens (``xlt bench``, item 5).

    ``df`` is ``bench/scaling.csv``: one row per fresh-process run, ``sweep`` = ``"train_n"`` (x =
    training examples) or ``"layers"`` (x = encoder layers). Top row: node wall time; bottom row:
    peak RSS. Points joined in x order; the linear fit and its R² are reported in bench/results.md.
    """
    _check_columns(df, [sweep, wall, rss], "scaling_figure")
    panels = [(s, x, t) for s, x, t in (("train_n", "train_n", "training examples"), ("layers", "layers", "encoder layers"))
              if (df[sweep] == s).any()]
    if not panels:
        raise ValueError(f"scaling_figure: column {sweep!r} holds {sorted(df[sweep].unique())}; "
                         f"expected 'train_n' and/or 'layers' (rows written by xlt_helpers.bench)")
    fig = make_subplots(rows=2, cols=len(panels), shared_xaxes=False, vertical_spacing=0.14, horizontal_spacing=0.1,
                        subplot_titles=[f"vs {t}" for _, _, t in panels])
    for col, (s, x, title) in enumerate(panels, start=1):
        _check_columns(df, [x], "scaling_figure")
        sub = df[df[sweep] == s].sort_values(x)
        label = ", ".join(sorted(sub["model"].astype(str).unique())) if "model" in sub.columns else ""
        for row, (y, ytitle, colour) in enumerate(((wall, "node wall time (s)", PALETTE[0]),
                                                   (rss, "peak RSS (MB)", PALETTE[1])), start=1):
            fig.add_trace(go.Scatter(x=sub[x], y=sub[y], mode="lines+markers", marker_color=colour,
                                     line=dict(color=colour), name=f"{ytitle} vs {title}", showlegend=False,
                                     hovertemplate=f"{title} %{{x}}: %{{y:.1f}} ({label})<extra></extra>"),
                          row=row, col=col)
            fig.update_yaxes(title_text=ytitle if col == 1 else None, rangemode="tozero", row=row, col=col)
        fig.update_xaxes(title_text=title, rangemode="tozero", row=2, col=col)
    return _style(fig, "Cost of one phase-2 node (one fresh process per point)", height=560)


# --------------------------------------------------------------------------- full scale (published tables)

def _millions(n: float) -> str:
    return f"{n / 1e9:.2f}B" if n >= 1e9 else f"{n / 1e6:.0f}M"


def gap_vs_params(gaps: pd.DataFrame, fits: pd.DataFrame, *, value: str = "gap", x: str = "non_embedding",
                  total: str = "total", family: str = "family", paper: str = "paper", model: str = "model",
                  reference: pd.DataFrame | None = None, reference_value: str = "gap_tt",
                  reference_label: str = "mT5 translate-train (reference: target-language data)",
                  title: str = "Transfer gap vs non-embedding parameters") -> go.Figure:
    """Transfer gap (y) vs non-embedding parameters (log x), one marker series per (family, paper), and
    each family's fitted line ``gap = intercept + slope * log10(x)`` over its ladder's range.

    ``gaps``: one row per model for ONE task and metric (published.transfer_gaps with sizes): columns
    ``family, paper, model, value, x, total``. ``fits``: published.gap_size_fit's per-family table
    (``family, models, slope, slope_lo, slope_hi, intercept``); the slope and its interval go in the
    legend. ``reference`` (optional): ``model, reference_value, x`` drawn as a dotted grey line.
    Hover: model, paper, gap, non-embedding and total parameters."""
    _check_columns(gaps, [family, paper, model, value, x, total], "gap_vs_params")
    fig = _style(go.Figure(), title, height=480)
    fig.update_layout(showlegend=True)
    fig.update_xaxes(type="log", title_text="non-embedding parameters (log scale; total in the hover)")
    fig.update_yaxes(title_text="English − mean of other languages (points)")
    fams = sorted(gaps[family].unique())
    for (fam, pap), g in gaps.sort_values(x).groupby([family, paper], sort=True):
        k = fams.index(fam)
        in_fit = fits is not None and not fits[(fits["family"] == fam) &
                                               fits["models"].str.contains(g[model].iloc[0], regex=False)].empty
        fig.add_trace(go.Scatter(
            x=g[x], y=g[value], mode="markers+text", name=f"{fam}: {pap}",
            text=g[model], textposition="top center", textfont=dict(size=10, color="#555"),
            marker=dict(size=11 if in_fit else 13, color=PALETTE[k % len(PALETTE)] if in_fit else "white",
                        line=dict(color=PALETTE[k % len(PALETTE)], width=2), symbol=FAMILY_SYMBOL.get(fam, "circle")),
            customdata=np.column_stack([g[model], [_millions(v) for v in g[total]], [_millions(v) for v in g[x]],
                                        g[paper]]),
            hovertemplate=("%{customdata[0]} (%{customdata[3]})<br>gap %{y:.2f} points<br>non-embedding "
                           "%{customdata[2]}, total %{customdata[1]}<extra></extra>")))
    if fits is not None:
        for _, f in fits.iterrows():
            k = fams.index(f["family"]) if f["family"] in fams else 0
            members = gaps[gaps[model].isin([m.strip() for m in f["models"].split(",")])]
            if members.empty:
                continue
            xs = np.geomspace(members[x].min(), members[x].max(), 20)
            fig.add_trace(go.Scatter(
                x=xs, y=f["intercept"] + f["slope"] * np.log10(xs), mode="lines",
                name=(f"{f['family']} fit: slope {f['slope']:+.2f} [{f['slope_lo']:+.2f}, {f['slope_hi']:+.2f}] "
                      "per 10x"),
                line=dict(color=PALETTE[k % len(PALETTE)], width=1.6, dash=FAMILY_DASH.get(f["family"], "solid")),
                hoverinfo="skip"))
    if reference is not None and not reference.empty:
        r = reference.sort_values(x)
        fig.add_trace(go.Scatter(x=r[x], y=r[reference_value], mode="lines+markers", name=reference_label,
                                 line=dict(color="#999", width=1.4, dash="dot"), marker=dict(size=6, color="#999"),
                                 customdata=r[[model]].to_numpy(),
                                 hovertemplate="%{customdata[0]} translate-train<br>gap %{y:.2f}<extra></extra>"))
    return fig


def _grid(table: pd.DataFrame, row: str, col: str, value: str,
          columns: Sequence[str] | None) -> tuple[list, list, np.ndarray]:
    """The matrix both full-scale heatmaps draw: rows sorted by their mean ``value`` (largest last, so
    on top), columns in ``columns`` order (else first appearance), NaN where a cell has no row."""
    cols = list(columns) if columns is not None else list(dict.fromkeys(table[col]))
    rows = table.groupby(row)[value].mean().sort_values().index.tolist()
    z = np.full((len(rows), len(cols)), np.nan)
    for _, r in table.iterrows():
        if r[col] in cols:
            z[rows.index(r[row]), cols.index(r[col])] = float(r[value])
    return rows, cols, z


def language_gap_heatmap(table: pd.DataFrame, *, model: str = "model", lang: str = "lang", value: str = "gap",
                         models: Sequence[str] | None = None,
                         title: str = "Gap to English per language, by model size") -> go.Figure:
    """Language (rows, largest mean gap on top) × model (columns, in ``models`` order, e.g. by size);
    a cell is English minus that language (points). Input: one row per (model, language)."""
    _check_columns(table, [model, lang, value], "language_gap_heatmap")
    langs, cols, z = _grid(table, lang, model, value, models)
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=langs, text=np.vectorize(lambda v: f"{v:.1f}")(z),
                               texttemplate="%{text}", colorscale="Oranges", zmin=0,
                               hovertemplate="%{x}, %{y}: English − %{y} = %{z:.1f} points<extra></extra>",
                               colorbar=dict(title=dict(text="gap<br>(points)"), thickness=14), xgap=2, ygap=2))
    fig.update_xaxes(title_text="model (by size)", showline=False, ticks="")
    fig.update_yaxes(title_text="language", showline=False, ticks="")
    return _style(fig, title, height=max(300, 140 + 30 * len(langs)))


def catch_up_scatter(table: pd.DataFrame, *, share: str = "share", closed: str = "closed", lang: str = "lang",
                     title: str = "Share of each language's gap closed by scaling vs its pre-training share"
                     ) -> go.Figure:
    """Per language: pre-training share (log x, %) vs the fraction of its own gap to English that
    scaling closed (y, %), labelled with the language code. Input: published.catch_up's table."""
    _check_columns(table, [share, closed, lang], "catch_up_scatter")
    t = table.dropna(subset=[share, closed])
    fig = _style(go.Figure(), title)
    fig.add_trace(go.Scatter(x=t[share], y=100 * t[closed], mode="markers+text", text=t[lang],
                             textposition="top center", marker=dict(size=10, color=PALETTE[1]), showlegend=False,
                             hovertemplate="%{text}: %{x:.2f}% of pre-training data<br>%{y:.0f}% of its gap "
                                           "closed<extra></extra>"))
    fig.update_xaxes(type="log", title_text="share of mT5's pre-training data (%, log scale)")
    fig.update_yaxes(title_text="share of the language's gap closed (%)", rangemode="tozero")
    return fig


def xstilts_vs_reference(comp: pd.DataFrame, *, title: str = "X-STILTs' gain at full scale vs the reference "
                                                                "study's, per shared task") -> go.Figure:
    """Per (model, target, task) shared by X-STILTs and the reference study: X-STILTs' gain (x; XLM-R Large,
    no MLM) vs the reference study's gain of the cross-language mean with its 95% interval (y), one colour
    per reference model, the task as the label. The axes cross at 0: points in the upper-right and lower-left
    quadrants agree in sign. Input: ``published.compare_with_reference``'s table."""
    if comp.empty:     # compare_with_reference's answer when no task is shared: say so, not an error
        return no_data(title, "The reference study shares no intermediate task with X-STILTs yet.")
    _check_columns(comp, ["model", "target", "task", "xstilts_gain", "reference_gain"], "xstilts_vs_reference")
    fig = _style(go.Figure(), title)
    symbols = {t: s for t, s in zip(sorted(comp["target"].unique()), ("circle", "diamond", "square"))}
    for k, m in enumerate(model_order(comp)):       # family and size when the table carries them
        for target, sub in comp[comp["model"] == m].groupby("target", sort=True):
            lo, hi = ("reference_lo", "reference_hi") if "reference_lo" in sub else (None, None)
            fig.add_trace(go.Scatter(
                x=sub["xstilts_gain"], y=sub["reference_gain"], mode="markers+text", text=sub["task"],
                textposition="top center", name=f"{m} on {target.upper()}",
                marker=dict(color=PALETTE[k % len(PALETTE)], size=10, symbol=symbols[target]),
                error_y=_ci_arrays(sub, "reference_gain", lo, hi),
                hovertemplate=f"{m}, {target.upper()}: %{{text}}<br>X-STILTs %{{x:+.1f}}<br>reference "
                              "%{y:+.2f}<extra></extra>"))
    fig.add_hline(y=0, line=dict(color="#888", width=1, dash="dot"))
    fig.add_vline(x=0, line=dict(color="#888", width=1, dash="dot"))
    fig.update_xaxes(title_text="X-STILTs gain, XLM-R Large (points; Phang et al. 2020, Table 2)")
    fig.update_yaxes(title_text="reference study gain, cross-language mean (points, 95% CI)")
    return fig


def task_target_heatmap(table: pd.DataFrame, *, task: str = "intermediate", target: str = "target",
                        value: str = "gain", targets: Sequence[str] | None = None,
                        title: str = "Gain of each intermediate task per target") -> go.Figure:
    """Intermediate task (rows, best mean gain on top) × target task (columns, in ``targets`` order);
    a cell is the printed gain over the baseline (points; colours diverge around 0). Input: one row per
    (task, target) — filter to one metric per target and one training setting first."""
    _check_columns(table, [task, target, value], "task_target_heatmap")
    if table.duplicated([task, target]).any():
        raise ValueError("task_target_heatmap: several rows per (task, target); filter to one metric per target "
                         "and one setting (e.g. mlm == 'no') first.")
    tasks, cols, z = _grid(table, task, target, value, targets)
    bound = float(np.nanmax(np.abs(z))) if np.isfinite(z).any() else 1.0
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=tasks, text=np.vectorize(lambda v: f"{v:+.1f}")(z),
                               texttemplate="%{text}", colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound,
                               hovertemplate="%{y} → %{x}: %{z:+.1f} points<extra></extra>",
                               colorbar=dict(title=dict(text="gain<br>(points)"), thickness=14), xgap=2, ygap=2))
    fig.update_xaxes(title_text="target task", showline=False, ticks="")
    fig.update_yaxes(title_text="intermediate task", showline=False, ticks="")
    return _style(fig, title, height=max(300, 150 + 40 * len(tasks)))
