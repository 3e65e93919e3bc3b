#!/usr/bin/env bash
# The `gpu` profile (configs/gpu.yml) on one H100/H200-class GPU: e5 ladders, full English training data,
# full XNLI/MLQA dev sets, 3 seeds, 90 nodes. Target: within 10 minutes. NOT YET MEASURED on a GPU: the
# time in configs/gpu.yml is an estimate; this script prints the measured wall time at the end.
#
# Needs: a .venv made by `make setup` with a CUDA build of torch (same major.minor as pyproject.toml's
# pin, so run ids stay the ones `xlt status --profile gpu` shows), and the benchmark data
# (XLT_DATA_DIR, default ../shared/data). Nothing is downloaded: the e5 model is the offline one.
#
# Results: every finished node is exported to results/gpu/ (nodes, scores.csv, meta.json); each node's
# metrics.json and meta.json's devices_by_model name the GPU (torch.cuda.get_device_name). The committed
# cpu study in results/ is not touched. Book from them: .venv/bin/xlt book --results results/gpu
#
# Usage: scripts/run_gpu_profile.sh            (WORKERS=12 nodes at once; RESULTS=results/gpu)
set -euo pipefail
cd "$(dirname "$0")/.."
export XLT_DATA_DIR="${XLT_DATA_DIR:-$(cd .. && pwd)/shared/data}"
export HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1 TOKENIZERS_PARALLELISM=false
WORKERS="${WORKERS:-12}"
RESULTS="${RESULTS:-results/gpu}"
PY=.venv/bin/python
XLT=.venv/bin/xlt
[ -x "$XLT" ] || { echo "no .venv/bin/xlt: run 'make setup' first (with a CUDA build of torch)" >&2; exit 2; }

GPU_GIB=$("$PY" - <<'PY'
import sys
import torch
if not torch.cuda.is_available():
    sys.exit(f"torch {torch.__version__} sees no CUDA GPU: install a CUDA build of torch into .venv "
             "(same major.minor) or run on a GPU machine")
p = torch.cuda.get_device_properties(0)
print(f"{p.total_memory / 2**30:.0f}")
print(f"GPU: {p.name}, {p.total_memory / 2**30:.0f} GiB", file=sys.stderr)
PY
)
"$XLT" plan --profile gpu --gpu-mem "$GPU_GIB"
start=$(date +%s)
"$XLT" run --profile gpu --workers "$WORKERS" --set export_results=true --results-dir "$RESULTS"
end=$(date +%s)
"$XLT" status --profile gpu
echo "gpu profile: $((end - start)) s wall on $("$PY" -c 'import torch; print(torch.cuda.get_device_name(0))') with $WORKERS workers; results in $RESULTS"
