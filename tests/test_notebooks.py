"""The phase notebooks as users meet them: committed clean, parameterised, and Run-All-able with defaults."""
from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
EXPECTED = ["01_intermediate.ipynb", "02_target.ipynb", "03_report.ipynb", "04_analysis.ipynb"]


def plotly_outputs(nb: dict) -> int:
    return sum("application/vnd.plotly.v1+json" in o.get("data", {})
               for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", []))


def plotly_titles(nb: dict) -> list[str]:
    """The title of every plotly figure a notebook's outputs hold, in order."""
    return [o["data"]["application/vnd.plotly.v1+json"]["layout"]["title"]["text"]
            for c in nb["cells"] if c["cell_type"] == "code" for o in c.get("outputs", [])
            if "application/vnd.plotly.v1+json" in o.get("data", {})]


def test_one_notebook_per_phase_committed_without_outputs():
    assert sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")) == EXPECTED
    for path in NOTEBOOKS.glob("*.ipynb"):
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert all(not c.outputs and c.execution_count is None for c in code), f"{path.name} has outputs"
        assert sum("parameters" in c.metadata.get("tags", []) for c in code) == 1, path.name
        assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# "), path.name


@pytest.mark.slow
@pytest.mark.shared_data
def test_report_notebook_defaults_train_a_tiny_demo_and_find_its_baseline(tmp_path):
    import papermill as pm

    out = tmp_path / "report.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "03_report.ipynb"), str(out), parameters={"demo_dir": str(tmp_path / "demo")},
                        progress_bar=False, kernel_name="python3")
    nb = json.loads(out.read_text())
    text = "".join("".join(o.get("text", "")) for c in nb["cells"] if c["cell_type"] == "code"
                   for o in c.get("outputs", []))
    assert f"baseline: {tmp_path / 'demo' / 'p2-none-xnli'}" in text
    assert plotly_outputs(nb) == 3          # loss curve, per-language bars, change over the baseline


@pytest.mark.parametrize("name", sorted(p.name for p in NOTEBOOKS.glob("*.ipynb")))
def test_papermill_sees_every_parameter(name):
    """`papermill --help-notebook` lists each parameter of every phase notebook: a line papermill cannot
    parse (a second `=` in its comment, as `effective batch = batch_size x k` once was) drops out of the
    help and makes `-p` of it warn "unknown parameter"."""
    import ast

    import papermill as pm

    path = NOTEBOOKS / name
    cell = next(c for c in nbformat.read(path, as_version=4).cells if "parameters" in c.metadata.get("tags", []))
    names = [t.id for node in ast.parse(cell.source).body if isinstance(node, ast.Assign) for t in node.targets]
    assert names and list(pm.inspect_notebook(str(path))) == names
    if name == "04_analysis.ipynb":
        assert names == ["results_dir", "runs_dir", "profile", "n_boot"]


def test_analysis_notebook_on_a_results_folder(tmp_path, synthetic_results):
    import papermill as pm

    results = synthetic_results(tmp_path / "results", n_examples=10, with_runs=False)
    out = tmp_path / "analysis.ipynb"
    pm.execute_notebook(str(NOTEBOOKS / "04_analysis.ipynb"), str(out),
                        parameters={"results_dir": str(results), "n_boot": 50}, progress_bar=False, kernel_name="python3")
    nb = json.loads(out.read_text())
    # every figure of every figure section, each once (the same sections on the same synthetic results)
    from xlt_helpers import analysis
    from xlt_helpers.results import load_results
    expected = analysis.figure_titles(analysis.analyse(load_results(results), n_boot=50))
    assert len(expected) >= 2 * 4 + 2 * 3 and plotly_titles(nb) == expected
