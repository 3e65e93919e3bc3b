"""The speed measurements of ``xlt bench`` added by issue 15: fp32 training levers, bf16 training,
evaluation precisions, and what full evaluation sets cost.

2b. **training levers** (fp32): a bigger batch over the same examples, foreach vs fused AdamW,
   ``torch.compile`` (compile time and steady step), each against the trainer as it is.

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
Each ``build_*`` takes the :class:`~xlt_helpers.bench.BenchRun` and returns its section; the
targets live with the others in :mod:`xlt_helpers.bench`. Pure helpers (agreement, extrapolation)
are tested without timing anything (tests/test_bench.py).
"""
from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .bench import (BF16_TRAIN_SPEEDUP_TARGET, EVAL_PRECISION_SPEEDUP_TARGET, MLQA_F1_DELTA_TARGET, TARGET,
                    XNLI_AGREEMENT_TARGET, BenchRun, Section, _fmt, verdict)
from .bench_measure import load_average, ours_train, train_data
from .machine import matmul_flops

#: full-set sizes (``../shared/data``: XNLI dev 2,490 pairs in each of 15 languages; MLQA dev,
#: context and question in the same language, 7 languages: en 1,148, de 512, es 500, ar 517, hi 507,
#: vi 511, zh 504). ``full_eval_sizes`` recounts them from the data and the page shows both.
XNLI_FULL_DEV = 15 * 2490
MLQA_FULL_DEV = 4199


# ------------------------------------------------------------------ pure helpers
def agreement(a: list[Any], b: list[Any]) -> float:
    """Share of positions where two prediction lists agree (same length, non-empty)."""
    if len(a) != len(b) or not a:
        raise ValueError(f"agreement needs two non-empty prediction lists of one length, got {len(a)} and {len(b)}")
    return float(np.mean([x == y for x, y in zip(a, b)]))


def extrapolate(seconds: float, measured: int, full: int) -> float:
    """Seconds for ``full`` examples at the per-example rate measured on ``measured`` of them."""
    if measured <= 0:
        raise ValueError(f"extrapolate: measured must be > 0 examples, got {measured}")
    return seconds / measured * full


def abba(sides: list[str], reps: int = 2) -> list[str]:
    """The order in which ``sides`` run: forward then backward, ``reps`` times in all
    (A B C C B A ...), so every side sees the same load drift on average."""
    order: list[str] = []
    for r in range(reps):
        order += sides if r % 2 == 0 else sides[::-1]
    return order


def native_bf16() -> tuple[bool, str]:
    """(does this machine compute bf16 natively, the reason in words)."""
    import torch
    from .train import BF16_CPU_FLAGS, cpu_flags     # via train: the trainer's own check reads it there
    if torch.cuda.is_available():
        return True, f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    have = sorted(cpu_flags() & set(BF16_CPU_FLAGS))
    if have:
        return True, f"CPU flags {', '.join(have)}"
    return False, (f"this CPU has none of {', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo: bf16 would be emulated "
                   "(~20x slower than fp32), so the trainer refuses it and this section is skipped")


# ------------------------------------------------------------------ small trained nodes
def train_node(model: str, target: str, train_n: int, eval_n: int, langs: tuple[str, ...], out_dir: Path, *,
               seed: int = 0, precision: str = "fp32", epochs: float = 1.0):
    """(PhaseResult, {lang: dev Dataset}, TrainConfig) of one phase-2 baseline node trained in this process,
    with the cpu profile's settings for ``target`` (batch 16; XNLI max length 128, MLQA 256 / stride 128)."""
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
                      precision=precision)
    res = train_phase(model, target, train, cfg, out_dir, vocab_texts=texts)
    return res, evals, cfg


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
def bf16_training(cfg, train, texts, work: Path) -> dict[str, Any]:
    """fp32 vs bf16 ``train_phase`` on the same examples and steps (A B B A), the two matmul peaks,
    and the fixed node's scores at fp32 (seeds 0 and 1) and bf16 (seed 0)."""
    peaks = {d: matmul_flops(cfg.matmul_n, d) for d in ("fp32", "bf16")}
    runs: dict[str, list[dict]] = {"fp32": [], "bf16": []}
    load_a = load_average()
    for p in abba(["fp32", "bf16"]):
        r = ours_train(cfg, train, texts, work, precision=p).stats
        runs[p].append(r)
        print(f"  training {p}: {r['tokens_per_s']:.0f} tokens/s (load {load_average()})", flush=True)
    load_b = load_average()
    pooled = {p: sum(r["train_tokens"] for r in rs) / sum(r["train_wall_s"] for r in rs) for p, rs in runs.items()}
    table = pd.DataFrame([{"precision": p, "run": i, **{k: r[k] for k in ("train_wall_s", "train_tokens", "tokens_per_s",
                                                                             "steps")}}
                          for i, (p, r) in enumerate((p, runs[p][k]) for p, k in
                                                     zip(abba(["fp32", "bf16"]), (0, 0, 1, 1)))])
    node = []
    for seed, p in ((0, "fp32"), (0, "bf16"), (1, "fp32")):
        res, evals, tc = train_node(cfg.fixed_model, "xnli", cfg.fixed_train_n, cfg.fixed_eval_n, cfg.eval_langs,
                                    work / f"fixed-{p}-{seed}", seed=seed, precision=p, epochs=cfg.fixed_epochs)
        scores, _, _ = score_node(res, evals, tc)
        node.append({"precision": p, "seed": seed, "train_wall_s": res.stats["train_wall_s"],
                     **{lang: s["accuracy"] for lang, s in scores.items()}})
        print(f"  fixed node {p} seed {seed}: {scores}", flush=True)
    return {"peaks": peaks, "pooled": pooled, "table": table, "node": pd.DataFrame(node), "load": (load_a, load_b)}


# ------------------------------------------------------------------ item 7: evaluation precision
def eval_precisions(cfg, work: Path, precisions: tuple[str, ...]) -> dict[str, Any]:
    """Train one XNLI and one MLQA node (``cfg.fixed_model``, fp32), then evaluate each at every
    precision with the pipeline's ``evaluate``: agreement and score differences against fp32; and
    the model time of each precision on ``cfg.model`` (:func:`model_speed`)."""
    agree = []
    for target, train_n, eval_n, langs in (("xnli", cfg.fixed_train_n, cfg.fixed_eval_n, cfg.eval_langs),
                                           ("mlqa", cfg.qa_train_n, cfg.qa_eval_n, cfg.eval_langs)):
        res, evals, tc = train_node(cfg.fixed_model, target, train_n, eval_n, langs, work / f"evalprec-{target}",
                                    epochs=cfg.fixed_epochs if target == "xnli" else 1.0)
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
    A B B A over precisions; speed does not depend on trained weights."""
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
        for p in precisions:                          # copies made and kernels warmed before timing: a node
            predict_encoder(model, feats[0], t.pad_token_id, cfg.eval_batch_size, keys, precision=p)  # pays them once
        seconds = {p: 0.0 for p in precisions}
        for p in abba(list(precisions)):
            t0 = time.perf_counter()
            for f in feats:
                predict_encoder(model, f, t.pad_token_id, cfg.eval_batch_size, keys, precision=p)
            seconds[p] += time.perf_counter() - t0
        print(f"  {cfg.model} {target} model time: " + ", ".join(f"{p} {seconds[p] / 2:.1f} s" for p in precisions)
              + f" (load {load_average()})", flush=True)
        n = sum(len(d) for d in evals.values())
        rows += [{"target": target, "model": cfg.model, "precision": p, "examples": n,
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
    """The evaluation precisions this machine runs: fp32 and int8 everywhere, bf16 where native."""
    return ("fp32", "bf16", "int8") if native_bf16()[0] else ("fp32", "int8")


def build_bf16(run: BenchRun) -> list[Section]:
    """Section 6 (bf16 training), or the section saying why it was skipped."""
    cfg, work, cmd, out = run.cfg, run.work, run.cmd, run.out
    title = f"6. bf16 training ({cfg.model}, XNLI-en; fixed node {cfg.fixed_model})"
    target = f"≥ {BF16_TRAIN_SPEEDUP_TARGET:g}× fp32 tokens/s; fixed node within seed noise"
    ok, why = native_bf16()
    if not ok:
        return [Section(title, cmd, [("native bf16", "no")], target, "skipped", f"Skipped: {why}.")]
    train, _, texts = train_data(cfg)
    r = bf16_training(cfg, train, texts, work)
    r["table"].to_csv(out / "bf16_training.csv", index=False)
    node = r["node"]
    node.to_csv(out / "bf16_fixed_node.csv", index=False)
    langs = list(cfg.eval_langs)
    acc = node.set_index(["precision", "seed"])[langs]
    d_bf16 = (acc.loc[("bf16", 0)] - acc.loc[("fp32", 0)]).abs()
    d_seed = (acc.loc[("fp32", 1)] - acc.loc[("fp32", 0)]).abs()
    speed = r["pooled"]["bf16"] / r["pooled"]["fp32"]
    within = bool(d_bf16.mean() <= d_seed.mean())
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
            ("bf16 difference within seed noise (mean over languages)", "yes" if within else "no"),
            ("load average before / after the timed pair", f"{r['load'][0]} → {r['load'][1]}")]
    notes = (f"Order fp32, bf16, bf16, fp32 (A B B A), each `train_phase` on the same {cfg.steps * cfg.batch_size} "
             f"{TARGET}-en pairs, {cfg.steps} steps of {cfg.batch_size}; bf16 = `TrainingArguments(bf16=True)`: "
             "torch autocast, matmuls in bf16, weights, optimizer state and reductions in fp32. Fixed node: "
             f"{cfg.fixed_model} XNLI baseline, {cfg.fixed_train_n} training pairs × {cfg.fixed_epochs:g} epoch, "
             f"batch 16, lr from models.py, {cfg.fixed_eval_n} dev pairs per language, trained at fp32 (seeds 0, 1) "
             f"and bf16 (seed 0), evaluated at fp32; accuracy in points. "
             + ("" if within else "The bf16 difference is larger than this one seed-to-seed difference. "))
    if not within and status == "met":
        status = "met (speed); scores: see note"
    return [Section(title, cmd, rows, target, status, notes, node, "Fixed node, accuracy per language:")]


def build_evalprec(run: BenchRun) -> list[Section]:
    """Section 7: agreement and speed of each evaluation precision on trained small nodes."""
    cfg, work, cmd, out = run.cfg, run.work, run.cmd, run.out
    precisions = eval_precisions_here()
    r = eval_precisions(cfg, work, precisions)
    r["speed"].to_csv(out / "eval_precision_speed.csv", index=False)
    r["agreement"].to_csv(out / "eval_precision_agreement.csv", index=False)
    ag, sp = r["agreement"], r["speed"]
    rows, ok = [], []
    for p in precisions[1:]:
        x = ag[(ag["precision"] == p) & (ag["target"] == "xnli")]
        q = ag[(ag["precision"] == p) & (ag["target"] == "mlqa")]
        sx = float(sp[(sp["precision"] == p) & (sp["target"] == "xnli")]["speedup_vs_fp32"].iloc[0])
        sq = float(sp[(sp["precision"] == p) & (sp["target"] == "mlqa")]["speedup_vs_fp32"].iloc[0])
        agree = float((x["agreement"] * x["n"]).sum() / x["n"].sum())
        dmax = float(q["delta_vs_fp32"].abs().max())
        good = agree >= XNLI_AGREEMENT_TARGET and dmax <= MLQA_F1_DELTA_TARGET and min(sx, sq) >= EVAL_PRECISION_SPEEDUP_TARGET
        ok.append(good)
        rows += [(f"{p}: XNLI prediction agreement with fp32", _fmt(agree, "", 4)),
                 (f"{p}: MLQA max |ΔF1| per language", _fmt(dmax, " points")),
                 (f"{p}: speed-up over fp32 (sorted, {cfg.model} model time), XNLI / MLQA", f"{_fmt(sx, '×')} / {_fmt(sq, '×')}"),
                 (f"{p}: meets all three", "yes" if good else "no")]
    status = "met" if any(ok) else "not met"
    chosen = [p for p, g in zip(precisions[1:], ok) if g]
    target = (f"≥ {EVAL_PRECISION_SPEEDUP_TARGET:g}× over fp32, XNLI agreement ≥ {XNLI_AGREEMENT_TARGET:.0%}, "
              f"MLQA |ΔF1| ≤ {MLQA_F1_DELTA_TARGET:g} per language")
    notes = (f"Agreement: {cfg.fixed_model} baselines trained at fp32 in this run (XNLI: {cfg.fixed_train_n} pairs; "
             f"MLQA: {cfg.qa_train_n} questions, 1 epoch), evaluated by the pipeline's `evaluate` on "
             f"{cfg.fixed_eval_n} XNLI pairs / {cfg.qa_eval_n} MLQA questions per language ({', '.join(cfg.eval_langs)}) "
             f"at each `eval_precision`. Speed: `predict_encoder` as in section 3 (today's sorted fp32 evaluation), "
             f"{cfg.model} with a fresh head on {cfg.eval_n} XNLI pairs and the windows of {cfg.speed_qa_n} MLQA "
             f"questions per language, order {' '.join(abba(list(precisions)))}, each side the mean of its two runs "
             "(eval_precision_speed.csv). bf16 = linear layers cast to bf16 once, run under autocast "
             "(softmax/LayerNorm fp32); int8 = `torch.ao.quantization.quantize_dynamic` of every `nn.Linear`. "
             + (f"Passing precision(s): {', '.join(chosen)}; fp32 stays the default, a profile opts in with "
                "`eval_precision`." if chosen else "No precision passes all three here."))
    table = ag.assign(delta_vs_fp32=ag["delta_vs_fp32"].round(2), agreement=ag["agreement"].round(4))
    return [Section("7. Evaluation precision (agreement and speed against fp32)", cmd, rows, target, status, notes,
                    table, "Per language (score on 0..100; agreement = share of predictions equal to fp32's):")]


def build_evalcost(run: BenchRun) -> list[Section]:
    """Section 8: seconds per node to evaluate full XNLI dev and MLQA same-language dev, per model and precision."""
    cfg, cmd, out = run.cfg, run.cmd, run.out
    precisions = eval_precisions_here()
    df = full_eval_cost(cfg, precisions)
    df.to_csv(out / "full_eval_cost.csv", index=False)
    sizes = full_eval_sizes()
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
    return [Section("8. Cost of full evaluation sets (seconds per node)", cmd, rows, "measured (no target)", "measured",
                    notes, df, "Per model, target and precision (full_set_s_extrapolated = copy_s + s_per_example × full_examples):")]


# ------------------------------------------------------------------ item 1 levers (fp32)
def build_levers(run: BenchRun) -> list[Section]:
    """Section 2b: what each fp32 lever does to ``train_phase``'s tokens/s on the same examples:
    fewer, fuller batches (``cfg.lever_batch_size``), foreach instead of fused AdamW (transformers'
    default on torch >= 2.8 is fused), and ``torch.compile`` (one run; its compile time is reported)."""
    from transformers import TrainerCallback
    cfg, work, cmd, out = run.cfg, run.work, run.cmd, run.out
    train, _, texts = train_data(cfg)
    sides = {"baseline (batch {}, fused AdamW)".format(cfg.batch_size): {},
             f"batch {cfg.lever_batch_size} (same examples, fewer steps)": {"batch_size": cfg.lever_batch_size},
             "foreach AdamW": {"trainer_args": {"optim": "adamw_torch"}}}
    names = list(sides)
    runs: dict[str, list[dict]] = {n: [] for n in names}
    load_a = load_average()
    for n in abba(names):
        r = ours_train(cfg, train, texts, work, **sides[n]).stats
        runs[n].append(r)
        print(f"  lever {n}: {r['tokens_per_s']:.0f} tokens/s (load {load_average()})", flush=True)
    load_b = load_average()
    pooled = {n: sum(r["train_tokens"] for r in rs) / sum(r["train_wall_s"] for r in rs) for n, rs in runs.items()}
    base = pooled[names[0]]
    table = pd.DataFrame([{"lever": n, "run": i, "steps": r["steps"], "train_wall_s": r["train_wall_s"],
                           "train_tokens": r["train_tokens"], "tokens_per_s": r["tokens_per_s"]}
                          for n in names for i, r in enumerate(runs[n])])
    rows = [(f"{n}: tokens/s (× baseline)", f"{_fmt(pooled[n])} ({_fmt(pooled[n] / base, '×')})") for n in names]
    if cfg.lever_compile:
        stamps: list[float] = []

        class Steps(TrainerCallback):
            def on_step_end(self, *a, **k):
                stamps.append(time.perf_counter())

        t0 = time.perf_counter()
        r = ours_train(cfg, train, texts, work, trainer_args={"torch_compile": True}, callbacks=[Steps()]).stats
        gaps = np.diff(stamps)
        steady = float(np.median(gaps[len(gaps) // 2:])) if len(gaps) >= 2 else float("nan")
        base_step = float(np.mean([x["train_wall_s"] / x["steps"] for x in runs[names[0]]]))
        rows += [("torch.compile (inductor): wall of the run, compile included", _fmt(r["train_wall_s"], " s")),
                 ("torch.compile: first two steps (compiling: static shapes, then dynamic)",
                  _fmt(stamps[1] - t0 if len(stamps) > 1 else float("nan"), " s")),
                 ("torch.compile: median later step / baseline mean step",
                  f"{_fmt(steady, ' s')} / {_fmt(base_step, ' s')}")]
        table = pd.concat([table, pd.DataFrame([{"lever": "torch.compile", "run": 0, "steps": r["steps"],
                                                 "train_wall_s": r["train_wall_s"], "train_tokens": r["train_tokens"],
                                                 "tokens_per_s": r["tokens_per_s"]}])], ignore_index=True)
    rows.append(("load average before / after", f"{load_a} → {load_b}"))
    table.to_csv(out / "levers.csv", index=False)
    notes = (f"Each side trains {cfg.model} on the same {cfg.steps * cfg.batch_size} XNLI-en pairs (one epoch), fp32, "
             f"order {' '.join(abba(['A', 'B', 'C']))} over the three sides; tokens/s = all tokens / all wall. A bigger "
             "batch is a different optimisation (fewer steps), so it is a profile's `batch_size` choice, hashed "
             "into run ids, not a free speed-up. `torch.compile` recompiles once the sequence length changes "
             "(dynamic shapes), so a node pays two compilations.")
    return [Section("2b. Training levers (fp32)", cmd, rows, "measured (which levers pay)", "measured", notes, table,
                    "Per run:")]
