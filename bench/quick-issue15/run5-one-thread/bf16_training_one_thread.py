"""fp32 vs bf16 training tokens/s at the current thread count, A B B A (issue 15 item 2 at 1 thread/node)."""
import sys, time, tempfile
from dataclasses import replace
from pathlib import Path
import torch
from xlt_helpers import bench
from xlt_helpers.bench import abba
from xlt_helpers.bench_measure import ours_train, train_data, load_average
cfg = replace(bench.FULL, model=sys.argv[1], steps=int(sys.argv[2]))
train, _, texts = train_data(cfg)
work = Path(tempfile.mkdtemp())
rate = {"fp32": [], "bf16": []}
for p in abba(["fp32", "bf16"]):
    s = ours_train(cfg, train, texts, work / p, precision=p).stats
    rate[p].append((s["train_tokens"], s["train_wall_s"]))
    print(f"{p}: {s['tokens_per_s']:.0f} tok/s (load {load_average()})", flush=True)
pooled = {p: sum(t for t, _ in v) / sum(w for _, w in v) for p, v in rate.items()}
print(f"{cfg.model} threads {torch.get_num_threads()}: fp32 {pooled['fp32']:.0f}, bf16 {pooled['bf16']:.0f} tok/s, bf16/fp32 {pooled['bf16']/pooled['fp32']:.2f}x")
