"""Shared test setup: offline hub, the ``shared_data`` marker/fixture, and a synthetic results folder.

Tests that read the real benchmark data ask for the ``shared_data`` fixture (the
data folder as a Path) or carry ``@pytest.mark.shared_data``; both skip with the
reason when the folder is absent, so the suite passes on a bare checkout and CI
(which has ``../shared/data``) runs everything.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
import numpy as np
import pandas as pd
import pytest

# The hub is unreachable here: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _shared_data_dir() -> tuple[Path | None, str]:
    from xlt_helpers.paths import DataFileMissing, data_dir

    try:
        return data_dir(), ""
    except DataFileMissing as e:
        return None, f"benchmark data not found ({e})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared_data") is not None:
        found, reason = _shared_data_dir()
        if found is None:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``$XLT_DATA_DIR`` or ``../shared/data``); skips the test if absent."""
    found, reason = _shared_data_dir()
    if found is None:
        pytest.skip(reason)
    return found


# ------------------------------------------------------------------ a SYNTHETIC results/ folder
# Numbers drawn from a seeded random generator with planted effects: it exercises every page, section
# and figure path of the book and the analysis notebook; it is not a study result.
SYNTH_MODELS = {  # registry names (stands_for comes from models.MODELS); sizes are synthetic
    "e5-L3": ("encoder", 40_000_000), "e5-L6": ("encoder", 60_000_000),
    "e5ed-L3": ("encoder-decoder", 70_000_000), "e5ed-L6": ("encoder-decoder", 110_000_000),
}
SYNTH_TASKS = {"none": 0.0, "sst2": 4.0, "udpos": -3.0}      # planted gain (points) per intermediate task
SYNTH_TARGETS = {"xnli": (("accuracy",), ("en", "de", "sw")), "mlqa": (("f1", "em"), ("en", "de"))}


def write_synthetic_results(root: Path, *, n_examples: int = 30, seeds=(0, 1), with_runs: bool = True) -> Path:
    """Write a small, clearly synthetic results/ folder in the study's tidy format; return it."""
    from xlt_helpers.results import per_example_wide

    rng = np.random.default_rng(1234)
    root.mkdir(parents=True, exist_ok=True)
    scores, per_example, inter = [], [], []
    for model, (family, size) in SYNTH_MODELS.items():
        for task, gain in SYNTH_TASKS.items():
            for seed in seeds:
                if task != "none":
                    inter.append({"run_id": f"p1-{model}-{task}-s{seed}", "model": model, "intermediate": task,
                                  "seed": seed, "metric": "accuracy", "score": 60 + 10 * rng.random(),
                                  "chance": 50.0 if task == "sst2" else 100 / 17})
                for target, (metrics, langs) in SYNTH_TARGETS.items():
                    run_id = f"p2-{model}-{task}-{target}-s{seed}"
                    for lang in langs:
                        p = np.clip(0.55 + (gain + (8 if lang == "en" else 0)) / 100 + size / 2e9, 0, 1)
                        correct = rng.random(n_examples) < p
                        for metric in metrics:
                            if metric in ("accuracy", "em"):
                                values = 100.0 * correct
                            else:  # f1: partial credit where not exact
                                values = np.where(correct, 100.0, 100 * rng.random(n_examples) * 0.6)
                            scores.append({"run_id": run_id, "family": family, "model": model, "size": size,
                                           "intermediate": task, "target": target, "seed": seed, "lang": lang,
                                           "metric": metric, "score": float(values.mean()),
                                           "n": n_examples})
                            per_example += [{"run_id": run_id, "lang": lang, "example_id": f"{target}-{lang}-{i:03d}",
                                             "metric": metric, "value": float(v)} for i, v in enumerate(values)]
    pd.DataFrame(scores).to_csv(root / "scores.csv", index=False)
    per_example_wide(pd.DataFrame(per_example)).to_csv(root / "per_example.csv.gz", index=False)
    pd.DataFrame(inter).to_csv(root / "intermediate.csv", index=False)
    (root / "meta.json").write_text(json.dumps({
        "profile": "synthetic-test", "device": "none (synthetic numbers written by tests/conftest.py)",
        "versions": {"xlt_helpers": "test"}, "wall_times_s": {"total": 0.0}}))
    if with_runs:
        (root / "runs").mkdir(exist_ok=True)
        run_id = scores[0]["run_id"]
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_markdown_cell("## Synthetic run notebook (no H1: the book adds a title)"),
                    nbformat.v4.new_code_cell("print('synthetic run')", execution_count=1,
                                              outputs=[nbformat.v4.new_output("stream", text="synthetic run\n")])]
        nbformat.write(nb, root / "runs" / f"{run_id}.ipynb")
    return root


@pytest.fixture(scope="session")
def synthetic_results():
    """:func:`write_synthetic_results` (call it with a folder): a fixture, so test modules need not import
    one another."""
    return write_synthetic_results
