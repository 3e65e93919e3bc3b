"""The measurements of ``xlt bench`` sections 1-5 (issue 6) and their builders.

Each ``build_*`` takes the :class:`~xlt_helpers.bench.BenchRun`, measures, writes its CSVs and
returns its sections, assembled by the pure functions of :mod:`xlt_helpers.bench_report`:

- :func:`build_train`: sections 1 (our trainer against transformers' ``run_xnli.py`` recipe,
  A B B A) and 2 (model FLOP/s over the matmul peak, with a ``torch.profiler`` breakdown);
- :func:`build_eval`: section 3 (length-sorted against file-order evaluation batches);
- :func:`build_scaling`, :func:`build_orchestration`: sections 5 and 4, one fresh process per
  node (:mod:`xlt_helpers.bench_workers`).

Nothing here imports torch at module level; nothing is patched: the profiled Trainer is handed
to :func:`~xlt_helpers.train.train_phase` as ``trainer_cls``.
"""
from __future__ import annotations

import functools
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .bench import (PROFILE_CSV, SCALING_CSV, TARGET, BenchConfig, BenchRun, padded_tokens, padding_share, pick_batches,
                    planned_examples, pooled, smallest_slope, training_flops)
from .bench_report import (Section, efficiency_section, eval_section, orchestration_section, scaling_section,
                           training_section)
from .machine import cpu_flags, cpu_model_name, matmul_flops


# ------------------------------------------------------------------ machine
def load_average() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def machine_description() -> dict[str, Any]:
    import torch
    import transformers
    have = cpu_flags()
    flags = ", ".join(f for f in ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "amx_bf16", "amx_int8")
                      if f in have)
    return {"cpu_model": f"{cpu_model_name()} ({flags or 'no AVX2/AVX-512 flags read'})", "cores": os.cpu_count(),
            "torch": torch.__version__, "transformers": transformers.__version__,
            "threads": torch.get_num_threads(), "python": platform.python_version(),
            "loadavg": load_average(), "time": time.strftime("%Y-%m-%d %H:%M:%S %Z")}


# ------------------------------------------------------------------ item 1: training throughput
def train_data(cfg: BenchConfig):
    """(training pairs, {lang: dev pairs}, every text of both): XNLI, seeded, as sections 1-3 use them.

    The training pairs are ``cfg.steps`` whole batches of ``cfg.batch_size`` as a cpu-profile XNLI node
    forms them (:func:`node_batches`), in batch order: the trainer is timed on the batches a node trains on."""
    from . import featurize
    from .data import load_task
    from .tasks import get_task
    train = node_batches(cfg)[0]
    evals = {lang: load_task(TARGET, "dev", lang, n=cfg.eval_n, seed=0) for lang in cfg.eval_langs}
    spec = get_task(TARGET)
    texts = featurize.texts_of(spec, train) + [t for d in evals.values() for t in featurize.texts_of(spec, d)]
    return train, evals, texts


def batches_from_n(cfg: BenchConfig) -> int:
    """Training pairs of the node whose batches the bench trains on: ``cfg.batches_from_n``, or the cpu
    profile's XNLI ``train_n``."""
    if cfg.batches_from_n is not None:
        return cfg.batches_from_n
    from .profiles import load_profile
    return int(load_profile("cpu").target[TARGET].train_n)


def node_batches(cfg: BenchConfig):
    """(the chosen pairs in batch order, {what the page reports}): the node's training pairs
    (:func:`batches_from_n`, seeded as the pipeline seeds them), ordered by transformers' length-grouped
    sampler as ``train_phase``'s ``group_by_length`` orders them (seed 0), and ``cfg.steps`` whole batches of
    that order at the quantiles of its batch lengths (:func:`~xlt_helpers.bench.pick_batches`). Ours trains them in this order
    (a sequential sampler: :func:`ours_train`), so each timed step is one batch as the node forms it.
    Cached per setting: several sections train the same batches, and tokenizing the node's pairs each time is waste."""
    return _node_batches(cfg.model, batches_from_n(cfg), cfg.batch_size, cfg.steps, cfg.max_length)


@functools.lru_cache(maxsize=4)
def _node_batches(model: str, n: int, batch_size: int, steps: int, max_length: int):
    from . import backbones
    from .data import load_task
    from .models import get_model
    from .pipeline import DATA_SEED
    node = load_task(TARGET, "train", "en", n=n, seed=DATA_SEED)
    lengths = train_lengths(backbones.load_tokenizer(get_model(model)), node, max_length)
    order = _grouped_order(lengths, batch_size)
    idx = pick_batches(order, lengths, batch_size, steps, seed=0)
    chosen = [lengths[i] for i in idx]
    info = {"node_pairs": len(node), "node_padding": padding_share([lengths[i] for i in order], batch_size),
            "node_mean_len": float(np.mean(lengths)), "chosen_mean_len": float(np.mean(chosen)),
            "chosen_padding": padding_share(chosen, batch_size),
            # what the bench did before commit ac7def1: the chosen pairs length-grouped on their own
            "self_grouped_padding": padding_share([chosen[i] for i in _grouped_order(chosen, batch_size)], batch_size)}
    return node.select(idx), info


def _grouped_order(lengths: list[int], batch_size: int) -> list[int]:
    """transformers' length-grouped order of ``lengths`` (the sampler of ``group_by_length``), seed 0."""
    import torch
    from transformers.trainer_pt_utils import get_length_grouped_indices
    return get_length_grouped_indices(lengths, batch_size, generator=torch.Generator().manual_seed(0))


def reference_model(model_name: str, num_labels: int):
    """``AutoModelForSequenceClassification`` from the same weights our trainer starts from.

    e5 models: the offline BERT checkpoint (``e5_checkpoint_dir()``) cut to the same depth;
    the tiny model: its random config (the fast suite only)."""
    from transformers import AutoModelForSequenceClassification
    from . import backbones
    from .models import get_model
    spec = get_model(model_name)
    if spec.source == "e5":
        kw = {} if spec.encoder_layers is None else {"num_hidden_layers": spec.encoder_layers}
        with backbones._quiet_loading():
            return AutoModelForSequenceClassification.from_pretrained(
                str(backbones.e5_checkpoint_dir()), num_labels=num_labels, **kw)
    if spec.source == "tiny" and spec.family == "encoder":
        cfg = backbones.tiny_xlmr_config()
        cfg.num_labels = num_labels
        return AutoModelForSequenceClassification.from_config(cfg)
    raise ValueError(f"bench: no run_xnli-style reference for model {model_name!r} (source {spec.source}, "
                     f"family {spec.family}); use an e5-L* model or tiny-xlmr")


class _CountingCollator:
    """transformers' ``default_data_collator`` (what run_xnli uses with padding to max_length),
    counting the non-padding tokens it passes on."""

    def __init__(self):
        from transformers import default_data_collator
        self.inner, self.tokens = default_data_collator, 0

    def __call__(self, feats):
        out = self.inner(feats)
        self.tokens += int(out["attention_mask"].sum())
        return out


def reference_train(cfg: BenchConfig, train, learning_rate: float, out_dir: Path) -> dict[str, float]:
    """The plain ``run_xnli.py`` recipe on ``train``: pad to max_length, full vocabulary,
    random batches, all weights trainable; ``cfg.steps`` optimizer steps, timed like ours."""
    from transformers import Trainer, TrainingArguments, set_seed
    from . import backbones
    from .models import get_model
    from .tasks import get_task
    spec, task = get_model(cfg.model), get_task(TARGET)
    set_seed(0)
    tok = backbones.load_tokenizer(spec)
    model = reference_model(cfg.model, len(task.labels))
    feats = train.map(lambda b: {**tok(b["text_a"], b["text_b"], padding="max_length", max_length=cfg.max_length,
                                       truncation=True), "label": b["label"]},
                      batched=True, remove_columns=train.column_names, desc="pad to max_length")
    collate = _CountingCollator()
    args = TrainingArguments(output_dir=str(out_dir / "reference"), per_device_train_batch_size=cfg.batch_size,
                             max_steps=cfg.steps, learning_rate=learning_rate, save_strategy="no", report_to=[],
                             seed=0, dataloader_num_workers=0, use_cpu=True, logging_steps=max(1, cfg.steps))
    trainer = Trainer(model=model, args=args, train_dataset=feats, data_collator=collate)
    t0 = time.perf_counter()
    trainer.train()
    wall = time.perf_counter() - t0
    return {"train_wall_s": wall, "train_tokens": collate.tokens, "tokens_per_s": collate.tokens / wall,
            "steps": trainer.state.global_step, "padded_tokens": cfg.steps * cfg.batch_size * cfg.max_length,
            "params_trained": sum(p.numel() for p in model.parameters() if p.requires_grad),
            "vocab_size": model.config.vocab_size}


def ours_train(cfg: BenchConfig, train, texts, out_dir: Path, precision: str = "fp32", *, batch_size: int | None = None,
               trainer_args: dict[str, Any] | None = None, callbacks: list | None = None, torch_compile: bool = False,
               dropout_rng: str | None = None):
    """The project's trainer on the same examples and steps (``PhaseResult``; stats hold tokens/s).
    ``batch_size`` other than the config's keeps the examples (one epoch of them), so fewer steps;
    ``torch_compile``, ``dropout_rng`` (default: ``cfg.dropout_rng``): the hyperparameters a profile sets
    (hparams.TrainConfig). The batches
    are ``train``'s, in order (a sequential sampler): :func:`train_data` made them as a node's sampler does."""
    from .train import TrainConfig, train_phase
    bs = batch_size or cfg.batch_size
    steps = cfg.steps * cfg.batch_size // bs
    tc = TrainConfig(max_steps=steps, batch_size=bs, max_length=cfg.max_length,
                     eval_batch_size=cfg.eval_batch_size, seed=0, precision=precision, torch_compile=torch_compile,
                     dropout_rng=dropout_rng or cfg.dropout_rng)
    # the pairs come in the node's batches (train_data): keep them, rather than regroup 160 pairs
    args = {"train_sampling_strategy": "sequential", **(trainer_args or {})}
    return train_phase(cfg.model, TARGET, train, tc, out_dir / "ours", vocab_texts=texts, trainer_args=args,
                       callbacks=callbacks)


# ------------------------------------------------------------------ item 2: profile
_CATEGORIES = (
    ("matmul (linear layers)", ("aten::mm", "aten::addmm", "aten::bmm", "aten::baddbmm")),
    ("attention kernel", ("scaled_dot_product", "flash_attention", "aten::_softmax", "softmax")),
    ("optimizer (AdamW)", ("_foreach", "Optimizer", "adam", "aten::lerp", "zero_grad")),
    ("GELU / LayerNorm / dropout", ("gelu", "layer_norm", "dropout", "native_dropout", "bernoulli")),
    ("embedding lookup and backward", ("embedding",)),
    ("elementwise (add, mul, copies, masks)", ("aten::add", "aten::mul", "aten::copy_", "aten::div", "aten::sub",
                                               "aten::fill_", "aten::where", "aten::masked", "aten::sum",
                                               "aten::clone", "aten::cat", "aten::to", "aten::_to_copy",
                                               "aten::zero_", "aten::threshold", "aten::mean")),
)


def _category(name: str) -> str:
    low = name.lower()
    for cat, keys in _CATEGORIES:
        if any(k.lower() in low for k in keys):
            return cat
    return "other torch ops"


def profile_training(cfg: BenchConfig, train, texts, out_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame, dict[str, float]]:
    """``train_phase`` for ``cfg.profile_steps`` steps under ``torch.profiler``: self time per category
    and matmul FLOPs. Time outside torch ops (Python, Trainer, data) is ``wall - sum(self times)``."""
    import torch
    from torch.profiler import ProfilerActivity, profile
    from transformers import Trainer
    from .train import TrainConfig, train_phase
    n = cfg.profile_steps * cfg.batch_size
    tc = TrainConfig(max_steps=cfg.profile_steps, batch_size=cfg.batch_size, max_length=cfg.max_length, seed=0,
                     dropout_rng=cfg.dropout_rng)                       # the trainer sections 1 and 2 time
    sub = train.select(range(min(n, len(train))))
    holder: dict[str, Any] = {}

    class ProfiledTrainer(Trainer):
        """The Trainer train_phase builds for an encoder, with the profiler around ``train()`` only
        (not model building)."""

        def train(self, *a, **k):
            with profile(activities=[ProfilerActivity.CPU], with_flops=True) as p:
                out = super().train(*a, **k)
            holder["prof"] = p
            return out

    res = train_phase(cfg.model, TARGET, sub, tc, out_dir / "profiled", vocab_texts=texts, trainer_cls=ProfiledTrainer,
                      trainer_args={"train_sampling_strategy": "sequential"})   # the node's batches, as ours_train
    prof = holder["prof"]
    wall_us = res.stats["train_wall_s"] * 1e6
    rows: dict[str, float] = {}
    mm_flops, mm_us = 0.0, 0.0
    for ev in prof.key_averages():
        if ev.key.startswith("ProfilerStep") or ev.key.startswith("## "):
            continue
        cat = _category(ev.key)
        rows[cat] = rows.get(cat, 0.0) + ev.self_cpu_time_total
        if cat.startswith("matmul"):
            mm_flops += float(ev.flops or 0)
            mm_us += ev.self_cpu_time_total
    # everything train_phase does outside torch ops (Python, Trainer bookkeeping, tokenizing, collating)
    in_ops = sum(rows.values())
    df = pd.DataFrame([{"where": k, "self_s": v / 1e6} for k, v in rows.items()])
    df = pd.concat([df, pd.DataFrame([{"where": "outside torch ops (Python, Trainer, collator)",
                                       "self_s": max(0.0, wall_us - in_ops) / 1e6}])], ignore_index=True)
    df["share_of_wall"] = df["self_s"] / (wall_us / 1e6)
    df = df.sort_values("self_s", ascending=False).reset_index(drop=True)
    ops = pd.DataFrame([{"op": ev.key, "category": _category(ev.key), "calls": ev.count,
                         "self_s": ev.self_cpu_time_total / 1e6, "flops": float(ev.flops or 0)}
                        for ev in prof.key_averages()]).sort_values("self_s", ascending=False)
    info = {"profiled_steps": res.stats["steps"], "profiled_wall_s": wall_us / 1e6,
            "matmul_flops_per_s": mm_flops / (mm_us / 1e6) if mm_us else float("nan"),
            "threads": torch.get_num_threads()}
    return df, ops, info


# ------------------------------------------------------------------ item 3: evaluation
def eval_throughput(result, evals: dict, cfg: BenchConfig, reps: int = 2) -> dict[str, float]:
    """``predict_encoder`` per language as the pipeline calls it, sorted vs file order (best of ``reps``)."""
    from . import featurize
    from .evaluate import predict_encoder
    tok = result.tokenizer
    feats = {lang: featurize.encode_classification(ds, tok, cfg.max_length) for lang, ds in evals.items()}
    lens = [list(map(len, f["input_ids"][:])) for f in feats.values()]
    tokens = sum(sum(ls) for ls in lens)
    times = {True: [], False: []}
    for _ in range(reps):
        for sort in (True, False):
            t0 = time.perf_counter()
            for f in feats.values():
                predict_encoder(result.model, f, tok.pad_token_id, cfg.eval_batch_size, sort_by_length=sort)
            times[sort].append(time.perf_counter() - t0)
    s, u = min(times[True]), min(times[False])
    pad_u = sum(padded_tokens(ls, cfg.eval_batch_size, sort=False) for ls in lens)
    pad_s = sum(padded_tokens(ls, cfg.eval_batch_size, sort=True) for ls in lens)
    return {"tokens": tokens, "examples": sum(len(d) for d in evals.values()), "sorted_s": s, "unsorted_s": u,
            "padded_unsorted": pad_u, "padded_sorted": pad_s, "padding_bound": pad_u / pad_s,
            "sorted_tokens_per_s": tokens / s, "unsorted_tokens_per_s": tokens / u, "speedup": u / s}


# ------------------------------------------------------------------ items 4-5: nodes in fresh processes
def orchestration(cfg: BenchConfig, work: Path) -> dict[str, Any]:
    """Per-node overhead of the two runner routes over a direct call (best of ``node_reps`` each):
    the local executor's forked child (``xlt run``'s default) and a fresh runner process (the Ray route);
    plus where the fresh route's extra time goes (papermill's import, the kernel's start and stop)."""
    from .bench_workers import (fresh_import_s, kernel_start_stop_s, node_params, run_forked_subprocess,
                                run_node_subprocess, run_papermill_subprocess)
    rows = []
    for rep in range(cfg.node_reps):
        params = node_params(cfg.node_model, cfg.node_train_n, 8, ("en", "de"), max_steps=2)
        direct = run_node_subprocess({**params, "out_dir": str(work / f"direct{rep}")})["process_wall_s"]
        forked = run_forked_subprocess(params, work / f"fork{rep}")
        paper = run_papermill_subprocess(params, work / f"runs{rep}")
        rows.append({"rep": rep, "direct_s": direct, "forked_s": forked, "fresh_runner_s": paper,
                     "overhead_forked_s": forked - direct, "overhead_fresh_s": paper - direct})
    df = pd.DataFrame(rows)
    direct = float(df["direct_s"].min())
    return {"table": df, "direct_s": direct, "forked_s": float(df["forked_s"].min()),
            "fresh_s": float(df["fresh_runner_s"].min()),
            "overhead_s": float(df["forked_s"].min()) - direct,
            "overhead_fresh_s": float(df["fresh_runner_s"].min()) - direct,
            "import_papermill_s": fresh_import_s("papermill"),
            "import_rfc3987_syntax_s": fresh_import_s("rfc3987_syntax"),
            "kernel_s": kernel_start_stop_s()}


def cpu_profile_total(per_example_s: float) -> tuple[int, float, str]:
    """(nodes, total seconds, how it was obtained) of the cpu profile.

    ``measured``: every node is done (sum of DONE.json wall_s, from runs/ or the exported results/).
    ``extrapolated``: mean wall of the finished nodes × all nodes — finished first are the cheapest
    model's, so this underestimates the total and overstates the share. ``planned``: nothing finished;
    training examples × epochs × ``per_example_s`` (the smallest model's slope), a lower bound."""
    from .grid import build_grid
    from .profiles import load_profile
    from .results import results_dir
    from .runs import DONE_FILE, read_marker, runs_dir
    nodes = build_grid(load_profile("cpu"))
    runs, results = runs_dir(None), results_dir(None) / "nodes"
    walls = [read_marker(runs, n.id, DONE_FILE).get("wall_s") or read_marker(results, n.id, DONE_FILE).get("wall_s")
             for n in nodes]
    done = [float(w) for w in walls if isinstance(w, (int, float))]
    if len(done) == len(nodes):
        return len(nodes), float(sum(done)), "measured"
    if done:
        return (len(nodes), float(np.mean(done)) * len(nodes),
                f"extrapolated from {len(done)} finished nodes (a lower bound)")
    return len(nodes), planned_examples(nodes) * per_example_s, "planned (lower bound)"


def scaling(cfg: BenchConfig, work: Path) -> pd.DataFrame:
    """One fresh process per point: the training-set sweep, then the depth sweep."""
    from .bench_workers import node_params, run_node_subprocess
    from .models import get_model
    rows = []
    points = [("train_n", cfg.scaling_model, n) for n in cfg.scaling_sizes] + \
             [("layers", m, cfg.depth_n) for m in cfg.depth_models]
    for sweep, model, n in points:
        params = node_params(model, n, cfg.scaling_eval_n, cfg.scaling_eval_langs, epochs=cfg.scaling_epochs,
                             out_dir=str(work / f"scale-{sweep}-{model}-{n}"))
        r = run_node_subprocess(params)
        layers = get_model(model).encoder_layers or _tiny_layers(model)
        rows.append({"sweep": sweep, "model": model, "train_n": n, "layers": layers, **r})
        print(f"  scaling {sweep}: {model} n={n}: node {r['node_wall_s']:.1f} s, peak RSS {r['peak_rss_mb']:.0f} MB",
              flush=True)
    return pd.DataFrame(rows)


def _tiny_layers(model: str) -> int:
    from . import backbones
    return backbones.tiny_xlmr_config().num_hidden_layers


# ------------------------------------------------------------------ the builders of sections 1-5
def build_train(run: BenchRun) -> list[Section]:
    """Sections 1 and 2: ours against the recipe (A B B A: the machine is shared and its load drifts;
    each side runs twice, symmetric in time), then the efficiency of ours and its profile."""
    from .models import get_model
    cfg, work, out = run.cfg, run.work, run.out
    train, evals, texts = train_data(cfg)
    peak_before = matmul_flops(cfg.matmul_n)
    load_a = load_average()
    lr = get_model(cfg.model).learning_rate
    runs_o, runs_r = [], []
    for which in ("ours", "ref", "ref", "ours"):
        if which == "ours":
            res = ours_train(cfg, train, texts, work)
            runs_o.append(res.stats)
        else:
            runs_r.append(reference_train(cfg, train, lr, work))
        last = runs_o[-1] if which == "ours" else runs_r[-1]
        print(f"  {which}: {last['tokens_per_s']:.0f} tokens/s (load {load_average()})", flush=True)
    run.trained = (res, evals)
    ours = {**res.stats, **pooled(runs_o)}
    ref = {**runs_r[-1], **pooled(runs_r)}
    load_b = load_average()
    peak_after = matmul_flops(cfg.matmul_n)
    keys = ("train_wall_s", "train_tokens", "tokens_per_s", "steps", "vocab_size", "params_trained")
    tdf = pd.DataFrame([{"side": side, "run": i, **{k: r[k] for k in keys}}
                        for i, (side, r) in enumerate([("ours (train_phase)", runs_o[0]), ("run_xnli recipe", runs_r[0]),
                                                      ("run_xnli recipe", runs_r[1]), ("ours (train_phase)", runs_o[1])])])
    tdf.to_csv(out / "training.csv", index=False)
    # item 2
    spec_cfg = res.model.config
    lengths = train_lengths(res.tokenizer, train, cfg.max_length)
    flops = training_flops(lengths, ours["params_non_embedding"], spec_cfg.num_hidden_layers, spec_cfg.hidden_size)
    flops *= len(runs_o)                       # every ours run trains the same examples once
    prof_df, ops_df, prof_info = profile_training(cfg, train, texts, work)
    prof_df.to_csv(out / PROFILE_CSV, index=False)
    run.profile = prof_df
    ops_df.head(40).to_csv(out / "profile_ops.csv", index=False)
    prof_info["hidden"] = spec_cfg.hidden_size
    prof_info["top_other"] = ", ".join(f"{r.op} {r.self_s:.2g} s" for r in ops_df[ops_df["category"] ==
                                       "other torch ops"].head(5).itertuples())
    return [training_section(cfg, run.cmd, ours, ref, (load_a, load_b), tdf, node_batches(cfg)[1]),
            efficiency_section(cfg, run.cmd, flops=flops, train_wall_s=ours["train_wall_s"],
                               peaks=(peak_before, peak_after), lengths=lengths,
                               non_embedding_params=ours["params_non_embedding"], prof_df=prof_df,
                               prof_info=prof_info)]


def train_lengths(tokenizer, train, max_length: int) -> list[int]:
    """Non-padding length of each training pair as the trainer encodes it (truncated at ``max_length``)."""
    from . import featurize
    return [len(x) for x in featurize.encode_classification(train, tokenizer, max_length)["input_ids"][:]]


def build_eval(run: BenchRun) -> list[Section]:
    """Section 3 on the model section 1 trained (the driver runs train first)."""
    if run.trained is None:
        raise RuntimeError("bench section eval measures the model section train trained: run train first")
    res, evals = run.trained
    ev = eval_throughput(res, evals, run.cfg)
    pd.DataFrame([ev]).to_csv(run.out / "eval.csv", index=False)
    return [eval_section(run.cfg, run.cmd, ev)]


def build_scaling(run: BenchRun) -> list[Section]:
    """Section 5; its points stay on ``run`` for section 4's planned total."""
    run.scaling = scaling(run.cfg, run.work)
    run.scaling.to_csv(run.out / SCALING_CSV, index=False)
    return [scaling_section(run.cfg, run.scaling, run.cmd)]


def build_orchestration(run: BenchRun) -> list[Section]:
    """Section 4, its share of the cpu profile from section 5's slope when that ran (else measured or n/a)."""
    orc = orchestration(run.cfg, run.work)
    orc["table"].to_csv(run.out / "orchestration.csv", index=False)
    n_nodes, total, kind = cpu_profile_total(smallest_slope(run.scaling, run.cfg))
    return [orchestration_section(run.cfg, run.cmd, orc, n_nodes, total, kind)]
