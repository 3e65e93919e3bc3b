"""The benchmark suite of issues 6 and 15 (``xlt bench``): is the CPU pipeline as fast as claimed?

Eight measurements, each a ratio taken side by side in one process (or one run) on
the same machine, because this 2-core machine is shared and absolute numbers move
with the load average; ratios measured back to back move much less:

1. **training throughput**: the project's trainer (:func:`xlt_helpers.train.train_phase`:
   dynamic padding, length grouping, trimmed vocabulary, frozen word embeddings) against
   the plain recipe of transformers' ``run_xnli.py`` (pad to ``max_length``, full
   vocabulary, random batches, every weight trainable, ``AutoModelForSequenceClassification``
   from the same checkpoint), same model, same examples, same steps;
2. **hardware efficiency**: model FLOP/s achieved by (1) over the fp32 matmul FLOP/s that
   torch reaches in the same process, with a ``torch.profiler`` breakdown of where the
   rest of the time goes;
3. **evaluation throughput**: :func:`xlt_helpers.evaluate.predict_encoder` with
   length-sorted batches against the same call in file order;
4. **orchestration overhead**: one phase-2 node through papermill against the same
   function called directly, each in a fresh process;
5. **scaling**: wall time and peak RSS (``VmHWM``) of one phase-2 node, one fresh process
   per point, as the training set and the model depth grow, with a linear fit.
6. **bf16 training**, 7. **evaluation precision**, 8. **cost of full evaluation sets**
   (issue 15): in :mod:`xlt_helpers.bench_speed`; ``--only bf16 / evalprec / evalcost``.

The suite lives in four modules, named for what they hold:

- this one: what each measurement runs (:class:`BenchConfig`, ``FULL``/``FAST``), what it must
  reach (the targets), the pure arithmetic (FLOP counts, fits, verdicts), the pure assembly of
  sections 1-5 and of the page (:func:`render_results`), and :func:`run_bench`, a short driver
  that runs one builder per selected section. It imports no torch, so all of it is tested
  without timing anything;
- :mod:`xlt_helpers.bench_measure`: the measurements of sections 1-5 and their builders;
- :mod:`xlt_helpers.bench_speed`: the measurements and builders of sections 2b and 6-8;
- :mod:`xlt_helpers.bench_workers`: what runs in (or starts) a fresh process: one node, one
  forked node, an import, a kernel. ``python -m xlt_helpers.bench node ...`` is their entry.

``run_bench(fast=True)`` runs the same code with the tiny random model and a few steps
(seconds; tests/test_bench.py); the full suite is run by hand and its ``bench/`` committed.
"""
from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from .paths import cache_dir, repo_root
from .robustness import ols

TARGET = "xnli"                       # every throughput measurement uses XNLI English pairs (the study's main target)
BENCH_DIR = "bench"
SCALING_CSV = "scaling.csv"
RESULTS_MD = "results.md"
#: the sections ``xlt bench --only`` selects (issue 15 added bf16, evalprec, evalcost)
SECTIONS = ("train", "eval", "levers", "bf16", "evalprec", "evalcost", "orchestration", "scaling")
#: the order they run in: eval measures the model train trained, orchestration uses scaling's slope
RUN_ORDER = ("train", "eval", "levers", "bf16", "evalprec", "evalcost", "scaling", "orchestration")


# ------------------------------------------------------------------ configuration
@dataclass(frozen=True)
class BenchConfig:
    """What each measurement runs. ``FULL`` is the committed run; ``FAST`` keeps CI in seconds."""

    name: str
    model: str                                    # items 1-3
    steps: int                                    # optimizer steps per side (item 1); train_n = steps * batch_size
    batch_size: int = 16                          # the cpu profile's XNLI batch size
    max_length: int = 128                         # the cpu profile's XNLI max_length = run_xnli's padding length
    profile_steps: int = 6                        # steps run under torch.profiler (item 2)
    matmul_n: int = 2048                          # side of the square fp32 matmul (item 2)
    eval_langs: tuple[str, ...] = ("en", "de", "ar", "zh")
    eval_n: int = 256                             # per language (item 3)
    eval_batch_size: int = 64                     # TrainConfig's default
    node_model: str = "tiny-xlmr"                 # item 4: orchestration cost does not depend on the model
    node_train_n: int = 64
    node_reps: int = 2
    scaling_model: str = "e5-L3"                  # item 5, training-set sweep
    scaling_sizes: tuple[int, ...] = (1000, 2000, 4000, 8000)
    depth_models: tuple[str, ...] = ("e5-L3", "e5-L6", "e5-L12")
    depth_n: int = 1000
    scaling_eval_n: int = 50                      # evaluation is a constant part of every scaling point
    scaling_eval_langs: tuple[str, ...] = ("en",)
    scaling_epochs: float = 0.25                  # a quarter epoch per point: steps ∝ n, 8k examples fit the time box
    # issue 15: training levers (fp32): a bigger batch over the same examples, foreach vs fused AdamW,
    # torch.compile (one run: its first steps include compiling; minutes on 2 cores)
    lever_batch_size: int = 80                   # 160 examples: 2 steps of 80 against 10 of 16
    lever_compile: bool = True
    # issue 15: the fixed node of the precision sections (bf16 training, evaluation precisions)
    fixed_model: str = "e5-L3"
    fixed_train_n: int = 1000                     # XNLI-en pairs, 1 epoch, batch 16
    fixed_epochs: float = 1.0
    fixed_eval_n: int = 200                       # per language (the cpu profile's XNLI eval_n)
    qa_train_n: int = 500                         # MLQA-side training questions (1 epoch)
    qa_eval_n: int = 100                          # per language (the cpu profile's MLQA eval_n)
    speed_qa_n: int = 32                          # MLQA questions per language for the model-time speed-up
    # issue 15: cost of full evaluation sets, measured on cost_n examples per language in cost_langs
    cost_models: tuple[str, ...] = ("e5-L3", "e5-L6", "e5-L12", "e5ed-L3", "e5ed-L6")
    cost_targets: tuple[str, ...] = ("xnli", "mlqa")
    cost_skip_mlqa: tuple[str, ...] = ()
    cost_langs: tuple[str, ...] = ("en", "de", "zh")
    cost_n: int = 48
    extra: dict[str, Any] = field(default_factory=dict)


FULL = BenchConfig(name="full", model="e5-L12", steps=10, eval_langs=("en", "de", "zh"))
FAST = BenchConfig(name="fast", model="tiny-xlmr", steps=3, batch_size=8, profile_steps=2, matmul_n=256,
                   eval_langs=("en", "de"), eval_n=24, eval_batch_size=8, node_train_n=16, node_reps=1,
                   scaling_model="tiny-xlmr", scaling_sizes=(16, 48), depth_models=(),
                   depth_n=16, scaling_eval_n=8, fixed_model="tiny-xlmr", fixed_train_n=24, fixed_eval_n=12,
                   qa_train_n=8, qa_eval_n=6, speed_qa_n=4, cost_models=("tiny-xlmr", "tiny-mt5"), cost_langs=("en",), cost_n=6,
                   cost_skip_mlqa=("tiny-mt5",), lever_batch_size=24, lever_compile=False)

# targets of issue 6
TRAIN_SPEEDUP_TARGET = 4.0
HW_EFFICIENCY_TARGET = 0.6
EVAL_SPEEDUP_TARGET = 1.5
NODE_OVERHEAD_S_TARGET = 3.0
NODE_OVERHEAD_SHARE_TARGET = 0.02
SCALING_R2_TARGET = 0.95
# targets of issue 15
XNLI_AGREEMENT_TARGET = 0.99       # share of XNLI predictions equal to fp32's
MLQA_F1_DELTA_TARGET = 0.5         # |F1 - F1_fp32| per language, points
EVAL_PRECISION_SPEEDUP_TARGET = 2.0
BF16_TRAIN_SPEEDUP_TARGET = 3.0


# ------------------------------------------------------------------ pure functions
def training_flops(lengths: Any, non_embedding_params: int, n_layers: int, hidden: int) -> float:
    """Model FLOPs of one training pass over sequences of ``lengths`` (non-padding tokens).

    ``6 N`` per token for the weight matmuls (forward 2N, backward 4N; Kaplan et al. 2020),
    plus bidirectional attention: per layer the scores ``Q K^T`` and the weighted sum ``A V``
    each cost ``2 L^2 d`` forward for a sequence of length ``L``, times 3 for training, so
    ``12 d L^2`` per layer. Padding is not counted: it is work the model does not need.
    """
    lens = np.asarray(lengths, dtype=np.float64)
    if lens.size == 0 or (lens < 0).any():
        raise ValueError(f"lengths must be a non-empty list of non-negative token counts, got {lengths!r}")
    return float(6.0 * non_embedding_params * lens.sum() + 12.0 * n_layers * hidden * (lens ** 2).sum())


def padded_tokens(lengths: Any, batch_size: int, *, sort: bool) -> int:
    """Tokens a dynamically padded pass computes: each batch costs its size × its longest sequence.

    The ratio unsorted / sorted bounds what length-sorting can gain when cost ∝ padded tokens.
    """
    ls = sorted(lengths) if sort else list(lengths)
    return int(sum(len(ls[i:i + batch_size]) * max(ls[i:i + batch_size]) for i in range(0, len(ls), batch_size)))


def linear_fit(x: Any, y: Any) -> dict[str, float]:
    """The least-squares line ``y = intercept + slope * x`` (:func:`robustness.ols`) and its R²
    (1 = perfectly linear): the scaling section's test of linearity."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.size < 2 or x.size != y.size:
        return {"slope": float("nan"), "intercept": float("nan"), "r2": float("nan"), "n": int(x.size)}
    line = ols(x, y)
    resid = y - (line["intercept"] + line["slope"] * x)
    ss_tot = float(((y - y.mean()) ** 2).sum())
    r2 = 1.0 - float((resid ** 2).sum()) / ss_tot if ss_tot > 0 else float("nan")
    return {"slope": line["slope"], "intercept": line["intercept"], "r2": r2, "n": int(x.size)}


def verdict(value: float, target: float, *, at_most: bool = False) -> str:
    """'met' / 'not met' / 'n/a' (value missing) against a target (``>= target`` unless ``at_most``)."""
    if value is None or not np.isfinite(value):
        return "n/a"
    ok = value <= target if at_most else value >= target
    return "met" if ok else "not met"


def planned_examples(nodes: list) -> float:
    """Training examples × epochs summed over a grid's nodes (the work the profile plans)."""
    total = 0.0
    for n in nodes:
        p = n.params
        if p.get("max_steps"):
            total += float(p["max_steps"]) * float(p["batch_size"])
        else:
            total += float(p["train_n"]) * float(p.get("epochs", 1.0))
    return total


def pooled(runs: list[dict]) -> dict[str, float]:
    """Tokens/s over several runs of one side: total tokens / total wall (per-run values in training.csv)."""
    wall = sum(r["train_wall_s"] for r in runs)
    tokens = sum(r["train_tokens"] for r in runs)
    return {"train_wall_s": wall, "train_tokens": tokens, "tokens_per_s": tokens / wall}


def smallest_slope(df: pd.DataFrame | None, cfg: BenchConfig) -> float:
    """Training seconds per example-epoch of the training-set sweep (NaN without item 5)."""
    if df is None:
        return float("nan")
    sub = df[df["sweep"] == "train_n"]
    return linear_fit(sub["train_n"], sub["train_wall_s"])["slope"] / cfg.scaling_epochs


def _fmt(x: float, unit: str = "", digits: int = 3) -> str:
    return "n/a" if x is None or not np.isfinite(x) else f"{x:.{digits}g}{unit}"


# ------------------------------------------------------------------ the page
@dataclass
class Section:
    """One measurement of results.md: what ran, what came out, what it had to reach."""

    title: str
    command: str
    rows: list[tuple[str, str]]
    target: str
    status: str
    notes: str = ""
    table: pd.DataFrame | None = None
    table_title: str = ""


def render_results(sections: list[Section], machine_start: dict[str, Any], machine_end: dict[str, Any],
                   cfg_name: str) -> str:
    """The markdown of ``bench/results.md``: machine description, then one block per measurement."""
    m = machine_start
    lines = ["# Benchmark results (`xlt bench`, issues 6 and 15)", "",
             f"Suite: **{cfg_name}**. Every ratio is taken side by side in one run on this machine; the "
             "machine is shared, so the load average is recorded at start and end (absolute numbers move "
             "with it, ratios much less).", "",
             "## Machine", "",
             "| field | value |", "|---|---|",
             f"| CPU | {m['cpu_model']} |", f"| cores (os.cpu_count) | {m['cores']} |",
             f"| torch | {m['torch']} |", f"| transformers | {m['transformers']} |",
             f"| torch threads | {m['threads']} |", f"| python | {m['python']} |",
             f"| load average at start (1/5/15 min) | {m['loadavg']} |",
             f"| load average at end (1/5/15 min) | {machine_end['loadavg']} |",
             f"| started / finished | {m['time']} / {machine_end['time']} |", ""]
    lines += ["## Summary", "", "| measurement | target | status |", "|---|---|---|"]
    lines += [f"| {s.title} | {s.target} | {s.status} |" for s in sections]
    lines.append("")
    for s in sections:
        lines += [f"## {s.title}", "", "```bash", s.command, "```", "",
                  "| quantity | value |", "|---|---|", *[f"| {k} | {v} |" for k, v in s.rows], "",
                  f"**Target:** {s.target}. **Status: {s.status}.**", ""]
        if s.notes:
            lines += [s.notes, ""]
        if s.table is not None and not s.table.empty:
            if s.table_title:
                lines += [s.table_title, ""]
            lines += [s.table.to_markdown(index=False, floatfmt=".3g"), ""]
    return "\n".join(lines)


# ------------------------------------------------------------------ sections 1-5, from their measurements
def training_section(cfg: BenchConfig, cmd: str, ours: dict[str, Any], ref: dict[str, Any],
                     loads: tuple[str, str], table: pd.DataFrame) -> Section:
    """Section 1 from the pooled sides (``ours``/``ref``: the last run's stats with :func:`pooled` over)."""
    speed = ours["tokens_per_s"] / ref["tokens_per_s"]
    return Section(
        f"1. Training throughput ({cfg.model}, XNLI-en, 2 runs × {cfg.steps} steps × {cfg.batch_size} per side)", cmd,
        [("ours: non-padding tokens/s", _fmt(ours["tokens_per_s"])),
         ("run_xnli recipe: non-padding tokens/s", _fmt(ref["tokens_per_s"])),
         ("speed-up (ours / recipe)", _fmt(speed, "×")),
         ("non-padding tokens per side (must match)", f"{ours['train_tokens']} / {ref['train_tokens']}"),
         ("recipe's padded tokens per run (pad to max_length)", str(ref["padded_tokens"])),
         ("ours: vocabulary / trained params", f"{ours['vocab_size']} / {ours['params_trained']:,}"),
         ("recipe: vocabulary / trained params", f"{ref['vocab_size']} / {ref['params_trained']:,}"),
         ("load average before / after the pair", f"{loads[0]} → {loads[1]}")],
        f"≥ {TRAIN_SPEEDUP_TARGET:g}×", verdict(speed, TRAIN_SPEEDUP_TARGET),
        "Order ours, recipe, recipe, ours (A B B A, against load drift); tokens/s per side = all its "
        "tokens / all its wall time. Both sides: same starting weights, same examples (one epoch of "
        f"{cfg.steps * cfg.batch_size} XNLI-en pairs), same optimizer steps, same process, timed around "
        "`trainer.train()` only. Ours: dynamic padding, length-grouped batches, vocabulary trimmed to the "
        "node's text, frozen word embeddings, mean-pooled head. Recipe: `padding=\"max_length\"`, "
        "full 250k vocabulary, random batches, every weight trainable, "
        "`AutoModelForSequenceClassification` ([CLS] pooler head).", table, "Per side:")


def efficiency_section(cfg: BenchConfig, cmd: str, *, flops: float, train_wall_s: float,
                       peaks: tuple[float, float], lengths: list[int], non_embedding_params: int,
                       prof_df: pd.DataFrame, prof_info: dict[str, Any]) -> Section:
    """Section 2: ``flops`` of the timed runs over their ``train_wall_s``, against the best of the
    matmul ``peaks`` (before, after); ``prof_df``/``prof_info`` from the profiled run."""
    achieved = flops / train_wall_s
    peak = max(peaks)
    eff = achieved / peak
    mm_share = float(prof_df.loc[prof_df["where"].str.startswith("matmul"), "share_of_wall"].sum())
    return Section(
        f"2. Hardware efficiency ({cfg.model} training)", cmd,
        [("model FLOPs of the timed run (6·N_non-emb·tokens + attention)", _fmt(flops / 1e12, " TFLOP")),
         ("achieved model FLOP/s", _fmt(achieved / 1e9, " GFLOP/s")),
         (f"fp32 {cfg.matmul_n}² matmul FLOP/s before / after training", f"{peaks[0] / 1e9:.1f} / "
          f"{peaks[1] / 1e9:.1f} GFLOP/s"),
         ("efficiency (achieved / best matmul)", _fmt(eff)),
         ("mean non-padding length (tokens)", _fmt(float(np.mean(lengths)))),
         ("non-embedding params N", f"{non_embedding_params:,}"),
         ("profiled run: steps / wall", f"{prof_info['profiled_steps']} / {prof_info['profiled_wall_s']:.1f} s"),
         ("profiled matmul ops: FLOP/s while running", _fmt(prof_info["matmul_flops_per_s"] / 1e9, " GFLOP/s")),
         ("profiled matmul ops: share of wall", _fmt(mm_share))],
        f"≥ {HW_EFFICIENCY_TARGET:g}", verdict(eff, HW_EFFICIENCY_TARGET),
        _efficiency_note(eff, mm_share, prof_info, peak), prof_df,
        f"Where the profiled training time goes (torch.profiler, self time per category, "
        f"{prof_info['profiled_steps']} steps; the profiler itself adds overhead):")


def _efficiency_note(eff: float, mm_share: float, info: dict, peak: float) -> str:
    mm = info["matmul_flops_per_s"]
    return (f"The matmuls of training run at {_fmt(mm / 1e9)} GFLOP/s while they run "
            f"({_fmt(mm / peak)} of the big-matmul rate: a {info['hidden']}-wide model on short sequences "
            f"makes small, thin matrices), and they fill {_fmt(mm_share)} of the wall time; the table below "
            f"shows where the rest goes (top 'other' ops: {info['top_other'] or 'none'}; per-op table in "
            "profile_ops.csv). Efficiency = achieved model FLOP/s over the best fp32 matmul rate "
            "measured in this process just before and after training (contention lowers both).")


def eval_section(cfg: BenchConfig, cmd: str, ev: dict[str, Any]) -> Section:
    """Section 3 from :func:`bench_measure.eval_throughput`'s numbers."""
    return Section(
        f"3. Evaluation throughput ({cfg.model}, XNLI dev {', '.join(cfg.eval_langs)}, {cfg.eval_n} each)", cmd,
        [("length-sorted batches: tokens/s", _fmt(ev["sorted_tokens_per_s"])),
         ("file-order batches: tokens/s", _fmt(ev["unsorted_tokens_per_s"])),
         ("speed-up", _fmt(ev["speedup"], "×")),
         ("examples / non-padding tokens", f"{ev['examples']} / {ev['tokens']}"),
         ("padded tokens computed: file order / sorted", f"{ev['padded_unsorted']} / {ev['padded_sorted']}"),
         ("padding bound on the speed-up (file-order / sorted padded tokens)", _fmt(ev["padding_bound"], "×")),
         ("batch size", str(cfg.eval_batch_size))],
        f"≥ {EVAL_SPEEDUP_TARGET:g}×", verdict(ev["speedup"], EVAL_SPEEDUP_TARGET),
        "Both under `torch.inference_mode` with dynamic padding, per language as the pipeline calls "
        "`predict_encoder`; only the batch order differs (`sort_by_length`). Best of 2 interleaved runs. "
        "The padding bound is what sorting could gain if cost were proportional to padded tokens: "
        "it is set by the data (XNLI pairs vary little in length), not by the code; per-batch "
        "fixed costs and attention's length² term move the measured ratio around it.")


def orchestration_section(cfg: BenchConfig, cmd: str, orc: dict[str, Any], n_nodes: int, total: float,
                          kind: str) -> Section:
    """Section 4: the per-node overhead ``orc`` (:func:`bench_measure.orchestration`) against the
    targets, per node and as a share of the cpu profile's ``total`` seconds over ``n_nodes``."""
    share = orc["overhead_s"] * n_nodes / total if total > 0 else float("nan")
    ok_s = verdict(orc["overhead_s"], NODE_OVERHEAD_S_TARGET, at_most=True)
    ok_share = verdict(share, NODE_OVERHEAD_SHARE_TARGET, at_most=True)
    status = "met" if ok_s == ok_share == "met" else ("n/a" if "n/a" in (ok_s, ok_share) else "not met")
    return Section(
        "4. Orchestration overhead (papermill vs direct call)", cmd,
        [("direct call, fresh process (best)", _fmt(orc["direct_s"], " s")),
         ("`xlt run` local executor: forked child of a papermill-loaded parent (best)", _fmt(orc["forked_s"], " s")),
         ("overhead per node, local executor", _fmt(orc["overhead_s"], " s")),
         ("fresh runner process, `python -m xlt_helpers.runs` (the Ray route; best)", _fmt(orc["fresh_s"], " s")),
         ("overhead per node, fresh runner", _fmt(orc["overhead_fresh_s"], " s")),
         ("of which: importing papermill in a fresh interpreter", _fmt(orc["import_papermill_s"], " s")),
         ("… of that: rfc3987_syntax (jsonschema's IRI checker, via nbformat)", _fmt(orc["import_rfc3987_syntax_s"], " s")),
         ("of which: starting and stopping a Jupyter kernel", _fmt(orc["kernel_s"], " s")),
         ("nodes in configs/cpu.yml", str(n_nodes)),
         (f"cpu profile total ({kind})", _fmt(total / 3600, " h")),
         ("local-executor overhead × nodes / total", _fmt(share))],
        f"≤ {NODE_OVERHEAD_S_TARGET:g} s per node and ≤ {NODE_OVERHEAD_SHARE_TARGET:.0%} of the cpu profile",
        status,
        f"Node: {cfg.node_model} on XNLI ({cfg.node_train_n} examples, 2 steps, 8 eval examples × 2 languages), "
        "so the difference is the fixed cost of the route, not training. The direct call starts a fresh "
        "interpreter and calls `run_target` (imports included). `xlt run` (local executor) imports papermill "
        "once in its parent and forks one child per node: its overhead is the kernel's start and stop, the "
        "notebook's figure cells and writing the executed notebook — this is the route the target is judged "
        "on. A fresh runner process (Ray tasks, `spawn_node`) pays papermill's import on top, most of it "
        "in `rfc3987_syntax`, which jsonschema imports eagerly and which builds its Lark grammars at import "
        "time (python-jsonschema/jsonschema#1428); that cost is not ours to remove without patching a "
        "dependency. "
        + ("The total is the sum of the DONE.json wall times of every cpu-profile node."
           if kind == "measured" else
           "The total is not yet measured: see its label; the share is therefore an upper bound."),
        orc["table"])


def scaling_section(cfg: BenchConfig, df: pd.DataFrame, cmd: str) -> Section:
    """Section 5 from the points of :func:`bench_measure.scaling` (``bench/scaling.csv``)."""
    size = df[df["sweep"] == "train_n"]
    depth = df[df["sweep"] == "layers"]
    fs, fd = linear_fit(size["train_n"], size["node_wall_s"]), linear_fit(depth["layers"], depth["node_wall_s"])
    ft = linear_fit(size["train_n"], size["train_wall_s"])
    rs, rd = linear_fit(size["train_n"], size["peak_rss_mb"]), linear_fit(depth["layers"], depth["peak_rss_mb"])
    r2s = [r for r in (fs["r2"], fd["r2"]) if np.isfinite(r)]
    status = verdict(min(r2s), SCALING_R2_TARGET) if r2s else "n/a"
    rows = [(f"node wall vs training examples ({cfg.scaling_model})",
             f"slope {_fmt(fs['slope'] * 1000)} s per 1k examples, intercept {_fmt(fs['intercept'])} s, R² {_fmt(fs['r2'], '', 4)}"),
            ("of which training wall vs examples", f"slope {_fmt(ft['slope'] * 1000)} s per 1k, R² {_fmt(ft['r2'], '', 4)}"),
            (f"node wall vs layers (n={cfg.depth_n})",
             f"slope {_fmt(fd['slope'])} s per layer, intercept {_fmt(fd['intercept'])} s, R² {_fmt(fd['r2'], '', 4)}"),
            ("peak RSS vs training examples", f"slope {_fmt(rs['slope'] * 1000)} MB per 1k, R² {_fmt(rs['r2'], '', 3)}"),
            ("peak RSS vs layers", f"slope {_fmt(rd['slope'])} MB per layer, R² {_fmt(rd['r2'], '', 3)}")]
    cols = ["sweep", "model", "train_n", "layers", "node_wall_s", "train_wall_s", "eval_wall_s", "tokens_per_s",
            "vocab_size", "peak_rss_mb", "process_wall_s"]
    return Section("5. Scaling of one phase-2 node", cmd, rows,
                   f"wall time linear in training examples and in depth (R² ≥ {SCALING_R2_TARGET:g})", status,
                   "One fresh process per point (`python -m xlt_helpers.bench node ...`), peak RSS = VmHWM "
                   f"of that process. Node = run_target on XNLI-en, {cfg.scaling_epochs:g} epoch (so optimizer "
                   "steps grow with n: the whole node, data preparation included, must stay linear), batch 16, "
                   "max length 128, "
                   f"{cfg.scaling_eval_n} eval examples ({', '.join(cfg.scaling_eval_langs)}). XNLI-en has 5010 "
                   "training pairs: the 8k point repeats them (cost per example is what is measured). "
                   "The curve is drawn in the book's reproducibility appendix from bench/scaling.csv.",
                   df[cols], "Points:")


# ------------------------------------------------------------------ the suite
@dataclass
class BenchRun:
    """One ``xlt bench`` run as its section builders see it: what runs (``cfg``), where the CSVs go
    (``out``), scratch space (``work``), the command the page shows, and what one section hands on."""

    cfg: BenchConfig
    out: Path
    work: Path
    cmd: str
    trained: Any = None                       # section 1's (PhaseResult, {lang: dev set}): section 3 evaluates it
    scaling: pd.DataFrame | None = None       # section 5's points: section 4's planned total uses their slope


Builder = Callable[[BenchRun], list[Section]]


def builders() -> dict[str, Builder]:
    """Section name -> its builder (measure, write its CSVs, return its sections), in :data:`RUN_ORDER`."""
    from . import bench_measure as bm, bench_speed as bs
    table = {"train": bm.build_train, "eval": bm.build_eval, "levers": bs.build_levers, "bf16": bs.build_bf16,
             "evalprec": bs.build_evalprec, "evalcost": bs.build_evalcost, "scaling": bm.build_scaling,
             "orchestration": bm.build_orchestration}
    return {name: table[name] for name in RUN_ORDER}


def selected(sections: tuple[str, ...] | None) -> set[str]:
    """The sections ``--only`` selects (all when none), plus train when eval is selected."""
    wanted = set(sections or SECTIONS)
    bad = wanted - set(SECTIONS)
    if bad:
        raise ValueError(f"unknown bench section(s) {sorted(bad)}; choose from {', '.join(SECTIONS)}")
    if "eval" in wanted:
        wanted.add("train")                       # evaluation measures the model item 1 trained
    return wanted


def run_bench(fast: bool = False, out_dir: str | Path | None = None, sections: tuple[str, ...] | None = None) -> Path:
    """Run the suite, write ``results.md`` and the CSVs into ``out_dir``; return the results.md path.

    Default ``out_dir``: ``<repo>/bench`` (full) or ``<cache>/bench-fast`` (fast: never over the
    committed numbers). ``sections``: a subset of :data:`SECTIONS`."""
    cfg = FAST if fast else FULL
    out = Path(out_dir) if out_dir else (cache_dir() / "bench-fast" if fast else repo_root() / BENCH_DIR)
    out.mkdir(parents=True, exist_ok=True)
    wanted = selected(sections)
    import torch  # noqa: F401  (loaded before the first timing)
    from .bench_measure import machine_description
    cmd = "xlt bench" + (" --fast" if fast else "") + (f" --only {' --only '.join(sorted(wanted))}" if sections else "")
    start = machine_description()
    run = BenchRun(cfg, out, Path(tempfile.mkdtemp(prefix="xlt-bench-")), cmd)
    print(f"xlt bench ({cfg.name}): load average {start['loadavg']}, work dir {run.work}", flush=True)
    done: list[Section] = []
    for name, build in builders().items():
        if name in wanted:
            done += build(run)
            write_page(out, done, start, cfg)
    path = write_page(out, done, start, cfg)
    print(f"xlt bench: wrote {path}", flush=True)
    return path


def write_page(out: Path, results: list[Section], start: dict[str, Any], cfg: BenchConfig) -> Path:
    """(Re)write results.md and machine.json with the sections done so far: an interrupted run
    keeps what it measured (the page says which sections it holds)."""
    from .bench_measure import machine_description
    end = machine_description()
    done = sorted(results, key=lambda s: s.title)
    path = out / RESULTS_MD
    path.write_text(render_results(done, start, end, cfg.name) + "\n", encoding="utf-8")
    (out / "machine.json").write_text(json.dumps({"start": start, "end": end, "config": asdict(cfg)}, indent=2))
    return path


if __name__ == "__main__":            # ``python -m xlt_helpers.bench node|fork ...``: the fresh-process workers
    from xlt_helpers.bench_workers import main
    sys.exit(main())
