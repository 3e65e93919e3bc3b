"""How fast can this CPU run the GEMMs e5-L12 training actually issues? fp32 GFLOP/s on the model's own
shapes (forward and the two backward products of each linear layer, hidden 384, FFN 1536, T tokens per
batch) beside the 2048^2 matmul the bench calls the peak, interleaved A B B A in one process.

  OMP_NUM_THREADS=<k> .venv/bin/python bench/quick-issue15/run6-shape-ceiling/shapes.py <threads> <T>...
"""
import json
import sys
import time

import torch


def gflops(m: int, k: int, n: int, dtype=torch.float32, min_s: float = 0.4) -> float:
    a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < min_s:
        a @ b
        reps += 1
    return 2 * m * k * n * reps / (time.perf_counter() - t0) / 1e9


threads = int(sys.argv[1])
torch.set_num_threads(threads)
H, F = 384, 1536
out = {"threads": threads, "rows": []}
for T in [int(x) for x in sys.argv[2:]]:
    # (name, m, k, n, how many per layer): forward y = x W; backward dX = dY W^T, dW = X^T dY
    linears = [("qkv", H, 3 * H), ("attn_out", H, H), ("ffn_up", H, F), ("ffn_down", F, H)]
    shapes = []
    for name, k, n in linears:
        shapes += [(f"{name} fwd", T, k, n), (f"{name} dX", T, n, k), (f"{name} dW", k, T, n)]
    peak_a = gflops(2048, 2048, 2048)
    rates = {s[0]: gflops(*s[1:]) for s in shapes}
    rates2 = {s[0]: gflops(*s[1:]) for s in reversed(shapes)}
    peak_b = gflops(2048, 2048, 2048)
    flops = {s[0]: 2 * s[1] * s[2] * s[3] for s in shapes}
    rate = {k: (rates[k] + rates2[k]) / 2 for k in rates}
    # time-weighted: total flops / total time, the ceiling of a step made of exactly these GEMMs
    ceiling = sum(flops.values()) / sum(flops[k] / (rate[k] * 1e9) for k in flops) / 1e9
    peak = max(peak_a, peak_b)
    out["rows"].append({"T": T, "peak_2048": round(peak, 1), "shape_ceiling": round(ceiling, 1),
                        "ceiling_over_peak": round(ceiling / peak, 3),
                        "per_shape": {k: round(v, 1) for k, v in rate.items()}})
    print(f"threads {threads} T {T}: 2048^2 {peak_a:.0f}/{peak_b:.0f} GFLOP/s; model GEMMs {ceiling:.0f} GFLOP/s "
          f"= {ceiling / peak:.2f} of peak", flush=True)
print(json.dumps(out))
