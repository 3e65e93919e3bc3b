"""The two phase nodes of the grid, as functions of their (papermill) parameters.

``run_intermediate`` = phase 1 (English intermediate task, dev score recorded for
task difficulty, body checkpoint for phase 2). ``run_target`` = phase 2 (English
target task from the phase-1 body or the pretrained model) + zero-shot
evaluation in every requested language. Both write their results atomically
into ``out_dir`` and return them, so a notebook can show what a reader wants.

Data samples use a fixed data seed (0): every run of a grid sees the same
training and evaluation examples, so seeds vary only the training run and
differences between runs are paired example by example.
"""
from __future__ import annotations

import gzip
import json
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from datasets import Dataset

from . import featurize
from .data import assert_disjoint, load_task, text_keys
from .evaluate import evaluate
from .files import write_json_atomic as write_json
from .machine import cpu_model_name
from .manifest import verify_node_inputs
from .metrics import null_log_prior
from .tasks import NONE_TASK, TaskSpec, get_task
from .train import TrainConfig, peak_rss_mb, save_body, train_phase

DATA_SEED = 0


def device_description() -> str:
    """What trained this node, recorded in every node's metrics.json (and, per model, in
    results/meta.json and the book): ``GPU: <torch.cuda.get_device_name()>`` or ``CPU: <model>, N threads``."""
    if torch.cuda.is_available():
        return f"GPU: {torch.cuda.get_device_name(0)}"
    return f"CPU: {cpu_model_name()}, {torch.get_num_threads()} threads"


def _eval_langs(task_name: str, eval_langs: Any) -> list[str]:
    spec = get_task(task_name)
    if eval_langs in (None, "all"):
        return list(spec.langs_for("dev"))
    langs = [eval_langs] if isinstance(eval_langs, str) else list(eval_langs)
    bad = [l for l in langs if l not in spec.langs_for("dev")]
    if bad:
        raise ValueError(f"eval_langs {bad} not in {task_name} dev languages {spec.langs_for('dev')}")
    return langs


def _write_rows(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    with gzip.open(tmp, "wt", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    tmp.replace(path)


def drop_overlap(train, dev):
    """(dev without the items whose text also occurs in train, how many were removed).

    Only for an intermediate task's *own* dev score (e.g. UD-POS train and dev share 91 short
    sentences such as "Why ?"); the count is recorded in metrics.json. Zero-shot target
    evaluation never does this: there any overlap is an error (``assert_disjoint``)."""
    seen = set(text_keys(train))
    keep = [i for i, t in enumerate(text_keys(dev)) if t not in seen]
    return (dev if len(keep) == len(dev) else dev.select(keep)), len(dev) - len(keep)


def run_intermediate(*, model: str, task: str, seed: int, out_dir: str, train_n: int | None = None,
                     dev_n: int | None = None, **hparams: Any) -> dict[str, Any]:
    """Phase 1: train ``model`` on the English intermediate ``task``; save the body; score English dev."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    cfg = TrainConfig.from_params({**hparams, "seed": seed})
    data_files = verify_node_inputs("intermediate", {"task": task})
    train = load_task(task, "train", "en", n=train_n, seed=DATA_SEED)
    dev = load_task(task, "dev", "en", n=dev_n, seed=DATA_SEED)
    spec = get_task(task)
    dev, n_overlap = drop_overlap(train, dev)
    texts = featurize.texts_of(spec, train) + featurize.texts_of(spec, dev)
    res = train_phase(model, task, train, cfg, out, init_from=None, vocab_texts=texts)
    null_logp = null_prior(spec, train, dev)
    t0 = time.perf_counter()
    rows, scores = evaluate(res, dev, "en", cfg, null_logp)
    eval_wall = time.perf_counter() - t0
    pvi = [r["pvi"] for r in rows if "pvi" in r]
    save_body(res.model, out / "checkpoint", res.vocab_map)
    _write_rows(out / "predictions.jsonl.gz", rows)
    main_metric = next(iter(scores))
    metrics = {"phase": "intermediate", "model": model, "family": res.spec.family, "task": task, "seed": seed,
               "dev": scores, "metric": main_metric, "chance": 100.0 * (spec.chance or 0.0),
               "n_dev": len(dev), "dev_overlap_removed": n_overlap, "train": res.stats, "eval_wall_s": eval_wall, "peak_rss_mb": peak_rss_mb(),
               "device": device_description(), "config": vars(cfg), "log_history": res.log_history,
               "data_files": data_files,       # local files verified against the data manifest
               # V-usable information of the dev set (Ethayarajh et al. 2022), bits; None where not cheap
               "v_information_bits": float(np.mean(pvi)) if pvi else None,
               "v_information_null": "training-label prior, add-one (metrics.null_log_prior)" if pvi else None}
    write_json(out / "metrics.json", metrics)
    return metrics


def null_prior(spec: TaskSpec, train: Dataset, dev: Dataset) -> np.ndarray | None:
    """The null model's log-probability per label for V-usable information: the training-label
    prior over classes, answer positions (multiple choice) or word tags; None for extractive QA."""
    if spec.kind == "classification":
        return null_log_prior(train["label"][:], len(spec.labels))
    if spec.kind == "multiple-choice":
        n = max(len(c) for c in list(train["choices"][:]) + list(dev["choices"][:]))
        return null_log_prior(train["label"][:], n)
    if spec.kind == "token-tagging":
        return null_log_prior([t for tags in train["tags"][:] for t in tags], len(spec.labels))
    return None


def run_target(*, model: str, target: str, intermediate: str, seed: int, out_dir: str, init_from: str = "",
               train_n: int | None = None, eval_n: int | None = None, eval_langs: Any = "all",
               load: Callable[..., Dataset] = load_task, **hparams: Any) -> dict[str, Any]:
    """Phase 2: train the English ``target`` task (from the phase-1 body when ``init_from``), then
    evaluate zero-shot in every language of ``eval_langs``. ``load`` reads the data (``load_task``'s
    signature); only ``xlt bench``'s scaling sweep passes another (one that repeats a training set)."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if intermediate != NONE_TASK and not init_from:
        raise ValueError(f"intermediate={intermediate!r} needs init_from (the phase-1 checkpoint dir); "
                         f"use intermediate='none' for the no-intermediate baseline")
    cfg = TrainConfig.from_params({**hparams, "seed": seed})
    spec = get_task(target)
    langs = _eval_langs(target, eval_langs)
    data_files = verify_node_inputs("target", {"target": target, "eval_langs": langs})
    train = load(target, "train", "en", n=train_n, seed=DATA_SEED)
    evals = {l: load(target, "dev", l, n=eval_n, seed=DATA_SEED) for l in langs}
    assert_disjoint(train, list(evals.values()), task=target)
    texts = featurize.texts_of(spec, train) + [t for d in evals.values() for t in featurize.texts_of(spec, d)]
    res = train_phase(model, target, train, cfg, out, init_from=init_from or None, vocab_texts=texts)
    rows, scores, t0 = [], {}, time.perf_counter()
    for lang, ds in evals.items():
        r, s = evaluate(res, ds, lang, cfg)
        rows += r
        scores[lang] = {**s, "n": len(ds)}
    eval_wall = time.perf_counter() - t0
    _write_rows(out / "predictions.jsonl.gz", rows)
    metrics = {"phase": "target", "model": model, "family": res.spec.family, "stands_for": res.spec.stands_for,
               "target": target, "intermediate": intermediate, "seed": seed, "scores": scores,
               "train": res.stats, "eval_wall_s": eval_wall, "eval_examples": sum(len(d) for d in evals.values()),
               "peak_rss_mb": peak_rss_mb(), "device": device_description(), "config": vars(cfg),
               "log_history": res.log_history, "data_files": data_files}
    write_json(out / "metrics.json", metrics)
    return metrics
