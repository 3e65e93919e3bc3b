import time, copy, torch, sys
from xlt_helpers import featurize, backbones
from xlt_helpers.data import load_task
from xlt_helpers.models import get_model
from xlt_helpers.tasks import get_task
from xlt_helpers.train import build_model
from xlt_helpers.evaluate import predict_encoder, inference_model
from xlt_helpers.bench_speed import abba
model = sys.argv[1]
spec, task = get_model(model), get_task("xnli")
tok = backbones.load_tokenizer(spec)
m, tok, _, _ = build_model(spec, task, tokenizer=tok)
m.eval()
feats = [featurize.encode_classification(load_task("xnli", "dev", l, n=96, seed=0), tok, 128) for l in ("en", "de", "zh")]
mb = copy.deepcopy(m)
for mod in mb.modules():
    if isinstance(mod, torch.nn.Linear):
        mod.to(torch.bfloat16)
sides = {"fp32": (m, "fp32"), "bf16-autocast": (m, "bf16"), "bf16-linear-copy": (mb, "bf16"), "int8": (m, "int8")}
inference_model(m, "int8")
t = {k: 0.0 for k in sides}
for k in abba(list(sides)):
    mm, p = sides[k]
    t0 = time.perf_counter()
    for f in feats:
        predict_encoder(mm, f, tok.pad_token_id, 64, precision=p)
    t[k] += time.perf_counter() - t0
print({k: round(t["fp32"] / v, 2) for k, v in t.items()}, {k: round(v, 2) for k, v in t.items()})
