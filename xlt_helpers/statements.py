"""The statements the book's pages print, generated from the results: never hand-written numbers.

Each ``*_statements`` function turns what :mod:`xlt_helpers.analysis` (the results page's sections and
tables) and :mod:`xlt_helpers.robustness` computed into Markdown bullet lines: the brief (the conclusion's, and
the analysis notebook's), the conclusion's detail section (:func:`detail_statements`), the size and family
contrasts (:class:`Contrast`), the difficulty and V-information correlations, the decisiveness of the
intervals, and the full-scale chapter's answer in brief. Kept
apart from the sections so that a page's prose and its figures can change independently.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd

from . import robustness
from .analysis import (Analysis, _primary, decisiveness, difficulty_correlations, size_steps, slope_changes,
                       v_information_correlations)
from .published import FullScale, average_gains, average_size_change, compare_with_reference, reference_agreement
from .tasks import NONE_TASK, primary_metric, targets_in


def slope_change_statements(a: Analysis) -> list[str]:
    """Markdown bullets: the change of the gain-vs-difficulty slope with size, per family and target, with
    its interval where the tasks allow one and the reason where they do not."""
    slopes = slope_changes(a)
    if slopes.empty:
        return ["- No family has two sizes with intermediate-task gains and difficulties: the change of the "
                "gain-vs-difficulty slope with size is not estimable."]
    out = []
    for r in slopes.itertuples():
        def num(v: float) -> str:
            return "–" if pd.isna(v) else f"{v:+.1f}"

        head = (f"- {r.target.upper()}, {r.family}, `{r.small}` ({r.k_small} tasks) → `{r.large}` ({r.k_large} tasks): "
                f"slope of gain on difficulty {num(r.slope_small)} → {num(r.slope_large)}, change {num(r.slope_change)}")
        if pd.isna(r.lo):
            out.append(f"{head}; no interval ({r.status}).")
        else:
            out.append(f"{head} [{r.lo:+.1f}, {r.hi:+.1f}] ({_sig(r.lo, r.hi)}; df {r.df:.1f}"
                       + ("" if r.status == "ok" else f"; {r.status}") + ").")
    return out


def v_information_statements(a: Analysis) -> list[str]:
    """Markdown bullets: Spearman ρ of gain on V-usable information per model, on each target's
    primary metric, with the same rules as the difficulty correlation (ρ from 3 tasks, CI from 5)."""
    corr = v_information_correlations(a)
    if corr.empty:
        return ["- No phase-1 run recorded V-usable information, so this measure is not available."]
    return _correlation_lines(corr)


def _correlation_lines(corr: pd.DataFrame) -> list[str]:
    """One bullet per row of a gain-vs-difficulty table: ρ from 3 tasks, its interval from 5."""
    out = []
    for _, r in corr.iterrows():
        n = int(r["n"])
        head = f"- `{r['model']}` on {r['target'].upper()} ({r['metric']}), {_count(n, 'task')}"
        if pd.isna(r["spearman_rho"]):
            out.append(f"{head}: a correlation needs at least {robustness.MIN_POINTS_FOR_CORRELATION}.")
        elif pd.isna(r["spearman_rho_lo"]):
            out.append(f"{head}: ρ = {r['spearman_rho']:+.2f} (too few tasks for an interval).")
        else:
            out.append(f"{head}: ρ = {r['spearman_rho']:+.2f} [{r['spearman_rho_lo']:+.2f}, "
                       f"{r['spearman_rho_hi']:+.2f}] ({_sig(r['spearman_rho_lo'], r['spearman_rho_hi'])}).")
    return out


def difficulty_statements(a: Analysis) -> list[str]:
    """Markdown bullets: Spearman ρ of gain on score-based difficulty per model and target."""
    corr = difficulty_correlations(a)
    if corr.empty:
        return ["- No intermediate-task results with gains yet: no correlation with difficulty."]
    return _correlation_lines(corr)


def best_task_statements(a: Analysis) -> list[str]:
    """Markdown: per target (primary metric) and model, the best intermediate task's gain with its
    95% interval, and how many tasks help or hurt significantly."""
    lines: list[str] = []
    for target in a.targets:
        metric, s = _primary(a, target)
        inter = s[s["intermediate"] != NONE_TASK].dropna(subset=["gain_avg"])
        lines.append(f"\n**{target.upper()} ({metric}, cross-language mean)**\n")
        for model, g in inter.groupby("model", sort=False):
            best = g.loc[g["gain_avg"].idxmax()]
            has_ci = g["gain_avg_lo"].notna().any()
            ci = f" [{best['gain_avg_lo']:+.1f}, {best['gain_avg_hi']:+.1f}]" if pd.notna(best["gain_avg_lo"]) else ""
            n_pos = int(((g["sig_avg"] == True) & (g["gain_avg"] > 0)).sum())   # noqa: E712 (NaN-safe)
            n_neg = int(((g["sig_avg"] == True) & (g["gain_avg"] < 0)).sum())   # noqa: E712
            sig = (f"; {n_pos} of {_count(len(g), 'task')} help significantly, {n_neg} hurt significantly" if has_ci
                   else "; no per-example scores, so no confidence intervals")
            lines.append(f"- `{model}`: best intermediate task **{best['intermediate']}** "
                         f"({best['gain_avg']:+.1f} points{ci}){sig}.")
    return lines


def _significant(lo: float, hi: float) -> bool:
    return bool(pd.notna(lo) and pd.notna(hi) and (lo > 0 or hi < 0))


def central_statements(a: Analysis) -> list[str]:
    """The study's question first (issue 16): per family and target, how the slope of gain on difficulty
    changes from the smaller to the larger model, with its interval; a family with one size in the results
    is named as one where the change cannot be estimated, rather than left out."""
    slopes = slope_changes(a)
    prim = pd.concat([_primary(a, t)[1] for t in a.targets]) if a.targets else pd.DataFrame()
    if prim.empty:
        return []
    parts = []
    for r in slopes.itertuples() if not slopes.empty else ():
        if pd.isna(r.slope_change):
            continue
        ci = (f" [{r.lo:+.1f}, {r.hi:+.1f}], {_sig(r.lo, r.hi)}" if pd.notna(r.lo)
              else f" (no interval: {r.status.removeprefix('undefined: ')})")
        parts.append(f"{r.family}s `{r.small}` → `{r.large}` on {r.target.upper()}: {r.slope_small:+.1f} → "
                     f"{r.slope_large:+.1f} points of gain per unit of difficulty, a change of "
                     f"{r.slope_change:+.1f}{ci}")
    inter = prim[prim["intermediate"] != NONE_TASK]
    for (family, target), g in inter.groupby(["family", "target"], sort=True):
        models = g["model"].unique()
        if len(models) == 1:
            parts.append(f"{family}s on {target.upper()}: one size (`{models[0]}`), so no change with size")
    if not parts:
        return []
    return ["- **Size × task difficulty, the study's question:** how the slope of the cross-language mean gain on "
            "intermediate-task difficulty (0 = solved, 1 = chance) changes from the smaller to the larger model: "
            + "; ".join(parts) + "."]


def below_floor_statements(low: pd.DataFrame | None) -> list[str]:
    """One bullet naming every intermediate-task run seed that ended below its target's floor
    (:func:`analysis.runs_below_floor`, ``Analysis.failed``), with the gain without it (what the book
    reports: :func:`analysis.analyse` leaves such seeds out) and with it, so a reader sees what leaving
    it out changes."""
    if low is None or low.empty:
        return []
    named = "; ".join(f"`{r.model}` + {r.intermediate} on {r.target.upper()}, seed {r.seed}: English {r.en:.1f} "
                      f"(floor {r.floor:g}); mean gain {r.gain_avg_without:+.1f} without it, {r.gain_avg:+.1f} with it"
                      for r in low.itertuples())
    return [f"- **Runs that failed to learn:** {_count(len(low), 'intermediate-task run seed')} ended below the target's "
            f"English floor and kept less than half of the baseline's margin over chance ({named}). They are left out of the gains and of the seed variance, and counted "
            "here: a failure is an outcome of its own, not a draw from the seed spread the intervals assume "
            "(methods: floors)."]


def brief_statements(a: Analysis, central: bool = True) -> list[str]:
    """The answer in brief, as Markdown bullets: the study's central quantity first
    (:func:`central_statements`; ``central=False`` leaves it to a caller that states it elsewhere, as the
    conclusion does above the full-scale findings), then only what is significant at the 95% level is named
    (with its interval), everything else is counted, so a reader sees at once how much of the page is signal.
    Built from the same contrasts and correlations as the detailed statements."""
    lead, out = (central_statements(a) if central else []), []
    decisive = decisiveness(a)          # read by two bullets: computed once
    gains = pd.concat([_primary(a, t)[1] for t in a.targets]) if a.targets else pd.DataFrame()
    gains = gains[gains["intermediate"] != NONE_TASK].dropna(subset=["gain_avg_lo"]) if not gains.empty else gains
    if not gains.empty:
        sig = gains[[_significant(lo, hi) for lo, hi in zip(gains["gain_avg_lo"], gains["gain_avg_hi"])]]
        named = "; ".join(f"`{r.model}` + {r.intermediate} on {r.target.upper()} {r.gain_avg:+.1f} "
                          f"[{r.gain_avg_lo:+.1f}, {r.gain_avg_hi:+.1f}]" for r in sig.itertuples())
        n_pos, n_neg = int((sig["gain_avg"] > 0).sum()), int((sig["gain_avg"] < 0).sum())
        out.append(f"- **Intermediate tasks:** of {len(gains)} gains over the no-intermediate baseline (model × task "
                   f"× target), {n_pos} are significantly positive and {n_neg} significantly negative"
                   + (f": {named}." if named else "."))
        out += below_floor_statements(a.failed)
        out += seed_stability_brief(a, decisive)
    for kind, contrasts in (("size", size_contrasts(a)), ("family", family_contrasts(a))):
        done = [c for c in contrasts if c.result is not None]
        if not done:
            continue
        what = "Model size" if kind == "size" else "Model family (encoder → encoder-decoder)"
        parts = []
        for stat, label, usable in (("gap", "transfer gap", done), ("gain", "mean gain", [c for c in done if c.shared])):
            sig = [c for c in usable if _significant(c.result[f"{stat}_change_lo"], c.result[f"{stat}_change_hi"])]
            named = "; ".join(f"{c.models} on {c.target.upper()} {c.result[f'{stat}_change']:+.1f} "
                              f"[{c.result[f'{stat}_change_lo']:+.1f}, {c.result[f'{stat}_change_hi']:+.1f}]"
                              for c in sig)
            parts.append(f"the {label} changes significantly in {len(sig)} of {len(usable)} comparisons"
                         + (f" ({named})" if named else ""))
        out.append(f"- **{what}:** " + "; ".join(parts) + ".")
    for label, corr in (("score-based difficulty", difficulty_correlations(a)),
                        ("V-usable information", v_information_correlations(a))):
        if corr.empty:
            continue
        with_ci = corr.dropna(subset=["spearman_rho_lo"])
        sig = with_ci[[_significant(lo, hi) for lo, hi in zip(with_ci["spearman_rho_lo"], with_ci["spearman_rho_hi"])]]
        named = "; ".join(f"`{r.model}` on {r.target.upper()} ρ = {r.spearman_rho:+.2f} "
                          f"[{r.spearman_rho_lo:+.2f}, {r.spearman_rho_hi:+.2f}]" for r in sig.itertuples())
        out.append(f"- **Gain vs {label}:** {len(with_ci)} of {len(corr)} model × target correlations have the "
                   f"{robustness.MIN_POINTS_FOR_CI} or more tasks an interval needs; {len(sig)} exclude 0"
                   + (f" ({named})." if named else "."))
    return lead + (out + decisiveness_brief(a, decisive) if out else
                      ["- No results with per-example scores yet: no gains or contrasts with intervals to summarise."])


def seed_stability_brief(a: Analysis, d: pd.DataFrame | None = None) -> list[str]:
    """One bullet naming each model × target whose runs visibly differ in spread over seeds (Bartlett's
    p < 0.05, :func:`analysis.decisiveness`, or its table ``d`` when the caller has it): robustness to the
    seed is part of robustness, and an intermediate task that makes the target phase unstable is a finding
    the gains' means do not show."""
    d = decisiveness(a) if d is None else d
    if d.empty:
        return []
    parts = []
    for r in d[d["seed_homogeneity_p"] < 0.05].itertuples():
        sds = dict(r.seed_sd_by_run)
        base = sds.pop(NONE_TASK, None)
        after = _sd_list(sorted(sds.items(), key=lambda kv: -kv[1]))
        parts.append(f"`{r.model}` on {r.target.upper()} (Bartlett's test p = {r.seed_homogeneity_p:.3f}): SD over "
                     "seeds of the cross-language mean "
                     + (f"{base:.1f} without an intermediate task, " if base is not None else "")
                     + f"after each task {after}")
    if not parts:
        return []
    return ["- **Seed stability:** runs of one model that vary unlike over seeds: " + "; ".join(parts)
            + ". The intervals pool each model's seed variance over its runs (see the results page's seed figure)."]


def _count(n: int, noun: str) -> str:
    """``n`` and ``noun``, plural unless n is 1 (regular nouns only): the counts change as nodes land, so
    no sentence can fix the number."""
    return f"{n} {noun}" + ("" if n == 1 else "s")


def _sd_list(items) -> str:
    """``task sd`` pairs, in the order given, as the seed-stability sentences print them."""
    return ", ".join(f"{task} {sd:.1f}" for task, sd in items)


def _examples(v: float) -> str:
    return "unreachable by examples alone (the seed term is wider)" if v == float("inf") else f"{v:,.0f}"


def _half_widths_by_target(a: Analysis, d: pd.DataFrame):
    """Per target of :func:`analysis.decisiveness`'s table ``d``: (target, primary metric, the half-widths
    and MDEs of every intermediate-task gain with an interval, the target half-width, its rows of ``d``)."""
    for target, g in d.groupby("target", sort=False):
        metric, s = _primary(a, target)
        inter = s[s["intermediate"] != NONE_TASK]
        yield target, metric, inter["gain_avg_hw"].dropna(), inter["gain_avg_mde"].dropna(), \
            g["target_half_width"].iloc[0], g


def decisiveness_brief(a: Analysis, d: pd.DataFrame | None = None) -> list[str]:
    """One bullet: per target, the median half-width of its gains' intervals against issue 16's target
    (``d``: :func:`analysis.decisiveness`'s table when the caller has it)."""
    d = decisiveness(a) if d is None else d
    if d.empty:
        return []
    parts = []
    for target, metric, hw, mde, goal, g in _half_widths_by_target(a, d):
        why = ""
        if hw.median() > goal:
            need = "; ".join(f"`{r.model}` {_seeds(r.seeds_needed)}" for r in g.itertuples()
                             if r.median_half_width > goal)
            why = f"; seeds per arm that would meet it at these evaluation sets: {need}"
        parts.append(f"{target.upper()} ({metric}) ±{hw.median():.2f} over {len(hw)} gains against a target of "
                     f"±{goal:g} ({'met' if hw.median() <= goal else 'missed'}; median MDE at 80% power "
                     f"{mde.median():.2f}{why})")
    return ["- **How decisive:** median half-width of the gains' 95% intervals " + "; ".join(parts) + "."]


def decisiveness_statements(a: Analysis) -> list[str]:
    """Markdown bullets per target: the median half-width and MDE of all its gains against issue 16's
    target, then per model the evaluation size that would meet it (from its measured variance components)."""
    d = decisiveness(a)
    if d.empty:
        return ["- No per-example scores with replicated seeds: no intervals to size."]
    out = []
    for target, metric, hw, mde, goal, g in _half_widths_by_target(a, d):
        out.append(f"- **{target.upper()} ({metric})**, {_count(len(hw), 'gain')}: median half-width ±{hw.median():.2f} points, "
                   f"median MDE at 80% power {mde.median():.2f}; the target is ±{goal:g}, which the median "
                   f"{'meets' if hw.median() <= goal else 'misses'}. Per model, with {int(g['examples_per_lang'].iloc[0]):,} "
                   f"examples × {g['langs'].iloc[0]} languages now:")
        for r in g.itertuples():
            at = f"{_examples(r.examples_needed)} at {r.seeds} seeds"
            if r.seeds != 3:
                at += f", {_examples(r.examples_needed_3_seeds)} at 3 seeds"
            out.append(f"  - `{r.model}` ({_count(r.gains, 'gain')}, {_count(r.seeds, 'seed')}): median ±{r.median_half_width:.2f} "
                       f"(predicted from its components ±{r.predicted_half_width:.2f}); examples per language for "
                       f"±{goal:g}: {at}; seeds per arm for ±{goal:g} at {r.examples_per_lang:,} examples: "
                       f"{_seeds(r.seeds_needed)}.{_seed_spread(r)}")
    return out


def _seeds(v: float) -> str:
    return ("unreachable by seeds alone (the run-by-example term is wider)" if v == float("inf")
            else f"at least {v:,.0f}")


def _seed_spread(r) -> str:
    """A sentence when a model's runs visibly differ in seed spread (Bartlett p < 0.05), which the pooled
    seed variance averages away: the least steady runs' intervals are then too narrow, the steadiest too wide."""
    if not (r.seed_homogeneity_p < 0.05):
        return ""
    sds = _sd_list(sorted(r.seed_sd_by_run.items(), key=lambda kv: kv[1]))
    return (f" Its runs do not vary alike over seeds (Bartlett's test p = {r.seed_homogeneity_p:.3f}; SD over "
            f"seeds of the cross-language mean by run: {sds}): the pooled seed variance behind these intervals "
            "averages them, so the least steady runs' intervals are narrower, and the steadiest runs' wider, "
            "than their own spread would give.")


def _sig(lo: float, hi: float) -> str:
    return "significant at the 95% level" if _significant(lo, hi) else "not significant at the 95% level"


@dataclass(frozen=True)
class Contrast:
    """Two (family, model) runs of one target's primary metric compared on the same examples: their
    no-intermediate transfer gaps and, over the intermediate tasks both ran, their mean gains
    (``result`` = robustness.model_contrast; None when a baseline is ``missing``). ``kind`` is
    "size" (second is the larger model) or "family" (encoder vs encoder-decoder of one depth)."""

    kind: str
    target: str
    metric: str
    first: tuple[str, str]
    second: tuple[str, str]
    shared: tuple[str, ...]
    missing: tuple[str, ...]
    result: dict | None

    @property
    def models(self) -> str:
        return f"`{self.first[1]}` {'→' if self.kind == 'size' else 'vs'} `{self.second[1]}`"


def _compare(pe: pd.DataFrame, s: pd.DataFrame, kind: str, target: str, metric: str, first: tuple[str, str],
             second: tuple[str, str], components: pd.DataFrame | None) -> Contrast:
    """The :class:`Contrast` of two runs of ``s`` (one target's primary-metric summary)."""
    (_, a), (_, b) = first, second
    missing = tuple(m for m in (a, b) if not ((s["model"] == m) & (s["intermediate"] == NONE_TASK)).any())
    tasks = {m: set(s.loc[(s["model"] == m) & (s["intermediate"] != NONE_TASK), "intermediate"]) for m in (a, b)}
    shared = tuple(sorted(tasks[a] & tasks[b]))
    if missing:
        return Contrast(kind, target, metric, first, second, shared, missing, None)
    # model_contrast needs an intermediate task; with none shared the baseline stands in and its
    # (zero) gain is not reported
    c = robustness.model_contrast(pe, target, metric, first, second, list(shared) or [NONE_TASK], components=components)
    return Contrast(kind, target, metric, first, second, shared, (), c)


def _contrast_text(c: Contrast, label: str) -> str:
    """One Markdown bullet for a :class:`Contrast`, opened by ``label``; every change is second − first
    with its calibrated 95% interval, its half-width (±) and its minimal detectable effect at 80% power."""
    sep, change = ("→", "change") if c.kind == "size" else ("vs", "difference")
    if c.result is None:
        return f"- {label}: a no-intermediate baseline is missing for {list(c.missing)}; no {c.kind} contrast yet."
    r = c.result
    text = (f"- {label}: transfer gap without an intermediate task {r['gap_small']:.1f} {sep} "
            f"{r['gap_large']:.1f} points, {change} {r['gap_change']:+.1f} [{r['gap_change_lo']:+.1f}, "
            f"{r['gap_change_hi']:+.1f}] (±{r['gap_change_hw']:.1f}, MDE {r['gap_change_mde']:.1f}; "
            f"{_sig(r['gap_change_lo'], r['gap_change_hi'])})")
    if not c.shared:
        return text + f"; they share no intermediate task yet, so no {c.kind} contrast of the gain."
    return text + (f"; mean gain over the {_count(len(c.shared), 'shared intermediate task')} ({', '.join(c.shared)}) "
                   f"{r['gain_small']:+.1f} {sep} {r['gain_large']:+.1f}, {change} {r['gain_change']:+.1f} "
                   f"[{r['gain_change_lo']:+.1f}, {r['gain_change_hi']:+.1f}] (±{r['gain_change_hw']:.1f}, "
                   f"MDE {r['gain_change_mde']:.1f}; {_sig(r['gain_change_lo'], r['gain_change_hi'])}).")


def _size_pairs(a: Analysis):
    """(target, metric, family summary, small, large) for every size step of every family, or
    (target, metric, family summary, only model, None) for a family with one model."""
    for target in a.targets:
        metric, s = _primary(a, target)
        for family, f in s.groupby("family"):
            models = f.drop_duplicates("model").sort_values("size")["model"].tolist()
            if len(models) < 2:
                yield target, metric, family, f, models[0], None
            for small, large in size_steps(models):
                yield target, metric, family, f, small, large


def size_contrasts(a: Analysis) -> list[Contrast]:
    """Every size step of every family (:func:`size_steps`) on each target's primary metric."""
    if a.res.per_example is None:
        return []
    return [_compare(a.res.per_example, f, "size", target, metric, (family, small), (family, large), a.components)
            for target, metric, family, f, small, large in _size_pairs(a) if large is not None]


def size_statements(a: Analysis) -> list[str]:
    """Markdown bullets per (target, family): how the transfer gap and the mean intermediate-task gain
    change at each step up in size (and smallest → largest, see :func:`size_steps`), with calibrated 95%
    intervals (robustness.model_contrast). Families with one model, or without per-example
    scores, say so."""
    if a.res.per_example is None:
        return ["- No per-example scores in the results: no intervals for the size contrasts."]
    contrasts = iter(size_contrasts(a))
    out: list[str] = []
    for target, metric, family, _f, small, large in _size_pairs(a):
        if large is None:
            out.append(f"- {target.upper()}, {family}: one size (`{small}`) has results, so no size contrast.")
            continue
        c = next(contrasts)
        out.append(_contrast_text(c, f"{target.upper()} ({metric}), {family}, {c.models}"))
    return out


def depth_pairs(models: list[str]) -> list[tuple[str, str]]:
    """(encoder, encoder-decoder) model pairs of one source and encoder depth, e.g. (e5-L3, e5ed-L3):
    the like-for-like family comparison. Names outside the model registry pair with nothing."""
    from .models import MODELS

    specs = [MODELS[m] for m in models if m in MODELS]
    return [(e.name, d.name) for e in specs if e.family == "encoder" for d in specs
            if d.family == "encoder-decoder" and (d.source, d.encoder_layers) == (e.source, e.encoder_layers)]


def family_contrasts(a: Analysis) -> list[Contrast]:
    """Every depth-matched (encoder, encoder-decoder) pair (:func:`depth_pairs`) on each target's
    primary metric; the encoder-decoder is ``second``."""
    if a.res.per_example is None:
        return []
    out: list[Contrast] = []
    for target in a.targets:
        metric, s = _primary(a, target)
        for enc, dec in depth_pairs(s.drop_duplicates("model")["model"].tolist()):
            out.append(_compare(a.res.per_example, s, "family", target, metric, ("encoder", enc),
                                ("encoder-decoder", dec), a.components))
    return out


def family_statements(a: Analysis) -> list[str]:
    """One Markdown bullet per (target, depth-matched encoder / encoder-decoder pair): the transfer gap
    and mean intermediate-task gain of each, and the encoder-decoder's difference with a calibrated 95%
    interval (robustness.model_contrast; both models saw the same evaluation examples)."""
    if a.res.per_example is None:
        return ["- No per-example scores in the results: no intervals for the family contrasts."]
    contrasts = family_contrasts(a)
    out: list[str] = []
    for target in a.targets:
        metric, s = _primary(a, target)
        mine = [c for c in contrasts if c.target == target]
        if not mine:
            why = ("no encoder-decoder has results on it" if not (s["family"] == "encoder-decoder").any()
                   else "no encoder and encoder-decoder of the same depth both have results")
            out.append(f"- {target.upper()}: {why}, so no family contrast.")
        out += [_contrast_text(c, f"{target.upper()} ({metric}), `{c.first[1]}` (encoder) vs `{c.second[1]}` "
                                  "(encoder-decoder)") for c in mine]
    return out


def pub_papers(scores: pd.DataFrame) -> dict[str, str]:
    """model -> the paper whose run it is (published.csv's source), for the published models in ``scores``;
    a model outside published.csv maps to itself."""
    from .published import load_published, paper_of

    pub = load_published()
    known = pub.drop_duplicates("model").set_index("model")["source"].map(paper_of).to_dict()
    return {m: known.get(m, m) for m in scores["model"].unique()}


def published_size_statements(scores: pd.DataFrame) -> list[str]:
    """Markdown bullets: transfer gap from the smallest to the largest published model of each family
    and paper (a size change compares runs made under one protocol; no intermediate task), with an
    interval from resampling languages (no per-example scores exist)."""
    out: list[str] = []
    plain = scores[scores["intermediate"] == NONE_TASK]
    for target in targets_in(plain):
        metric = primary_metric(target)
        s = plain[(plain["target"] == target) & (plain["metric"] == metric)]
        papers = pub_papers(s)
        for (family, _), f in s.groupby([s["family"], s["model"].map(papers)]):
            models = f.drop_duplicates("model").sort_values("size")["model"].tolist()
            if len(models) < 2:
                continue
            small, large = models[0], models[-1]
            by = {m: f[f["model"] == m].groupby("lang")["score"].mean().to_dict() for m in (small, large)}
            c = robustness.language_resampled_gap_change(by[small], by[large])
            out.append(f"- {target.upper()} ({metric}), {family}, `{small}` → `{large}`: transfer gap "
                       f"{c['gap_small']:.1f} → {c['gap_large']:.1f} points, change {c['gap_change']:+.1f} "
                       f"[{c['gap_change_lo']:+.1f}, {c['gap_change_hi']:+.1f}] over {c['n_langs']} "
                       "non-English languages (interval: languages resampled).")
    return out


def published_average_statements(table: pd.DataFrame) -> list[str]:
    """Markdown bullets from the published *averages* (``published.average_table``): the score level
    against size within each paper's ladder, and any intermediate-task difference, each labelled
    with what an average cannot show (the transfer gap) and whether the runs share a paper."""
    out: list[str] = []
    for _, r in average_size_change(table).iterrows():
        if r["metric"] != primary_metric(r["task"]):
            continue
        trend = (", rising at every step" if r["monotone"] else ", not rising at every step") if r["n_models"] > 2 else ""
        caveat = (" Its per-language rows give its transfer gap as well." if r["per_language"] else
                  " Only these averages are public here; an average includes English, so it shows the level, "
                  "not the transfer gap.")
        out.append(f"- {r['task'].upper()} ({r['metric']}), {r['family']}, {r['paper']}: the cross-language "
                   f"average goes {r['avg_small']:.1f} → {r['avg_large']:.1f} from `{r['small']}` to `{r['large']}` "
                   f"({r['change']:+.1f} points over {r['n_models']} sizes{trend}; one published run, no interval)."
                   + caveat)
    for _, r in average_gains(table).iterrows():
        if r["metric"] != primary_metric(r["task"]):
            continue
        caveat = ("the same paper's runs" if r["same_paper"] else
                  f"runs from two papers ({r['paper']} vs {r['base_paper']}), so the difference also holds "
                  "two fine-tuning protocols and is not a controlled gain")
        out.append(f"- {r['task'].upper()} ({r['metric']}), `{r['model']}` with intermediate `{r['intermediate']}`: "
                   f"{r['with_task']:.1f} vs {r['base']:.1f} without, {r['gain']:+.1f} points; {caveat}.")
    return out


CHANCE_MARGIN = 5.0   # points above chance below which a baseline "learned nothing" (XNLI: 33.3 + 5)


def near_chance_statements(a: Analysis, margin: float = CHANCE_MARGIN) -> list[str]:
    """Markdown bullets naming every model whose no-intermediate English score is within ``margin``
    points of the target's chance level: its gains and gaps measure noise, and the page says so.
    A model whose seed mean clears the bar but one of whose seeds does not is named too, with the
    seed: a collapsed run inside a seed mean drags every gain, gap and contrast that uses it."""
    from .tasks import get_task

    out: list[str] = []
    for target in a.targets:
        chance = 100.0 * (get_task(target).chance or 0.0)
        metric, s = _primary(a, target)
        base = s[s["intermediate"] == NONE_TASK]
        for _, r in base[base["en"] < chance + margin].iterrows():
            out.append(f"- `{r['model']}` on {target.upper()}: English {metric} {r['en']:.1f} without an intermediate "
                       f"task, within {margin:g} points of chance ({chance:.1f}); its rows measure noise, not transfer.")
        sc = a.res.scores
        en = sc[(sc["target"] == target) & (sc["metric"] == metric) & (sc["intermediate"] == NONE_TASK)
                & (sc["lang"] == "en") & ~sc["model"].isin(base.loc[base["en"] < chance + margin, "model"])]
        for model, g in en.groupby("model", sort=False):
            low = g[g["score"] < chance + margin].sort_values("seed")
            if low.empty:
                continue
            fine = g[g["score"] >= chance + margin].sort_values("seed")
            seeds = ", ".join(f"seed {int(x.seed)} {x.score:.1f}" for x in low.itertuples())
            others = ", ".join(f"seed {int(x.seed)} {x.score:.1f}" for x in fine.itertuples())
            out.append(f"- `{model}` on {target.upper()}: without an intermediate task, English {metric} is within "
                       f"{margin:g} points of chance ({chance:.1f}) at {seeds}, against {others}: a run that "
                       "failed to learn sits inside this model's seed means, so read its gaps, gains and size "
                       "contrasts as lower bounds on what the model can do, not as its behaviour.")
    return out


# ------------------------------------------------------------------- the full-scale answer in brief

def _ci(v: float, lo: float, hi: float, fmt: str = "+.2f") -> str:
    return f"{v:{fmt}} [{lo:{fmt}}, {hi:{fmt}}]"


def full_scale_statements(fs: FullScale, reference: pd.DataFrame | None = None) -> list[str]:
    """The full-scale findings as Markdown bullets, from the papers' tables (:class:`published.FullScale`):
    the gap-vs-size slope of each family with its language-resampled interval and the difference, the
    equal-size comparison, how much scaling closes per language against pre-training share, what
    translate-train closes, and the X-STILTs ordering; with ``reference`` (the reference study's
    summary table: ``model, intermediate, target, metric, gain_avg[, _lo, _hi]``) also the agreement
    of X-STILTs' gains with the reference study's on the tasks both have."""
    out: list[str] = []
    names = {fam: f"{fam} ({paper}: {', '.join(ms)})" for (fam, paper), ms in fs.ladders.items()}
    slope_parts = []
    for (task, metric), (fits, diff) in fs.fits.items():
        f = fits.set_index("family")
        fams = "; ".join(f"{fam} {_ci(r.slope, r.slope_lo, r.slope_hi)} ({r.n_models} sizes)"
                         for fam, r in f.iterrows())
        d = (f"; difference {diff['families']} {_ci(diff['diff'], diff['diff_lo'], diff['diff_hi'])}"
             + (" (excludes 0)" if _significant(diff["diff_lo"], diff["diff_hi"]) else " (includes 0)")) if diff else ""
        slope_parts.append(f"{task.upper()} ({metric}) {fams}{d}, over {int(f['n_langs'].iloc[0])} languages")
    if slope_parts:
        out.append("- **Gap vs size at full scale** (published per-language tables; slope of the transfer gap per "
                   "10× non-embedding parameters, 95% interval from resampling languages, which covers which "
                   "languages were measured, not test-set noise, seeds or the papers' different fine-tuning): "
                   + "; ".join(slope_parts) + ". Ladders: " + "; ".join(names.values()) + ".")
    eq = []
    for (task, metric), t in fs.equal_size.items():
        for crit, r in t.set_index("criterion").iterrows():
            if crit == "non_embedding" and r["nearest"] == t.set_index("criterion").loc["total", "nearest"]:
                continue
            eq.append(f"{task.upper()} ({metric}) vs `{r['nearest']}` (nearest in "
                      f"{'total and non-embedding' if crit == 'total' and t['nearest'].nunique() == 1 else crit} "
                      f"parameters): gap {r['gap_model']:.1f} vs {r['gap_nearest']:.1f}, difference "
                      f"{_ci(r['diff'], r['diff_lo'], r['diff_hi'], '+.1f')}")
    if eq:
        model = next(iter(fs.equal_size.values()))["model"].iloc[0]
        out.append(f"- **Equal size** (`{model}`, XLM-R Large as run by XTREME and printed beside mT5): "
                   + "; ".join(eq) + " (mT5 minus XLM-R; languages resampled).")
    cu = []
    for (task, metric), t in fs.catch_up.items():
        c = fs.catch_up_corr[(task, metric)]
        med = float(t["closed"].median())
        named = ", ".join(f"{lang} {100 * v:.0f}%" for lang, v in t.set_index("lang")["closed"].items()
                          if lang in ("sw", "ur"))
        rho = (_ci(c["spearman_rho"], c["spearman_rho_lo"], c["spearman_rho_hi"])
               if pd.notna(c.get("spearman_rho_lo")) else f"{c['spearman_rho']:+.2f} (too few languages for an interval)")
        cu.append(f"{task.upper()} ({metric}) median {100 * med:.0f}% over {len(t)} languages"
                  + (f" ({named})" if named else "") + f", Spearman ρ with pre-training share {rho}")
    if cu:
        small, large = next(iter(fs.catch_up.values()))[["small", "large"]].iloc[0]
        out.append(f"- **Catch-up with size** (share of each language's own gap to English closed from `{small}` to "
                   f"`{large}`): " + "; ".join(cu) + ".")
    tt = []
    for (task, metric), t in fs.tt_closure.items():
        tt.append(f"{task.upper()} ({metric}) " + ", ".join(f"{100 * v:.0f}%" for v in t["closed"])
                  + f" (`{t['model'].iloc[0]}` → `{t['model'].iloc[-1]}`)")
    if tt:
        out.append("- **Translate-train** (mT5 with machine-translated training data, a reference line) closes "
                   "this share of each size's zero-shot gap: " + "; ".join(tt) + ".")
    g = fs.xstilts_gains
    xs = []
    for task, metric in (("xnli", "accuracy"), ("mlqa", "f1")):
        t = g[(g["target"] == task) & (g["metric"] == metric) & (g["mlm"] == "no")].sort_values("gain", ascending=False)
        if t.empty:
            continue
        xs.append(f"{task.upper()} ({metric}) " + " > ".join(f"{r.intermediate} {r.gain:+.1f}" for r in t.itertuples()))
    if xs:
        bad = fs.xstilts_avg[~fs.xstilts_avg["consistent"]]
        note = "".join(f" Table 2's average for \"{r.intermediate}, {'with' if r.mlm == 'yes' else 'without'} MLM\" "
                       f"is printed {r.printed:.1f} while its cells give {r.recomputed:.1f}."
                       for r in bad.itertuples())
        out.append("- **X-STILTs at full scale** (XLM-R Large, Phang et al. 2020 Table 2, dev means, gain over the "
                   "authors' baseline, no MLM co-training; one run each, no interval): " + "; ".join(xs) + "." + note)
    if reference is not None and not reference.empty:
        comp = compare_with_reference(fs.xstilts_gains, reference, primary_only=True)
        if comp.empty:
            out.append("- **Full scale vs the reference study:** the reference results share no intermediate task "
                       "with X-STILTs (SQuAD, HellaSwag, CommonsenseQA, ...), so there is nothing to compare.")
        else:
            agree = reference_agreement(comp)
            n_sig = int(agree["n_reference_significant"].sum())
            ranked = agree.dropna(subset=["spearman"])
            rank_txt = ("; rank: " + ", ".join(f"`{r.model}` on {r.target.upper()} ρ = {r.spearman:+.2f} over "
                                                f"{r.n_tasks} tasks" for r in ranked.itertuples())
                        if not ranked.empty else "; no model has three shared tasks, so no rank comparison")
            out.append(f"- **Full scale vs the reference study** on the tasks both ran "
                       f"({', '.join(sorted(comp['task'].unique()))}): the gain has the same sign in "
                       f"{int(comp['same_sign'].sum())} of {len(comp)} model × target × task cells "
                       f"({n_sig} of these reference gains {'has' if n_sig == 1 else 'have'} an interval "
                       f"excluding 0){rank_txt}. With at most {int(agree['n_tasks'].max())} shared tasks per model, "
                       "this is a check of direction, not evidence of agreement.")
    return out


# ------------------------------------------------------------------ the conclusion's "reference study in detail"
# Its groups after the best tasks, in reading order: (bold heading, statements, left out when it has no line).
# A new statistic's statements reach the book as one more row here; the page only displays the lines.
DETAIL_GROUPS: tuple[tuple[str, Callable[[Analysis], list[str]], bool], ...] = (
    ("**Gain vs intermediate-task difficulty** (1 − chance-normalised English dev score; Spearman ρ over tasks, "
     "95% bootstrap CI)", difficulty_statements, False),
    ("**Gain vs V-usable information** (Ethayarajh et al. 2022; bits, higher = easier, so a *negative* ρ means "
     "harder tasks help more; Spearman ρ over tasks, 95% bootstrap CI)", v_information_statements, False),
    ("**How the dependence on difficulty changes with size** (slope of gain on difficulty, larger minus smaller "
     "model of a family; t interval from the two fits' scatter over tasks)", slope_change_statements, False),
    ("**Runs that learned nothing** (baseline English score near chance)", near_chance_statements, True),
    ("**Model size** (each step up in size within a family, then smallest → largest; change with its calibrated "
     "95% interval, ± half-width and MDE at 80% power)", size_statements, False),
    ("**Model family** (encoder vs encoder-decoder of the same depth, warm-started from the same checkpoint; "
     "difference with its calibrated 95% interval, ± half-width and MDE)", family_statements, False),
    ("**How decisive the study is** (median half-width of the gains' intervals against the target of a decisive "
     "study, the evaluation size or seeds that would reach it, and whether a model's runs vary alike over "
     "seeds)", decisiveness_statements, False),
)


def detail_statements(a: Analysis) -> list[str]:
    """The best tasks, then every :data:`DETAIL_GROUPS` group under its heading: the conclusion's detail section."""
    lines = best_task_statements(a)
    for heading, statements, optional in DETAIL_GROUPS:
        body = statements(a)
        if body or not optional:
            lines += [f"\n{heading}\n", *body]
    return lines
