import sys, json, time
from xlt_helpers.pipeline import run_target
prec = sys.argv[1]
t0 = time.time()
m = run_target(model="e5-L6", target="xnli", intermediate="none", seed=0, out_dir=f"/tmp/s8/node-{prec}",
               train_n=4000, eval_n=200, eval_langs="all", epochs=2, batch_size=16, max_length=128,
               warmup_ratio=0.1, learning_rate=None, precision=prec)
print(json.dumps({k: m[k] for k in ("scores",) if k in m})[:2000])
print("wall", time.time() - t0)
