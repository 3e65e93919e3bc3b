"""The page of ``xlt bench`` (``bench/results.md``), pure: every section's rows, target, status and
notes from its measured numbers, and the page around them.

The builders (:mod:`xlt_helpers.bench_measure`, :mod:`xlt_helpers.bench_speed`) measure and hand
their numbers here, so everything the page says, and every met / not met, is tested with
hand-worked numbers without timing anything (tests/test_bench.py). Imports no torch.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .bench import (BF16_TRAIN_SPEEDUP_TARGET, EVAL_PRECISION_SPEEDUP_TARGET, EVAL_SPEEDUP_TARGET,
                    HW_EFFICIENCY_TARGET, MLQA_F1_DELTA_TARGET, MLQA_FULL_DEV, NODE_OVERHEAD_S_TARGET,
                    NODE_OVERHEAD_SHARE_TARGET, SCALING_R2_TARGET, TARGET, TRAIN_SPEEDUP_TARGET,
                    XNLI_AGREEMENT_TARGET, XNLI_FULL_DEV, BenchConfig, Gemm, abba, allowed_other_share, compile_cost,
                    combined_ceiling, gemm_ceiling, linear_fit, matmul_share, pooled, sequences_per_batch,
                    shape_label, verdict)


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


#: the quantities the "Across machines" table sets side by side: (row label, section number, a piece of the
#: quantity's label in that section; the first row holding it counts, so older pages with other rows match too)
ACROSS_MACHINES: tuple[tuple[str, str, str], ...] = (
    ("1. speed-up over the run_xnli recipe (target ≥ 4×)", "1.", "speed-up (ours / recipe)"),
    ("2. efficiency: model FLOP/s / fp32 matmul peak (target ≥ 0.6)", "2.", "efficiency (achieved / best matmul)"),
    ("2. fp32 2048² matmul before / after training", "2.", "fp32 2048² matmul FLOP/s before / after training"),
    ("2. GEMM share of training wall time", "2.", "profiled matmul ops: share of wall"),
    ("2b. torch.compile, warm cache: later steps, compiled / uncompiled, same batches", "2b.",
     "warm cache: later steps, compiled / uncompiled, same batches"),
    ("2b. torch.compile, cold cache: compiling", "2b.", "torch.compile, cold cache: compiling"),
    ("2b. torch.compile, warm cache: compiling", "2b.", "torch.compile, warm cache: compiling"),
    ("2b. torch.compile, warm cache: steps until it pays", "2b.", "torch.compile, warm cache: steps until"),
    ("3. sorted evaluation speed-up (target ≥ 1.5×)", "3.", "speed-up"),
    ("4. orchestration overhead per node (target ≤ 3 s)", "4.", "overhead per node, local executor"),
    ("6. 2048² matmul fp32 / bf16", "6.", "2048² matmul: fp32 / bf16"),
    ("6. bf16 training speed-up (target ≥ 3×)", "6.", "speed-up bf16 / fp32"),
    ("6. fixed node: bf16 within seed noise", "6.", "bf16 difference within seed noise"),
    ("7. bf16 evaluation speed-up, XNLI / MLQA (target ≥ 2×)", "7.", "bf16: speed-up over fp32"),
    ("7. bf16: XNLI prediction agreement (target ≥ 0.99)", "7.", "bf16: XNLI prediction agreement"),
    ("7. bf16: MLQA max |ΔF1| per language (target ≤ 0.5)", "7.", "bf16: MLQA max"),
    ("7. bf16 evaluation meets all three", "7.", "bf16: meets all three"),
    ("7. bf16-fp32head evaluation speed-up, XNLI / MLQA", "7.", "bf16-fp32head: speed-up over fp32"),
    ("7. bf16-fp32head: XNLI prediction agreement", "7.", "bf16-fp32head: XNLI prediction agreement"),
    ("7. bf16-fp32head: MLQA max |ΔF1| per language", "7.", "bf16-fp32head: MLQA max"),
    ("7. bf16-fp32head evaluation meets all three", "7.", "bf16-fp32head: meets all three"),
    ("7. int8 evaluation speed-up, XNLI / MLQA", "7.", "int8: speed-up over fp32"),
    ("7. int8: XNLI prediction agreement", "7.", "int8: XNLI prediction agreement"),
    ("7. int8: MLQA max |ΔF1| per language", "7.", "int8: MLQA max"),
    ("7. int8 evaluation meets all three", "7.", "int8: meets all three"),
)


def machine_kind(cpu_model: str) -> str:
    """A file name for the kind of machine a page was measured on, from ``machine_description``'s CPU line:
    vendor and the widest matrix instructions it has (the project's machines differ in exactly these)."""
    low = cpu_model.lower()
    vendor = "intel" if "intel" in low else "amd" if "amd" in low else "cpu"
    flags = {f.strip(" )") for f in low[low.rfind("(") + 1:].split(",")} if "(" in low else set()
    isa = ("amx" if "amx_bf16" in flags else "avx512-bf16" if "avx512_bf16" in flags else
           "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other")
    return f"{vendor}-{isa}"


def page_rows(md: str) -> dict[tuple[str, str], str]:
    """((section heading, quantity), value) of every two-column "| quantity | value |" row of a results page,
    Machine's fields included. The value is the last cell, so a quantity may hold '|' (``|ΔF1|``)."""
    out: dict[tuple[str, str], str] = {}
    heading = ""
    for line in md.splitlines():
        if line.startswith("## "):
            heading = line[3:].strip()
        elif line.startswith("| ") and line.endswith(" |") and " | " in line[2:-2]:
            key, value = line[2:-2].rsplit(" | ", 1)
            out.setdefault((heading, key.strip()), value.strip())
    return out


def across_machines(pages: dict[str, dict[tuple[str, str], str]]) -> pd.DataFrame:
    """The :data:`ACROSS_MACHINES` quantities of each page (column name -> its :func:`page_rows`), side by side,
    with each page's CPU and start time first; '—' where a page does not hold a quantity (an older suite)."""
    cols: dict[str, list[str]] = {}
    for name, rows in pages.items():
        col = [rows.get(("Machine", "CPU"), "—"), rows.get(("Machine", "started / finished"), "—").split(" / ")[0]]
        for _, sec, piece in ACROSS_MACHINES:
            col.append(next((v for (h, k), v in rows.items() if h.startswith(sec + " ") and piece in k), "—"))
        cols[name] = col
    index = ["CPU", "started"] + [label for label, _, _ in ACROSS_MACHINES]
    return pd.DataFrame(cols, index=pd.Index(index, name="quantity")).reset_index()


def render_results(sections: list[Section], machine_start: dict[str, Any], machine_end: dict[str, Any],
                   cfg_name: str, others: dict[str, str] | None = None) -> str:
    """The markdown of ``bench/results.md``: machine description, the summary, then, when ``others`` holds pages
    of other kinds of machine (file name -> markdown, ``bench/machines/``), the key quantities across machines,
    then one block per measurement."""
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
    if others:
        # this run's rows as page_rows would read them back from this page
        here = {("Machine", "CPU"): m["cpu_model"], ("Machine", "started / finished"): f"{m['time']} / {machine_end['time']}"}
        for s in sections:
            for k, v in s.rows:
                here.setdefault((s.title, k), v)
        table = across_machines({f"this run ({machine_kind(m['cpu_model'])})": here,
                                 **{name: page_rows(md) for name, md in others.items()}})
        lines += ["## Across machines", "",
                  "The key quantities of this page beside the latest full page of each other kind of machine this "
                  "project has run on (`bench/machines/<kind>.md`, written by the full suite; a kind is the vendor and "
                  "the widest matrix instructions). Each page's ratios were taken side by side within its own run; "
                  "across pages only ratios compare, not absolute rates. '—': that page's suite did not measure it "
                  "(an older version of the suite).", "",
                  table.to_markdown(index=False), ""]
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
                     loads: tuple[str, str], table: pd.DataFrame, batches: dict[str, Any] | None = None) -> Section:
    """Section 1 from the pooled sides (``ours``/``ref``: the last run's stats with :func:`pooled` over);
    ``batches``: where the trained batches come from (``bench_measure.node_batches``' info)."""
    speed = ours["tokens_per_s"] / ref["tokens_per_s"]
    rows = [("ours: non-padding tokens/s", _fmt(ours["tokens_per_s"])),
            ("run_xnli recipe: non-padding tokens/s", _fmt(ref["tokens_per_s"])),
            ("speed-up (ours / recipe)", _fmt(speed, "×")),
            ("non-padding tokens per side (must match)", f"{ours['train_tokens']} / {ref['train_tokens']}"),
            ("recipe's padded tokens per run (pad to max_length)", str(ref["padded_tokens"]))]
    if batches:
        rows += [("mean non-padding length of the trained pairs (of the node's pairs)",
                  f"{_fmt(batches['chosen_mean_len'])} ({_fmt(batches['node_mean_len'])})"),
                 ("ours: padding share of the trained batches (of the node's whole epoch)",
                  f"{_fmt(batches['chosen_padding'])} ({_fmt(batches['node_padding'])})"),
                 ("padding share had the 160 pairs been length-grouped alone (the bench before commit ac7def1)",
                  _fmt(batches["self_grouped_padding"]))]
    rows += [("ours: vocabulary / trained params", f"{ours['vocab_size']} / {ours['params_trained']:,}"),
             ("recipe: vocabulary / trained params", f"{ref['vocab_size']} / {ref['params_trained']:,}"),
             ("load average before / after the pair", f"{loads[0]} → {loads[1]}")]
    where = (f"{cfg.steps} whole batches of {cfg.batch_size} as a cpu-profile XNLI node forms them (transformers' "
             f"length-grouped sampler over the node's {batches['node_pairs']} training pairs, seed 0; the batches at the "
             f"midpoints of {cfg.steps} equal slices of the node's batches ranked by padded length, so long and short "
             "steps are mixed as in the node, in shuffled order), which ours trains in that order (a sequential "
             "sampler) and the recipe in random batches" if batches else f"one epoch of {cfg.steps * cfg.batch_size} XNLI-en pairs")
    return Section(
        f"1. Training throughput ({cfg.model}, XNLI-en, 2 runs × {cfg.steps} steps × {cfg.batch_size} per side)", cmd,
        rows, f"≥ {TRAIN_SPEEDUP_TARGET:g}×", verdict(speed, TRAIN_SPEEDUP_TARGET),
        "Order ours, recipe, recipe, ours (A B B A, against load drift); tokens/s per side = all its "
        "tokens / all its wall time. Both sides: same starting weights, same examples "
        f"({where}), same optimizer steps, same process, timed around "
        "`trainer.train()` only. Ours: dynamic padding, length-grouped batches, vocabulary trimmed to the "
        f"node's text, frozen word embeddings, mean-pooled head, dropout masks from `dropout_rng: {cfg.dropout_rng}` "
        "(section 2b), objects alive before `train()` frozen out of the garbage collector's reach (`train.frozen_gc`: "
        "accelerate's full `gc.collect()` as `train()` starts walks every object of the process, 0.24 s in this "
        "process on 2026-12-01; the recipe pays it). Recipe: `padding=\"max_length\"`, "
        "full 250k vocabulary, random batches, every weight trainable, "
        "`AutoModelForSequenceClassification` ([CLS] pooler head). Why the node's batches: the sampler groups "
        "lengths within megabatches of up to 50 batches, but of only 2 when it groups 160 pairs alone, so "
        "those batches carry several times the padding a node's do, and padding is work the efficiency of "
        "section 2 does not count.", table, "Per side:")


def efficiency_section(cfg: BenchConfig, cmd: str, *, flops: float, train_wall_s: float,
                       peaks: tuple[float, float], lengths: list[int], non_embedding_params: int,
                       prof_df: pd.DataFrame, prof_info: dict[str, Any]) -> Section:
    """Section 2: ``flops`` of the timed runs over their ``train_wall_s``, against the best of the
    matmul ``peaks`` (before, after); ``prof_df``/``prof_info`` from the profiled run."""
    achieved = flops / train_wall_s
    peak = max(peaks)
    eff = achieved / peak
    mm_share = matmul_share(prof_df)
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


# ------------------------------------------------------------------ sections 2b and 6-8, from their measurements
#: section 2b's side that draws dropout masks with torch's kernel while ours uses another source
TORCH_MASKS = "torch's dropout masks (the committed cpu study's)"


def masks_verdict(node: pd.DataFrame, langs: list[str], rng: str) -> dict[str, Any]:
    """Whether ``rng``'s dropout masks move the fixed node's accuracies (``node``: one row per dropout_rng and seed)
    more than a change of seed does: ``d_rng``, the mean over ``langs`` of |side mean with ``rng`` - side mean with
    torch's masks|, against ``d_seed``, the mean |difference| between two seeds of one side (every pair of seeds
    within each side, every language); within = ``d_rng <= d_seed``. Each side needs two seeds or more: with one,
    the change is set against one draw of the seed noise."""
    sides = {r: node[node["dropout_rng"] == r] for r in (rng, "torch")}
    few = {r: len(d) for r, d in sides.items() if len(d) < 2}
    if few:
        raise ValueError(f"masks_verdict needs two seeds or more per side; got {few} (BenchConfig.lever_seeds)")
    d_rng = float((sides[rng][langs].mean() - sides["torch"][langs].mean()).abs().mean())
    pairs = [abs(a - b) for d in sides.values() for col in langs for a, b in itertools.combinations(d[col], 2)]
    d_seed = float(np.mean(pairs))
    return {"d_rng": d_rng, "d_seed": d_seed, "within": d_rng <= d_seed}


def levers_section(cfg: BenchConfig, cmd: str, runs: dict[str, list[dict]], loads: tuple[str, str],
                   compiled: dict[str, dict[str, Any]] | None = None, node_steps: int | None = None,
                   masks_node: pd.DataFrame | None = None) -> Section:
    """Section 2b from each lever side's runs (the first side is the baseline) and, when the suite
    compiles, the compiled runs by cache state (``{"cold cache": {"stats": its stats, "step_ends": seconds
    from its start to each step's end}, "warm cache": ...}``). ``node_steps``: the optimizer steps of a
    cpu-profile XNLI node, against which compiling's break-even is read. ``masks_node``: the fixed node's
    accuracies by dropout mask source and seed (:func:`bench_speed.lever_fixed_node`)."""
    names = list(runs)
    rate = {n: pooled(rs)["tokens_per_s"] for n, rs in runs.items()}
    base = rate[names[0]]
    table = pd.DataFrame([{"lever": n, "run": i, "steps": r["steps"], "train_wall_s": r["train_wall_s"],
                           "train_tokens": r["train_tokens"], "tokens_per_s": r["tokens_per_s"]}
                          for n in names for i, r in enumerate(runs[n])])
    rows = [(f"{n}: tokens/s (× baseline)", f"{_fmt(rate[n])} ({_fmt(rate[n] / base, '×')})") for n in names]
    base_ends = np.mean([x["step_ends"] for x in runs[names[0]]], axis=0)   # same batches in every run
    for state, c in (compiled or {}).items():
        r, ends = c["stats"], c["step_ends"]
        cost = compile_cost(ends, base_ends)
        even = cost["break_even_steps"]
        rows += [(f"torch.compile, {state}: wall of the run, compile included", _fmt(r["train_wall_s"], " s")),
                 (f"torch.compile, {state}: compiling (first two steps, compiled less uncompiled)",
                  _fmt(cost["compile_s"], " s")),
                 (f"torch.compile, {state}: later steps, compiled / uncompiled, same batches (× faster)",
                  f"{_fmt(cost['steady_s'], ' s')} / {_fmt(cost['base_s'], ' s')} ({_fmt(cost['gain'], '×')})"),
                 (f"torch.compile, {state}: steps until compiling pays" +
                  (f" (a cpu-profile XNLI node runs {node_steps})" if node_steps else ""),
                  "never (no faster)" if even == float("inf") else _fmt(even, " steps"))]
        table = pd.concat([table, pd.DataFrame([{"lever": f"torch.compile ({state})", "run": 0, "steps": r["steps"],
                                                 "train_wall_s": r["train_wall_s"], "train_tokens": r["train_tokens"],
                                                 "tokens_per_s": r["tokens_per_s"]}])], ignore_index=True)
    masks_note = ""
    if masks_node is not None:
        langs = list(cfg.eval_langs)
        v = masks_verdict(masks_node, langs, cfg.dropout_rng)
        seeds = masks_node.groupby("dropout_rng")["seed"].nunique().min()
        rows.append((f"fixed node ({cfg.fixed_model}, XNLI, {cfg.fixed_train_n} pairs × {cfg.fixed_epochs:g} epochs, "
                     f"{seeds} seeds per side): mean |Δ accuracy| over {', '.join(langs)} between the side means, "
                     f"{cfg.dropout_rng} masks vs torch's / between two seeds of one side (seed noise)",
                     f"{v['d_rng']:.2f} / {v['d_seed']:.2f} points: {'within' if v['within'] else 'NOT within'} seed noise"))
        masks_note = (f" The fixed node (a cpu-profile XNLI baseline node of {cfg.fixed_model}, as section 6 trains it) "
                      f"is trained with {cfg.dropout_rng} masks and with torch's at seeds 0 to {seeds - 1} each "
                      "(levers_fixed_node.csv): the masks are other random draws, so its scores may move, and the "
                      "side means must differ by no more than two seeds of one side do (`bench_report.masks_verdict`). "
                      "Other masks are in effect another random stream: with one seed a side (an earlier version of "
                      "this section) the change was set against a single draw of the seed noise.")
    rows.append(("load average before / after", f"{loads[0]} → {loads[1]}"))
    letters = [chr(ord("A") + i) for i in range(len(names))]
    notes = (f"Each side trains {cfg.model} on the same {cfg.steps * cfg.batch_size} XNLI-en pairs (section 1's batches), fp32, "
             f"order {' '.join(abba(letters))} over the {len(names)} sides; tokens/s = all tokens / all wall. "
             f"Ours draws dropout masks with `dropout_rng: {cfg.dropout_rng}` (hparams.TrainConfig; sections 1, 2 and 6 "
             "too); the side with torch's masks is the trainer as the committed cpu study ran it." + masks_note + " A bigger "
             "batch is a different optimisation (fewer steps), so it is a profile's `batch_size` choice, hashed "
             "into run ids, not a free speed-up. `torch.compile` recompiles once the sequence length changes "
             "(dynamic shapes), so a node pays two compilations. It runs after the other sides, twice: with a cold "
             "cache (a new, empty `TORCHINDUCTOR_CACHE_DIR`: a node on a fresh machine) and then with a warm one "
             "(`torch._dynamo.reset()`, same cache directory: the on-disk inductor and AOT caches the cold run filled, "
             "as a later node on the same machine finds them; in one process, so in-memory loads may make it a little "
             "faster than a new node process would be). Every run takes the same batches in the same order (the node's, "
             "section 1), so a compiled step is set against the uncompiled step over the same batch: the later half of "
             f"the {cfg.steps} steps, compiled, over the same steps of the baseline's runs (their mean). Batches differ "
             "several-fold in length, so a compiled median step against the uncompiled mean step (this page before commit "
             "ac7def1) measured the batches: it reported 1.49× where batch for batch the gain was about 1.0×.")
    return Section("2b. Training levers (fp32)", cmd, rows, "measured (which levers pay)", "measured", notes, table,
                   "Per run:")


def under_floor(target: str, en_score: float, floors: dict[str, float]) -> str:
    """'' when a fixed node's fp32 English score clears its target's floor (or no floor is set), else the
    reason its precision comparison is not judged: a node that learned nothing agrees with any copy of itself."""
    floor = floors.get(target)
    if floor is None or en_score >= floor:
        return ""
    return f"{target.upper()} en {en_score:.1f} < floor {floor:g}"


def bf16_section(cfg: BenchConfig, cmd: str, why: str, measured: dict[str, Any] | None,
                 floors: dict[str, float] | None = None) -> Section:
    """Section 6 from :func:`bench_speed.bf16_training`'s numbers; ``measured`` None: skipped, saying ``why``.
    ``floors`` (target -> English score, the cpu profile's ``study.floors``): under its floor the fixed node's
    score comparison is "not judged"."""
    title = f"6. bf16 training ({cfg.model}, XNLI-en; fixed node {cfg.fixed_model})"
    target = f"≥ {BF16_TRAIN_SPEEDUP_TARGET:g}× fp32 tokens/s; fixed node within seed noise"
    if measured is None:
        return Section(title, cmd, [("native bf16", "no")], target, "skipped", f"Skipped: {why}.")
    r, node = measured, measured["node"]
    langs = list(cfg.eval_langs)
    acc = node.set_index(["precision", "seed"])[langs]
    d_bf16 = (acc.loc[("bf16", 0)] - acc.loc[("fp32", 0)]).abs()
    d_seed = (acc.loc[("fp32", 1)] - acc.loc[("fp32", 0)]).abs()
    speed = r["pooled"]["bf16"] / r["pooled"]["fp32"]
    within = bool(d_bf16.mean() <= d_seed.mean())
    low = under_floor("xnli", float(acc.loc[("fp32", 0)]["en"]), floors or {}) if "en" in langs else ""
    status = verdict(speed, BF16_TRAIN_SPEEDUP_TARGET)
    rows = [("native bf16", why),
            (f"{cfg.matmul_n}² matmul: fp32 / bf16", f"{r['peaks']['fp32'] / 1e9:.0f} / {r['peaks']['bf16'] / 1e9:.0f} GFLOP/s "
             f"({_fmt(r['peaks']['bf16'] / r['peaks']['fp32'], '×')})"),
            ("training fp32: non-padding tokens/s", _fmt(r["pooled"]["fp32"])),
            ("training bf16: non-padding tokens/s", _fmt(r["pooled"]["bf16"])),
            ("speed-up bf16 / fp32 (end to end, `trainer.train()`)", _fmt(speed, "×")),
            (f"fixed node: |accuracy bf16 − fp32| per language, seed 0 ({', '.join(langs)})",
             ", ".join(f"{x:.1f}" for x in d_bf16) + f" (mean {d_bf16.mean():.2f})"),
            ("seed noise: |accuracy seed 1 − seed 0| at fp32", ", ".join(f"{x:.1f}" for x in d_seed) + f" (mean {d_seed.mean():.2f})"),
            ("bf16 difference within seed noise (mean over languages)",
             f"not judged: the fp32 node did not learn ({low})" if low else "yes" if within else "no"),
            ("load average before / after the timed pair", f"{r['load'][0]} → {r['load'][1]}")]
    notes = (f"Order fp32, bf16, bf16, fp32 (A B B A), each `train_phase` on the same {cfg.steps * cfg.batch_size} "
             f"{TARGET}-en pairs, {cfg.steps} steps of {cfg.batch_size}; bf16 = `TrainingArguments(bf16=True)`: "
             "torch autocast, matmuls in bf16, weights, optimizer state and reductions in fp32. Fixed node: "
             f"{cfg.fixed_model} XNLI baseline, {cfg.fixed_train_n} training pairs × {cfg.fixed_epochs:g} epoch(s), "
             f"batch 16, lr from models.py, {cfg.fixed_eval_n} dev pairs per language, trained at fp32 (seeds 0, 1) "
             f"and bf16 (seed 0), evaluated at fp32; accuracy in points. "
             + (f"The fixed node stayed under the floor ({low}), so its scores cannot show a precision effect. "
                if low else "" if within else "The bf16 difference is larger than this one seed-to-seed difference. "))
    if low:
        status = "met (speed); scores: not judged" if status == "met" else status
    elif not within and status == "met":
        status = "met (speed); scores: see note"
    return Section(title, cmd, rows, target, status, notes, node, "Fixed node, accuracy per language:")


def evalprec_section(cfg: BenchConfig, cmd: str, precisions: tuple[str, ...], agreement: pd.DataFrame,
                     speed: pd.DataFrame, floors: dict[str, float] | None = None) -> Section:
    """Section 7 from :func:`bench_speed.eval_precisions`' tables; ``precisions[0]`` is fp32, the reference.
    A fixed node under its ``floors`` (the cpu profile's) makes the agreement criteria "not judged"."""
    ag, sp = agreement, speed
    rows, ok = [], []
    ref = ag[(ag["precision"] == precisions[0]) & (ag["lang"] == "en")] if "score" in ag.columns else ag.iloc[:0]
    low = "; ".join(r for r in (under_floor(t, float(g["score"].iloc[0]), floors or {})
                                for t, g in ref.groupby("target", sort=False)) if r)
    if "threads" not in sp.columns:                    # a table from before the thread counts were measured
        sp = sp.assign(threads=0)
    thread_counts = sorted(sp["threads"].unique(), reverse=True)
    chosen = []
    for p in precisions[1:]:
        x = ag[(ag["precision"] == p) & (ag["target"] == "xnli")]
        q = ag[(ag["precision"] == p) & (ag["target"] == "mlqa")]
        agree = float((x["agreement"] * x["n"]).sum() / x["n"].sum())
        dmax = float(q["delta_vs_fp32"].abs().max())
        rows += [(f"{p}: XNLI prediction agreement with fp32", _fmt(agree, "", 4)),
                 (f"{p}: MLQA max |ΔF1| per language", _fmt(dmax, " points"))]
        fast_at = []
        for k in thread_counts:
            at = sp[(sp["precision"] == p) & (sp["threads"] == k)]
            sx = float(at[at["target"] == "xnli"]["speedup_vs_fp32"].iloc[0])
            sq = float(at[at["target"] == "mlqa"]["speedup_vs_fp32"].iloc[0])
            label = f"{k} thread{'s' if k != 1 else ''}" if k else ""     # 0: a table without thread counts
            where = f" at {label} per node" if label else ""
            rows.append((f"{p}: speed-up over fp32 (sorted, {cfg.model} model time{where}), XNLI / MLQA",
                         f"{_fmt(sx, '×')} / {_fmt(sq, '×')}"))
            if min(sx, sq) >= EVAL_PRECISION_SPEEDUP_TARGET:
                fast_at.append(label)
        good = agree >= XNLI_AGREEMENT_TARGET and dmax <= MLQA_F1_DELTA_TARGET and bool(fast_at) and not low
        ok.append(good)
        rows.append((f"{p}: meets all three", ("yes" + (f" (speed at {', '.join(f for f in fast_at if f)})"
                                                        if any(fast_at) else "")) if good else
                     f"not judged: fixed node under the floor ({low})" if low else "no"))
        if good:
            chosen.append(p)
    status = "met" if any(ok) else f"not judged (fixed node under the floor: {low})" if low else "not met"
    target = (f"≥ {EVAL_PRECISION_SPEEDUP_TARGET:g}× over fp32, XNLI agreement ≥ {XNLI_AGREEMENT_TARGET:.0%}, "
              f"MLQA |ΔF1| ≤ {MLQA_F1_DELTA_TARGET:g} per language")
    notes = (f"Agreement: baselines trained at fp32 in this run (XNLI: {cfg.fixed_model}, {cfg.fixed_train_n} pairs × "
             f"{cfg.fixed_epochs:g} epochs, section 6's seed-0 node when it ran; MLQA: {cfg.qa_fixed_model}, "
             f"{cfg.qa_train_n} questions, 1 epoch), evaluated by the pipeline's `evaluate` on "
             f"{cfg.fixed_eval_n} XNLI pairs / {cfg.qa_eval_n or 'all same-language'} MLQA questions per language ({', '.join(cfg.eval_langs)}) "
             f"at each `eval_precision`. Speed: `predict_encoder` as in section 3 (today's sorted fp32 evaluation), "
             f"{cfg.model} with a fresh head on {cfg.eval_n} XNLI pairs and the windows of {cfg.speed_qa_n} MLQA "
             f"questions per language, order {' '.join(abba(list(precisions)))}, each side the mean of its two runs "
             "(eval_precision_speed.csv), at each thread count per node (all cores: one node on the machine, as "
             "`make study` runs; 1 thread: one of two nodes at once, `xlt run --workers 2`). bf16 = linear layers cast to bf16 once, run under autocast "
             "(softmax/LayerNorm fp32); bf16-fp32head = the same with the output layer (task head or vocabulary projection) in fp32 "
             "outside autocast; int8 = `torch.ao.quantization.quantize_dynamic` of every `nn.Linear`. "
             + (f"Passing precision(s): {', '.join(chosen)}; fp32 stays the default, a profile opts in with "
                "`eval_precision`." if chosen else
                f"Not judged: the fixed node stayed under the floor ({low}); a node that learned little agrees with "
                "any copy of itself, so its agreement says nothing about the precision." if low else
                "No precision passes all three here."))
    table = ag.assign(delta_vs_fp32=ag["delta_vs_fp32"].round(2), agreement=ag["agreement"].round(4))
    return Section("7. Evaluation precision (agreement and speed against fp32)", cmd, rows, target, status, notes,
                   table, "Per language (score on 0..100; agreement = share of predictions equal to fp32's):")


def evalcost_section(cfg: BenchConfig, cmd: str, precisions: tuple[str, ...], df: pd.DataFrame,
                     sizes: dict[str, int]) -> Section:
    """Section 8 from :func:`bench_speed.full_eval_cost`'s table and the full sets' ``sizes`` counted from the data."""
    rows = [("full XNLI dev (all languages), counted from the data", f"{sizes['xnli']:,} pairs (expected {XNLI_FULL_DEV:,})"),
            ("full MLQA same-language dev, counted from the data", f"{sizes['mlqa']:,} questions (expected {MLQA_FULL_DEV:,})"),
            ("measured per model, target and precision", f"{cfg.cost_n} seeded examples × {len(cfg.cost_langs)} languages "
             f"({', '.join(cfg.cost_langs)})")]
    for r in df[df["precision"] == "fp32"].itertuples():
        rows.append((f"{r.model} {r.target}: full set at fp32 (extrapolated)", _fmt(r.full_set_s_extrapolated / 60, " min")))
    notes = ("**Extrapolated, not measured on the full sets:** each full-set time is the measured seconds per example "
             "on the subsample × the full set's size, plus the one-time cost of making the bf16/int8 copy (copy_s) (a full measurement of five models at every precision would "
             "take hours on this shared machine). Evaluation as the pipeline runs it (`evaluate`, featurizing "
             "included), vocabulary trimmed to the full dev sets' text, fresh heads (cost does not depend on "
             "trained weights, with one exception: an encoder-decoder generates MLQA answers, and an untrained "
             "model's answer length is not a trained one's; at most 32 new tokens). One untimed warm-up per "
             "precision (kernel set-up), then the precisions in the order "
             f"{' '.join(abba(list(precisions)))}, each side the mean of its two runs.")
    return Section("8. Cost of full evaluation sets (seconds per node)", cmd, rows, "measured (no target)", "measured",
                   notes, df, "Per model, target and precision (full_set_s_extrapolated = copy_s + s_per_example × full_examples):")


# ------------------------------------------------------------------ section 2c, from its measurements
def ceiling_section(cfg: BenchConfig, cmd: str, gemms: list[Gemm], timings: pd.DataFrame,
                    inputs: dict[str, Any]) -> Section:
    """Section 2c from :func:`bench_speed.gemm_timings`' table (one row per timing; ``is_peak`` marks the
    ``matmul_n``² peak; every side's best timing counts, as section 2 takes the better of its two peaks)
    and ``inputs``: ``dims`` (hidden, intermediate, heads, layers), ``tokens`` and ``seq_len`` (M and L),
    ``source`` (of M and L), ``gemm_share`` (None: no profile) and ``share_source``, ``loads`` (before, after)."""
    d, layers, target = inputs["dims"], inputs["dims"]["layers"], HW_EFFICIENCY_TARGET
    per_side = timings.groupby("shape")["gflop_per_s"]
    best, spread = per_side.max() * 1e9, per_side.max() / per_side.min()
    peaks = timings[timings["is_peak"]].sort_values("pass")["gflop_per_s"].tolist()
    peak = max(peaks) * 1e9
    rates = {g.shape: float(best[shape_label(g.shape)]) for g in gemms}
    c = gemm_ceiling(gemms, rates, peak)
    share = inputs["gemm_share"]
    combined = combined_ceiling(c["ceiling"], share) if share is not None else None
    allowed = allowed_other_share(c["ceiling"], target)
    if c["ceiling"] < target:
        status = f"not reachable: these GEMM shapes alone cap it at {_fmt(c['ceiling'], '', 2)}"
    elif combined is not None and combined < target:
        status = (f"reachable only if non-GEMM ops fall to ≤ {allowed:.0%} of wall time "
                  f"(profile: {1 - share:.0%})")
    else:
        status = "reachable" + ("" if combined is not None else f" if non-GEMM ops take ≤ {allowed:.0%} of wall time")
    table = pd.DataFrame([{"op": g.op, "kind": g.kind, "operands (ᵀ: transposed view)": shape_label(g.shape),
                           "per layer": g.count, "GFLOP per step": g.flops * layers / 1e9, "FLOP share": g.flops / c["flops"],
                           "GEMM time share": g.flops / rates[g.shape] / c["seconds"],
                           "GFLOP/s": rates[g.shape] / 1e9, "share of peak": rates[g.shape] / peak} for g in gemms])
    rows = [("model: hidden / FFN / heads / layers", f"{d['hidden']} / {d['intermediate']} / {d['heads']} / {layers}"),
            ("non-padding tokens per batch M (the linear layers' rows)", f"{_fmt(inputs['tokens'], '', 4)} "
             f"({inputs['source']})"),
            ("mean sequence length L / sequences per batch (attention bmm)",
             f"{_fmt(inputs['seq_len'], '', 3)} / {sequences_per_batch(round(inputs['tokens']), round(inputs['seq_len']))}"),
            (f"fp32 {cfg.matmul_n}² matmul (the peak of section 2), pass 1 / pass 2",
             " / ".join(f"{p:.1f}" for p in peaks) + " GFLOP/s"),
            ("GEMM FLOPs of one training step, all layers", _fmt(c["flops"] * layers / 1e9, " GFLOP")),
            ("achievable GEMM rate (Σ FLOPs / Σ FLOPs ÷ rate)", _fmt(c["achievable"] / 1e9, " GFLOP/s")),
            ("**ceiling**: achievable / peak (every non-GEMM op free)", _fmt(c["ceiling"])),
            ("GEMM share of wall time (profile)", f"{_fmt(share)} ({inputs['share_source']})" if share is not None
             else inputs["share_source"]),
            ("bound with the profile's non-GEMM share (share × ceiling)", _fmt(combined) if combined is not None
             else "n/a"),
            (f"largest non-GEMM share of wall time that allows {target:g}",
             f"{allowed:.0%}" if allowed >= 0 else f"none (the GEMMs alone stay below {target:g})"),
            ("largest pass-to-pass spread of one side (its best / its worst pass)",
             f"{_fmt(float(spread.max()), '×')} ({spread.idxmax()})"),
            ("torch threads", str(int(timings["threads"].iloc[0]))),
            ("load average before / after the timings", f"{inputs['loads'][0]} → {inputs['loads'][1]}")]
    sides = timings["shape"].nunique()
    notes = (f"Why: section 2's efficiency divides model FLOPs (these products) by wall time and by the "
             f"{cfg.matmul_n}² matmul rate; a {d['hidden']}-wide layer on a batch of ~{round(inputs['tokens'])} "
             "tokens multiplies smaller, thinner matrices, which run below that rate whatever the rest of the "
             "step costs. Each row is one product of one layer's training step: linear layers forward "
             "(x Wᵀ), input-grad (dy W) and weight-grad (dyᵀ x), with the transposed views autograd passes "
             "(ᵀ); attention's scores and context per sequence and head, as batched products. "
             f"Each of the {sides} distinct shapes is timed with `torch.mm`/`torch.bmm` at fp32 next to the "
             f"peak, in the order A B … B A (two passes, ceiling_timings.csv), each timing the best of "
             f"{cfg.gemm_repeats} runs of back-to-back products lasting ≥ {cfg.gemm_min_s * 1000:g} ms; each side's "
             "best timing counts. A side's spread between its passes shows the load: when other processes "
             "hold the cores, multi-threaded small products wait on each other and a side that catches an idle "
             "moment runs several times faster than one that does not; a spread well above the peak's means the "
             "ratios are the load's more than the shapes', and the section wants a quieter machine. "
             "What the bound leaves out, each making it optimistic: dynamic padding (the "
             "kernels multiply each batch's padded rows; the metric counts non-padding FLOPs), the varying "
             "batch size and lengths around the mean, and the data's cold caches in a real step. The model "
             "may run attention through `scaled_dot_product_attention`'s fused kernel rather than bmm: those "
             "rows price attention's FLOPs (see their FLOP share) at bmm rates. The combined bound assumes "
             "the non-GEMM ops keep the share of wall time the profile measured (`bench.combined_ceiling`). "
             "Other shapes (a fused Q, K, V product, bigger batches) have other ceilings; this one is for the "
             f"shapes the trainer runs today. **Summary: the target {target:g} is {status}.**")
    return Section(f"2c. Ceiling of fp32 training efficiency ({cfg.model} GEMM shapes)", cmd, rows,
                   f"efficiency ≥ {target:g} (section 2) reachable with these GEMM shapes on this machine", status,
                   notes, table, "Per GEMM of one layer's training step (GFLOP per step: all layers; "
                   "share of peak: the GEMM's rate over the better peak):")
