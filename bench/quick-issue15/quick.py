"""Quick measurement of bench sections 6-8 with a reduced config (shared, loaded machine)."""
import sys
from dataclasses import replace
from xlt_helpers import bench
sections = tuple(sys.argv[2].split(","))
cfg = replace(bench.FULL, name="quick (issue 15 helper, reduced sizes)", model="e5-L3", steps=6,
              fixed_train_n=400, fixed_eval_n=100, qa_train_n=200, qa_eval_n=40,
              cost_n=16, cost_langs=("en", "zh"), lever_compile=False, eval_n=64, speed_qa_n=16)
bench.FULL = cfg
print(bench.run_bench(out_dir=sys.argv[1], sections=sections))
