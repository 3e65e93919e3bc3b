"""Scratch: measure training levers side by side (not committed)."""
import sys, time, json, os
import torch
from xlt_helpers import bench, bench_measure, train as T
cfgb = bench.FULL
model = sys.argv[1] if len(sys.argv) > 1 else "e5-L12"
variants = sys.argv[2].split(",") if len(sys.argv) > 2 else ["base", "bf16", "base", "bf16"]
steps = int(os.environ.get("STEPS", 10))
train, evals, texts = bench_measure.train_data(bench.BenchConfig(name="x", model=model, steps=steps * 4))
Orig = T.TrainingArguments
def run(v):
    extra = {}
    bs = 16
    n = steps * bs
    if v == "bf16": extra["bf16"] = True
    if v == "compile": extra["torch_compile"] = True
    if v == "foreach": extra["optim"] = "adamw_torch"
    if v.startswith("bs"): bs = int(v[2:]); 
    if v == "nolog": extra["logging_steps"] = 10**6
    def TA(*a, **k):
        k.update(extra); return Orig(*a, **k)
    T.TrainingArguments = TA
    tc = T.TrainConfig(max_steps=-1, epochs=1, batch_size=bs, max_length=128, seed=0)
    sub = train.select(range(steps * 16))
    t0 = time.perf_counter()
    r = T.train_phase(model, "xnli", sub, tc, "/tmp/i15a/out", vocab_texts=texts)
    T.TrainingArguments = Orig
    print(json.dumps({"v": v, "tok/s": round(r.stats["tokens_per_s"]), "wall": round(r.stats["train_wall_s"], 2),
                      "steps": r.stats["steps"], "total": round(time.perf_counter() - t0, 1), "load": os.getloadavg()[0]}), flush=True)
print("matmul fp32 GF", bench_measure.matmul_flops(2048) / 1e9)
for v in variants:
    run(v)
print("matmul fp32 GF", bench_measure.matmul_flops(2048) / 1e9)
