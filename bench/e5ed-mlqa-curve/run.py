"""Learning curve of the encoder-decoder's text-to-text MLQA (issue 16, item 4): e5ed-L6, no intermediate
task, English MLQA training (the study's MLQA training split) at growing sizes, 1 epoch, bf16 as the study
trains; English F1/EM on 100 dev questions, the training loss curve, and the first generated answers.

Run (one thread, beside the study), from the repository root:
  OMP_NUM_THREADS=1 XLT_DATA_DIR=../shared/data HF_HUB_OFFLINE=1 .venv/bin/python bench/e5ed-mlqa-curve/run.py [N ...]
Writes bench/e5ed-mlqa-curve/curve.json after each size, so a stopped run keeps what it measured.
"""
from __future__ import annotations

import gzip
import json
import sys
import tempfile
import time
from pathlib import Path

from xlt_helpers.machine import cpu_model_name, native_bf16
from xlt_helpers.pipeline import run_target

HERE = Path(__file__).resolve().parent
SIZES = [int(a) for a in sys.argv[1:]] or [1000, 4000]
STUDY = dict(epochs=1, batch_size=16, max_length=256, doc_stride=128, warmup_ratio=0.1, precision="bf16",
             eval_precision="bf16", trim_vocab=True)     # configs/cpu.yml's target.mlqa settings

out_file = HERE / "curve.json"
curve = json.loads(out_file.read_text()) if out_file.is_file() else {"cpu": cpu_model_name(),
                                                                    "native_bf16": native_bf16()[0], "points": []}
for n in SIZES:
    if any(p["train_n"] == n for p in curve["points"]):
        print(f"train_n={n}: already measured, skipped", flush=True)
        continue
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        m = run_target(model="e5ed-L6", target="mlqa", intermediate="none", seed=0, out_dir=tmp, train_n=n,
                       eval_n=100, eval_langs=["en"], **STUDY)
        wall = time.perf_counter() - t0
        with gzip.open(Path(tmp) / "predictions.jsonl.gz", "rt") as f:
            preds = [json.loads(line) for line in f][:10]
    losses = [(h["step"], round(h["loss"], 3)) for h in m.get("log_history", []) if "loss" in h]
    point = {"train_n": n, "steps": m["train"]["steps"], "f1_en": m["scores"]["en"]["f1"],
             "em_en": m["scores"]["en"]["em"], "loss_curve": losses, "wall_s": round(wall, 1),
             "train_wall_s": round(m["train"]["train_wall_s"], 1), "device": m["device"], "first_predictions": preds}
    curve["points"].append(point)
    out_file.write_text(json.dumps(curve, indent=1, ensure_ascii=False))
    print(f"train_n={n}: {point['steps']} steps, F1 {point['f1_en']:.1f}, EM {point['em_en']:.1f}, "
          f"loss {losses[0][1] if losses else '?'} -> {losses[-1][1] if losses else '?'}, {wall:.0f} s", flush=True)
