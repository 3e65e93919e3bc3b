"""The package's import graph: what each layer may load (issue 14).

Metric and statistics modules load no torch (the book and the analysis run without it), and the
training code does not import the papermill runner nor the analysis: it writes its files through
:mod:`xlt_helpers.files` and takes its V-information helpers from :mod:`xlt_helpers.metrics`.
"""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "xlt_helpers"


def _package_imports(module: str) -> set[str]:
    """The xlt_helpers modules that ``module``'s source imports (at any level: lazy imports count)."""
    tree = ast.parse((PACKAGE / f"{module}.py").read_text())
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            out |= {node.module} if node.module else {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("xlt_helpers."):
            out.add(node.module.split(".")[1])
    return out


@pytest.mark.parametrize("module", ["pipeline", "train", "evaluate"])
def test_training_code_imports_neither_the_runner_nor_the_analysis(module):
    assert not _package_imports(module) & {"runs", "robustness", "analysis", "book", "executors"}


def test_book_is_imported_only_by_the_cli():
    importers = sorted(p.stem for p in PACKAGE.glob("*.py") if "book" in _package_imports(p.stem))
    assert importers == ["cli"]


def test_metric_and_statistics_modules_load_no_torch():
    code = ("import sys\nimport xlt_helpers.metrics, xlt_helpers.robustness, xlt_helpers.tasks, xlt_helpers.files\n"
            "print(sorted(m for m in ('torch', 'transformers', 'datasets') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


BENCH_MODULES = {"bench", "bench_report", "bench_measure", "bench_speed", "bench_workers"}


@pytest.mark.parametrize("module", ["pipeline", "train", "evaluate"])
def test_training_code_does_not_know_the_bench(module):
    """The bench hands the training code what it measures with (``trainer_cls=``, ``load=``): nothing
    in the training code imports the bench, and nothing is patched in it at runtime."""
    assert not _package_imports(module) & BENCH_MODULES


def test_bench_config_and_report_load_no_torch_nor_the_measurements():
    """``xlt_helpers.bench`` (config, targets, arithmetic) and ``bench_report`` (the page) import no
    torch and none of the measuring modules until the driver runs: they are tested without timing anything."""
    code = ("import sys\nimport xlt_helpers.bench, xlt_helpers.bench_report\n"
            "print(sorted(m for m in ('torch', 'transformers', 'datasets', 'xlt_helpers.bench_measure', "
            "'xlt_helpers.bench_speed', 'xlt_helpers.bench_workers') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"
    for module in BENCH_MODULES - {"bench"}:
        assert "bench" in _package_imports(module), f"{module} takes its config and sections from bench"
