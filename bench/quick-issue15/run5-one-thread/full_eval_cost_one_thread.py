"""Full-set evaluation cost per precision, at one thread (the study's 2 workers x 1 thread)."""
import sys, time
from dataclasses import replace
import pandas as pd
from xlt_helpers import bench, bench_speed
models = tuple(sys.argv[1].split(",")); targets = tuple(sys.argv[2].split(",")); n = int(sys.argv[3])
cfg = replace(bench.FULL, cost_models=models, cost_targets=targets, cost_langs=("en", "zh"), cost_n=n)
t0 = time.time()
df = bench_speed.full_eval_cost(cfg, ("fp32", "bf16"))
pd.set_option("display.width", 250)
df["full_min"] = df["full_set_s_extrapolated"] / 60
df.to_csv(sys.argv[4], index=False)
print(df[["model", "target", "precision", "measured_examples", "measured_s", "s_per_example", "full_min", "speedup_vs_fp32"]].to_string())
print("wall", time.time() - t0)
