"""The speed measurements of ``xlt bench`` added by issue 15: fp32 training levers, the GEMM ceiling of
fp32 training, bf16 training, evaluation precisions, and what full evaluation sets cost.

2b. **training levers** (fp32): a bigger batch over the same examples, foreach vs fused AdamW,
   ``torch.compile`` (compile time and steady step), each against the trainer as it is.

2c. **GEMM ceiling** (fp32): every matrix product of one training step of one layer at the batch
   section 1 trained (:func:`~xlt_helpers.bench.layer_gemms`), each distinct shape timed beside the
   fp32 matmul peak of section 2 (A B … B A); their FLOP-weighted rate over the peak bounds the
   hardware efficiency of item 1, alone and with the profile's non-GEMM share.

6. **bf16 training**: :func:`xlt_helpers.train.train_phase` at ``precision="bf16"`` against fp32,
   same model, examples and steps, A B B A in one process; and a fixed small node (same seed)
   trained both ways, its per-language scores next to the seed-to-seed difference at fp32.
   Skipped, saying why, on a machine without native bf16 (``train.check_precision``).
7. **evaluation precision**: the pipeline's :func:`xlt_helpers.evaluate.evaluate` at every
   ``eval_precision`` on trained small nodes (XNLI and MLQA): prediction agreement with fp32,
   per-language score differences, and the speed-up over fp32 (sorted batches, today's path).
8. **full evaluation sets**: seconds per node to evaluate all of XNLI dev (15 × 2,490 pairs) and
   the same-language MLQA dev sets (4,199 questions) for each model and precision, *extrapolated*
   from a measured per-example time on a seeded subsample (the page says so).

Every ratio is taken side by side in one process, in A B B A order where there are two sides.
Each ``build_*`` takes the :class:`~xlt_helpers.bench.BenchRun`, measures, writes its CSVs and
returns its section, assembled by the pure functions of :mod:`xlt_helpers.bench_report`; the
targets, the full-set sizes and the pure helpers (agreement, extrapolation, A B B A order) live in
:mod:`xlt_helpers.bench` and are tested without timing anything (tests/test_bench.py).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from .bench import PROFILE_CSV, BenchRun, abba, agreement, extrapolate, layer_gemms, matmul_share, pooled, shape_label
from .bench_report import (TORCH_MASKS, Section, bf16_section, ceiling_section, evalcost_section, evalprec_section,
                           levers_section)
from .bench_measure import load_average, ours_train, train_data
from . import machine
from .machine import gemm_flops, matmul_flops


def native_bf16() -> tuple[bool, str]:
    """(does this machine compute bf16 natively, the reason in words for the page)."""
    ok, why = machine.native_bf16()
    return ok, why if ok else (f"{why}: bf16 would be emulated (~20x slower than fp32), so the trainer refuses "
                               "it and this section is skipped")


# ------------------------------------------------------------------ small trained nodes
def train_node(model: str, target: str, train_n: int, eval_n: int, langs: tuple[str, ...], out_dir: Path, *,
               seed: int = 0, precision: str = "fp32", epochs: float = 1.0, dropout_rng: str = "torch"):
    """(PhaseResult, {lang: dev Dataset}, TrainConfig) of one phase-2 baseline node trained in this process,
    with the cpu profile's settings for ``target`` (batch 16; XNLI max length 128, MLQA 256 / stride 128; torch's
    dropout masks unless ``dropout_rng`` says otherwise)."""
    from . import featurize
    from .data import load_task
    from .pipeline import DATA_SEED
    from .tasks import get_task
    from .train import TrainConfig, train_phase
    spec = get_task(target)
    train = load_task(target, "train", "en", n=train_n, seed=DATA_SEED)
    evals = {lang: load_task(target, "dev", lang, n=eval_n, seed=DATA_SEED) for lang in langs}
    texts = featurize.texts_of(spec, train) + [t for d in evals.values() for t in featurize.texts_of(spec, d)]
    qa = spec.kind == "extractive-QA"
    cfg = TrainConfig(epochs=epochs, batch_size=16, max_length=256 if qa else 128, doc_stride=128, seed=seed,
                      precision=precision, dropout_rng=dropout_rng)
    res = train_phase(model, target, train, cfg, out_dir, vocab_texts=texts)
    return res, evals, cfg


def fixed_node(run: BenchRun, model: str, target: str, train_n: int, eval_n: int, *, seed: int = 0,
               precision: str = "fp32", epochs: float = 1.0, dropout_rng: str = "torch"):
    """:func:`train_node` once per configuration in one bench run: section 7 evaluates the fp32 seed-0 XNLI
    node that section 6 trained (minutes of e5-L6 training saved), instead of training the same node again."""
    key = (model, target, train_n, eval_n, run.cfg.eval_langs, seed, precision, epochs, dropout_rng)
    if key not in run.nodes:
        run.nodes[key] = train_node(model, target, train_n, eval_n, run.cfg.eval_langs,
                                    run.work / f"fixed-{model}-{target}-{precision}-{dropout_rng}-{seed}", seed=seed,
                                    precision=precision, epochs=epochs, dropout_rng=dropout_rng)
    return run.nodes[key]


def fixed_xnli_row(run: BenchRun, seed: int, **setting: str) -> dict[str, Any]:
    """One row of a fixed-node table (sections 2b and 6): the XNLI fixed node at ``seed`` with ``setting`` (the
    :func:`fixed_node` keyword it varies: ``precision=`` or ``dropout_rng=``), its training wall and its dev
    accuracy per language."""
    cfg = run.cfg
    res, evals, tc = fixed_node(run, cfg.fixed_model, "xnli", cfg.fixed_train_n, cfg.fixed_eval_n, seed=seed,
                                epochs=cfg.fixed_epochs, **setting)
    scores, _, _ = score_node(res, evals, tc)
    print(f"  fixed node {setting} seed {seed}: {scores}", flush=True)
    return {**setting, "seed": seed, "train_wall_s": res.stats["train_wall_s"],
            **{lang: s["accuracy"] for lang, s in scores.items()}}


def score_node(res, evals: dict, cfg) -> tuple[dict[str, dict[str, float]], dict[str, list], float]:
    """({lang: scores}, {lang: predictions}, evaluation seconds) of ``res`` as the pipeline evaluates it."""
    from .evaluate import evaluate
    scores, preds, t0 = {}, {}, time.perf_counter()
    for lang, ds in evals.items():
        rows, s = evaluate(res, ds, lang, cfg)
        scores[lang] = s
        preds[lang] = [r["pred"] for r in rows if r.get("metric") != "em"]
    return scores, preds, time.perf_counter() - t0


# ------------------------------------------------------------------ item 6: bf16 training
def bf16_training(run: BenchRun, train, texts) -> dict[str, Any]:
    """fp32 vs bf16 ``train_phase`` on the same examples and steps (A B B A), the two matmul peaks,
    and the fixed node's scores at fp32 (seeds 0 and 1) and bf16 (seed 0)."""
    cfg, work = run.cfg, run.work
    peaks = {d: matmul_flops(cfg.matmul_n, d) for d in ("fp32", "bf16")}
    runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    load_a = load_average()
    for p in abba(["fp32", "bf16"]):
        r = ours_train(cfg, train, texts, work, precision=p).stats
        runs[p].append(r)
        print(f"  training {p}: {r['tokens_per_s']:.0f} tokens/s (load {load_average()})", flush=True)
    load_b = load_average()
    rate = {p: pooled(rs)["tokens_per_s"] for p, rs in runs.items()}
    table = pd.DataFrame([{"precision": p, "run": i, **{k: r[k] for k in ("train_wall_s", "train_tokens", "tokens_per_s",
                                                                             "steps")}}
                          for i, (p, r) in enumerate((p, runs[p][k]) for p, k in
                                                     zip(abba(["fp32", "bf16"]), (0, 0, 1, 1)))])
    node = [fixed_xnli_row(run, seed, precision=p) for seed, p in ((0, "fp32"), (0, "bf16"), (1, "fp32"))]
    return {"peaks": peaks, "pooled": rate, "table": table, "node": pd.DataFrame(node), "load": (load_a, load_b)}


# ------------------------------------------------------------------ item 7: evaluation precision
def eval_precisions(run: BenchRun, precisions: tuple[str, ...]) -> dict[str, Any]:
    """Train one XNLI node (``cfg.fixed_model``) and one MLQA node (``cfg.qa_fixed_model``) at fp32 (or take
    section 6's), then evaluate each at every precision with the pipeline's ``evaluate``: agreement and score
    differences against fp32; and the model time of each precision on ``cfg.model`` (:func:`model_speed`)."""
    cfg, agree = run.cfg, []
    for target, model, train_n, eval_n, epochs in (
            ("xnli", cfg.fixed_model, cfg.fixed_train_n, cfg.fixed_eval_n, cfg.fixed_epochs),
            ("mlqa", cfg.qa_fixed_model, cfg.qa_train_n, cfg.qa_eval_n, 1.0)):
        res, evals, tc = fixed_node(run, model, target, train_n, eval_n, epochs=epochs)
        metric = "accuracy" if target == "xnli" else "f1"
        out = {p: score_node(res, evals, replace(tc, eval_precision=p)) for p in precisions}
        base_scores, base_preds, _ = out["fp32"]
        for p in precisions:
            scores, preds, wall = out[p]
            for lang in evals:
                agree.append({"target": target, "precision": p, "lang": lang, "n": len(evals[lang]),
                              "metric": metric, "score": scores[lang][metric],
                              "delta_vs_fp32": scores[lang][metric] - base_scores[lang][metric],
                              "agreement": agreement(preds[lang], base_preds[lang]), "evaluate_s": wall})
    return {"speed": model_speed(cfg, precisions), "agreement": pd.DataFrame(agree)}


def model_speed(cfg, precisions: tuple[str, ...]) -> pd.DataFrame:
    """Seconds of :func:`predict_encoder` (sorted batches, as the pipeline runs it; features built
    beforehand, as in section 3) for ``cfg.model`` with a fresh head on XNLI dev (``cfg.eval_n`` per
    language) and MLQA dev windows (``cfg.speed_qa_n`` questions per language), per precision,
    A B B A over precisions, at each thread count of ``cfg.speed_threads`` (0 = the process's default):
    a node alone on the machine has every core, one of two nodes at once (``--workers 2``) has half, and
    bf16's gain differs between the two. Speed does not depend on trained weights."""
    import torch
    from . import backbones, featurize
    from .data import load_task
    from .evaluate import predict_encoder
    from .models import get_model
    from .qa import prepare_eval_features
    from .tasks import get_task
    from .vocab import covering_ids
    spec = get_model(cfg.model)
    tok = backbones.load_tokenizer(spec)
    _, xnli, xtexts = train_data(cfg)
    mlqa = {lang: load_task("mlqa", "dev", lang, n=cfg.speed_qa_n, seed=0) for lang in cfg.eval_langs}
    qtexts = [t for d in mlqa.values() for t in featurize.texts_of(get_task("mlqa"), d)]
    rows = []
    for target, evals, texts in (("xnli", xnli, xtexts), ("mlqa", mlqa, qtexts)):
        from .train import build_model
        task = get_task(target)
        model, t, _, _ = build_model(spec, task, keep_ids=covering_ids(tok, texts), tokenizer=tok)
        model.eval()
        if target == "xnli":
            feats = [featurize.encode_classification(d, t, cfg.max_length) for d in evals.values()]
            keys = ("logits",)
        else:
            feats = [d.map(lambda b: prepare_eval_features(b, t, 256, 128), batched=True, remove_columns=d.column_names)
                     for d in evals.values()]
            keys = ("start_logits", "end_logits")
        default = torch.get_num_threads()
        for threads in dict.fromkeys(k or default for k in cfg.speed_threads):
            torch.set_num_threads(threads)
            try:
                for p in precisions:                  # copies made and kernels warmed before timing: a node
                    predict_encoder(model, feats[0], t.pad_token_id, cfg.eval_batch_size, keys, precision=p)  # pays them once
                seconds = {p: 0.0 for p in precisions}
                for p in abba(list(precisions)):
                    t0 = time.perf_counter()
                    for f in feats:
                        predict_encoder(model, f, t.pad_token_id, cfg.eval_batch_size, keys, precision=p)
                    seconds[p] += time.perf_counter() - t0
            finally:
                torch.set_num_threads(default)
            print(f"  {cfg.model} {target} model time at {threads} thread(s): "
                  + ", ".join(f"{p} {seconds[p] / 2:.1f} s" for p in precisions) + f" (load {load_average()})", flush=True)
            n = sum(len(d) for d in evals.values())
            rows += [{"target": target, "model": cfg.model, "threads": threads, "precision": p, "examples": n,
                      "inputs": sum(len(f) for f in feats), "model_s": seconds[p] / 2,
                      "speedup_vs_fp32": seconds["fp32"] / seconds[p]} for p in precisions]
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ item 8: full evaluation sets
def full_eval_sizes() -> dict[str, int]:
    """Examples in all of XNLI dev and in the same-language MLQA dev sets, counted from the data."""
    from .data import load_task
    from .tasks import get_task
    return {t: sum(len(load_task(t, "dev", lang)) for lang in get_task(t).langs_for("dev")) for t in ("xnli", "mlqa")}


def full_eval_cost(cfg, precisions: tuple[str, ...]) -> pd.DataFrame:
    """Per model and target: seconds to evaluate a seeded subsample at each precision (A B B A over
    precisions), the per-example time, and that time × the full set's size. The heads are fresh
    (evaluation cost does not depend on trained weights, except the length of what an
    encoder-decoder generates for MLQA: the page says so). The vocabulary is trimmed to the full
    dev sets' text, as a node evaluating them would be."""
    from . import backbones, featurize
    from .data import load_task
    from .evaluate import evaluate, inference_model
    from .models import get_model
    from .tasks import get_task
    from .train import PhaseResult, TrainConfig, build_model
    from .vocab import covering_ids
    sizes = full_eval_sizes()
    rows = []
    keep_cache: dict[tuple[str, str], list[int]] = {}
    for model in cfg.cost_models:
        spec = get_model(model)
        for target in cfg.cost_targets:
            if target == "mlqa" and model in cfg.cost_skip_mlqa:
                continue
            task = get_task(target)
            langs = cfg.cost_langs
            evals = {lang: load_task(target, "dev", lang, n=cfg.cost_n, seed=0) for lang in langs}
            tok = backbones.load_tokenizer(spec)
            key = (spec.source, target)                  # one tokenizer per source (e5 and e5ed share it)
            if key not in keep_cache:
                texts = [t for lang in task.langs_for("dev") for t in featurize.texts_of(task, load_task(target, "dev", lang))]
                extra = [*task.label_targets(), *featurize.LETTERS, featurize.NO_ANSWER, *task.labels]
                keep_cache[key] = covering_ids(tok, [*texts, *extra])
            m, t, vmap, _ = build_model(spec, task, keep_ids=keep_cache[key], tokenizer=tok)
            qa = task.kind == "extractive-QA"
            tc = TrainConfig(max_length=256 if qa else 128, doc_stride=128)
            res = PhaseResult(m, t, spec, task, [], {}, vmap)
            n = sum(len(d) for d in evals.values())
            copy_s = {}
            first_lang, first_ds = next(iter(evals.items()))
            for p in precisions:                      # the bf16/int8 copy: made once per node, not per example
                t0 = time.perf_counter()
                inference_model(m, p)
                copy_s[p] = time.perf_counter() - t0
                evaluate(res, first_ds.select(range(min(4, len(first_ds)))), first_lang, replace(tc, eval_precision=p))
            seconds = {p: 0.0 for p in precisions}    # (above: one untimed warm-up per precision; below: timed)
            for p in abba(list(precisions)):
                t0 = time.perf_counter()
                for lang, ds in evals.items():
                    evaluate(res, ds, lang, replace(tc, eval_precision=p))
                seconds[p] += time.perf_counter() - t0
            for p in precisions:
                s = seconds[p] / 2
                rows.append({"model": model, "target": target, "precision": p, "measured_examples": n,
                             "measured_s": s, "s_per_example": s / n, "copy_s": copy_s[p], "full_examples": sizes[target],
                             "full_set_s_extrapolated": copy_s[p] + extrapolate(s, n, sizes[target]),
                             "speedup_vs_fp32": seconds["fp32"] / seconds[p]})
            print(f"  cost {model} {target}: " + ", ".join(f"{p} {seconds[p] / 2 / n * 1000:.1f} ms/ex"
                                                         for p in precisions) + f" (load {load_average()})", flush=True)
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ the sections of results.md
def eval_precisions_here() -> tuple[str, ...]:
    """The evaluation precisions this machine runs: fp32 and int8 everywhere, the bf16 ones where native."""
    from .hparams import EVAL_PRECISIONS
    native = native_bf16()[0]
    return tuple(p for p in EVAL_PRECISIONS if native or not machine.asks_bf16(p))


def build_bf16(run: BenchRun) -> list[Section]:
    """Section 6 (bf16 training), or the section saying why it was skipped."""
    ok, why = native_bf16()
    if not ok:
        return [bf16_section(run.cfg, run.cmd, why, None)]
    train, _, texts = train_data(run.cfg)
    r = bf16_training(run, train, texts)
    r["table"].to_csv(run.out / "bf16_training.csv", index=False)
    r["node"].to_csv(run.out / "bf16_fixed_node.csv", index=False)
    return [bf16_section(run.cfg, run.cmd, why, r, fixed_floors())]


def build_evalprec(run: BenchRun) -> list[Section]:
    """Section 7: agreement and speed of each evaluation precision on trained small nodes."""
    precisions = eval_precisions_here()
    r = eval_precisions(run, precisions)
    r["speed"].to_csv(run.out / "eval_precision_speed.csv", index=False)
    r["agreement"].to_csv(run.out / "eval_precision_agreement.csv", index=False)
    return [evalprec_section(run.cfg, run.cmd, precisions, r["agreement"], r["speed"], fixed_floors())]


def fixed_floors() -> dict[str, float]:
    """The English floors a fixed node must clear for its precision comparisons to count: the cpu profile's
    ``study.floors`` (one place for them), the level every baseline the book reports clears."""
    from .profiles import load_profile
    return dict(load_profile("cpu").study.floors)


def build_evalcost(run: BenchRun) -> list[Section]:
    """Section 8: seconds per node to evaluate full XNLI dev and MLQA same-language dev, per model and precision."""
    precisions = eval_precisions_here()
    df = full_eval_cost(run.cfg, precisions)
    df.to_csv(run.out / "full_eval_cost.csv", index=False)
    return [evalcost_section(run.cfg, run.cmd, precisions, df, full_eval_sizes())]


# ------------------------------------------------------------------ item 1 levers (fp32)
def build_levers(run: BenchRun) -> list[Section]:
    """Section 2b: what each fp32 lever does to ``train_phase``'s tokens/s on the same examples:
    fewer, fuller batches (``cfg.lever_batch_size``), foreach instead of fused AdamW (transformers'
    default on torch >= 2.8 is fused), torch's dropout masks when ours draws them elsewhere (``cfg.dropout_rng``,
    with the fixed node's scores each way: :func:`lever_fixed_node`), and ``torch.compile`` with a cold and then a
    warm inductor cache (what compiling costs, what a compiled step saves, and after how many steps it pays)."""
    from transformers import TrainerCallback
    cfg, work, out = run.cfg, run.work, run.out
    train, _, texts = train_data(cfg)
    sides = {"baseline (batch {}, fused AdamW, {} dropout masks)".format(cfg.batch_size, cfg.dropout_rng): {},
             f"batch {cfg.lever_batch_size} (same examples, fewer steps)": {"batch_size": cfg.lever_batch_size},
             "foreach AdamW": {"trainer_args": {"optim": "adamw_torch"}}}
    if cfg.dropout_rng != "torch":
        sides[TORCH_MASKS] = {"dropout_rng": "torch"}
    names = list(sides)
    runs: dict[str, list[dict]] = {n: [] for n in names}

    class Steps(TrainerCallback):                  # times from the loop's start: model loading is not compiling
        def __init__(self) -> None:
            self.stamps: list[float] = []

        def on_train_begin(self, *a, **k):
            self.stamps = [time.perf_counter()]

        def on_step_end(self, *a, **k):
            self.stamps.append(time.perf_counter())

        def ends(self) -> list[float]:
            return [t - self.stamps[0] for t in self.stamps[1:]]

    load_a = load_average()
    for n in abba(names):
        steps = Steps()                            # the baseline's steps, batch for batch against the compiled ones
        r = {**ours_train(cfg, train, texts, work, callbacks=[steps], **sides[n]).stats, "step_ends": steps.ends()}
        runs[n].append(r)
        print(f"  lever {n}: {r['tokens_per_s']:.0f} tokens/s (load {load_average()})", flush=True)
    load_b = load_average()
    compiled: dict[str, dict[str, Any]] = {}

    if cfg.lever_compile:
        import os
        from unittest import mock
        import torch
        # an empty inductor cache that the cold run fills; the variable is restored afterwards, error or not
        with mock.patch.dict(os.environ, {"TORCHINDUCTOR_CACHE_DIR": str(work / "inductor-cache")}):
            for state in ("cold cache", "warm cache"):
                steps = Steps()
                torch._dynamo.reset()              # forget compiled code in memory; the disk cache stays
                r = ours_train(cfg, train, texts, work, torch_compile=True, callbacks=[steps]).stats
                compiled[state] = {"stats": r, "step_ends": steps.ends()}
                print(f"  lever torch.compile ({state}): {r['train_wall_s']:.1f} s (load {load_average()})", flush=True)
    from .plan import train_steps
    from .profiles import load_profile
    xnli = load_profile("cpu").target["xnli"]
    node_steps = train_steps(xnli.train_n, xnli.hparams["batch_size"], xnli.hparams["gradient_accumulation_steps"],
                             xnli.hparams["epochs"], xnli.hparams["max_steps"])
    masks_node = lever_fixed_node(run) if cfg.lever_fixed_node and cfg.dropout_rng != "torch" else None
    section = levers_section(cfg, run.cmd, runs, (load_a, load_b), compiled or None, node_steps, masks_node)
    section.table.to_csv(out / "levers.csv", index=False)
    if masks_node is not None:
        masks_node.to_csv(out / "levers_fixed_node.csv", index=False)
    return [section]


def lever_fixed_node(run: BenchRun) -> pd.DataFrame:
    """The fixed XNLI node's dev accuracy per language with ``cfg.dropout_rng``'s masks and with torch's, at seeds
    0 .. ``cfg.lever_seeds`` - 1 each (section 6 reuses torch's seeds 0 and 1), one row per node."""
    cfg = run.cfg
    return pd.DataFrame([fixed_xnli_row(run, seed, dropout_rng=rng)
                         for seed in range(cfg.lever_seeds) for rng in (cfg.dropout_rng, "torch")])


# ------------------------------------------------------------------ item 2c: the GEMM ceiling of fp32 training
def encoder_dims(config: Any, layers: int | None = None) -> dict[str, int]:
    """hidden, FFN (intermediate) width, heads and layers of a BERT/XLM-R encoder config."""
    return {"hidden": int(config.hidden_size), "intermediate": int(config.intermediate_size),
            "heads": int(config.num_attention_heads), "layers": int(layers or config.num_hidden_layers)}


def model_dims(model: str) -> dict[str, int]:
    """:func:`encoder_dims` of ``model`` from its config alone (no weights loaded): e5 models from the
    offline checkpoint's config cut to their depth, the tiny model from its random config."""
    from transformers import AutoConfig
    from . import backbones
    from .models import get_model
    spec = get_model(model)
    if spec.source == "e5" and spec.family == "encoder":
        return encoder_dims(AutoConfig.from_pretrained(str(backbones.e5_checkpoint_dir())), spec.encoder_layers)
    if spec.source == "tiny" and spec.family == "encoder":
        return encoder_dims(backbones.tiny_xlmr_config())
    raise ValueError(f"bench ceiling: no encoder dimensions for model {model!r} (source {spec.source}, family "
                     f"{spec.family}); use an e5-L* model or tiny-xlmr")


def ceiling_inputs(run: BenchRun) -> dict[str, Any]:
    """The batch the ceiling prices: the model's dimensions, non-padding tokens per batch (M) and mean
    sequence length (L), and where they come from. From section 1's timed run when it ran in this
    process (its tokens over its steps and examples: what training multiplied); else the config's batch
    size × the mean length of the same training pairs, tokenized as the trainer tokenizes them."""
    cfg = run.cfg
    if run.trained is not None:
        res = run.trained[0]
        st = res.stats
        return {"dims": encoder_dims(res.model.config), "tokens": st["train_tokens"] / st["steps"],
                "seq_len": st["train_tokens"] / st["train_examples"],
                "source": f"section 1's run: {st['train_tokens']} non-padding tokens in {st['steps']} steps of "
                          f"{st['train_examples']} pairs"}
    from . import backbones
    from .bench_measure import train_lengths
    from .models import get_model
    train, _, _ = train_data(cfg)
    lengths = train_lengths(backbones.load_tokenizer(get_model(cfg.model)), train, cfg.max_length)
    mean = sum(lengths) / len(lengths)
    return {"dims": model_dims(cfg.model), "tokens": cfg.batch_size * mean, "seq_len": mean,
            "source": f"batch size {cfg.batch_size} × mean length {mean:.1f} of the {len(lengths)} training pairs "
                      "(section 1 did not run)"}


def gemm_timings(shapes: list[tuple], peak_n: int, *, repeats: int, min_s: float) -> pd.DataFrame:
    """FLOP/s of the fp32 ``peak_n``² matmul (the peak of section 2) and of every GEMM shape, in the order
    A B C … C B A (:func:`~xlt_helpers.bench.abba`): the machine is shared, so each shape is timed
    beside the peak, twice, symmetric in time. At torch's thread count of this process, as training runs.
    One row per timing (``machine.gemm_flops``: best of ``repeats``, each ``min_s`` long)."""
    import torch
    peak = (peak_n, peak_n, peak_n, 1, False, False)
    sides = {f"peak {peak_n}²": peak, **{shape_label(s): s for s in shapes}}
    names = list(sides)
    rows = []
    for i, name in enumerate(abba(names)):
        m, k, n, batch, ta, tb = sides[name]
        rate = gemm_flops(m, k, n, batch=batch, ta=ta, tb=tb, repeats=repeats, min_s=min_s)
        rows.append({"pass": i // len(names), "shape": name, "is_peak": name == names[0],
                     "m": m, "k": k, "n": n, "batch": batch, "ta": ta, "tb": tb, "gflop_per_s": rate / 1e9,
                     "threads": torch.get_num_threads()})
    return pd.DataFrame(rows)


def profile_share(run: BenchRun) -> tuple[float | None, str]:
    """(the GEMM share of wall time, where it comes from): section 2's profile when train ran in this
    process, else a ``profile.csv`` an earlier full run left in the output folder, else (None, why)."""
    if run.profile is not None:
        return matmul_share(run.profile), "section 2's profile in this run"
    path = run.out / PROFILE_CSV
    if path.is_file():
        return matmul_share(pd.read_csv(path)), f"{PROFILE_CSV} of an earlier run in this folder"
    return None, "no profile (section train did not run, and no profile.csv in the output folder)"


def build_ceiling(run: BenchRun) -> list[Section]:
    """Section 2c: the hardware efficiency the model's own GEMM shapes allow, measured against the peak
    section 2 divides by, and with the profile's non-GEMM share; writes ceiling.csv (per GEMM) and
    ceiling_timings.csv (every timing)."""
    cfg = run.cfg
    inp = ceiling_inputs(run)
    d = inp["dims"]
    gemms = layer_gemms(d["hidden"], d["intermediate"], d["heads"], round(inp["tokens"]), round(inp["seq_len"]))
    load_a = load_average()
    timings = gemm_timings(list(dict.fromkeys(g.shape for g in gemms)), cfg.matmul_n, repeats=cfg.gemm_repeats,
                           min_s=cfg.gemm_min_s)
    load_b = load_average()
    share, share_source = profile_share(run)
    section = ceiling_section(cfg, run.cmd, gemms, timings, {**inp, "gemm_share": share, "share_source": share_source,
                                                             "loads": (load_a, load_b)})
    print(f"  ceiling: {section.status} (load {load_b})", flush=True)
    timings.to_csv(run.out / "ceiling_timings.csv", index=False)
    section.table.to_csv(run.out / "ceiling.csv", index=False)
    return [section]
