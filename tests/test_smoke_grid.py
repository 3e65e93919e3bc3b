"""The real smoke grid end to end: `xlt run --profile smoke` through papermill with the real phase
notebooks and tiny random models, then `xlt status` and a second, no-op `xlt run`.

This is what `make smoke` does and what a newcomer runs first; the fixture-notebook tests in
test_executors.py pin the orchestration semantics, this one pins that the real notebooks fit them.
"""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]
XLT = [sys.executable, "-m", "xlt_helpers.cli"]


def test_smoke_profile_runs_every_node_and_resumes_as_noop(tmp_path, shared_data):
    runs = tmp_path / "runs"
    r = subprocess.run([*XLT, "run", "--profile", "smoke", "--workers", "2", "--runs-dir", str(runs)],
                       capture_output=True, text=True, timeout=1200)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    done = sorted(runs.glob("*/DONE.json"))
    assert len(done) == 13, [p.parent.name for p in runs.iterdir()]
    for d in done:
        m = json.loads((d.parent / "metrics.json").read_text())
        assert m["phase"] in ("intermediate", "target")
        assert (d.parent / "predictions.jsonl.gz").exists()
        nb = next(d.parent.glob("0*.ipynb"))
        assert json.loads(nb.read_text())["cells"], "the executed notebook is kept next to the results"
    s = subprocess.run([*XLT, "status", "--profile", "smoke", "--runs-dir", str(runs)], capture_output=True, text=True)
    assert s.returncode == 0 and "13" in s.stdout
    t0 = time.time()
    again = subprocess.run([*XLT, "run", "--profile", "smoke", "--runs-dir", str(runs)], capture_output=True, text=True)
    assert again.returncode == 0 and time.time() - t0 <= 10, again.stdout + again.stderr

    # the grid-analysis notebook pools the smoke grid's nodes as documented in its first cell
    import papermill as pm

    from test_notebooks import NOTEBOOKS, plotly_outputs
    out = tmp_path / "analysis.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "04_analysis.ipynb"), str(out),
                        parameters={"runs_dir": str(runs), "profile": "smoke", "n_boot": 50},
                        progress_bar=False, kernel_name="python3")
    nb = json.loads(out.read_text())
    assert plotly_outputs(nb) >= 8, "heatmap, gain/gap vs size and gain vs difficulty for both targets"
