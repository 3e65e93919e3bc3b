"""The per-run report's reading of node folders: baseline matching and per-language deltas."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from xlt_helpers import figures, report


def node(root: Path, name: str, *, intermediate: str = "sst2", seed: int = 0, lr: float = 2e-4,
         scores: dict | None = None, phase: str = "target", done: bool = True) -> Path:
    """A minimal finished node folder as the pipeline writes it (metrics.json; DONE.json from the grid)."""
    d = root / name
    d.mkdir(parents=True)
    scores = scores or {"en": {"accuracy": 50.0, "n": 10}, "de": {"accuracy": 40.0, "n": 10}}
    m = {"phase": phase, "model": "e5-L3", "target": "xnli", "intermediate": intermediate, "seed": seed,
         "config": {"learning_rate": lr, "epochs": 2}, "train": {"train_examples": 100}, "scores": scores,
         "log_history": [{"step": 1, "loss": 1.1}], "device": "cpu"}
    (d / "metrics.json").write_text(json.dumps(m))
    if done:
        (d / "DONE.json").write_text(json.dumps({"wall_s": 12.5}))
    return d


def test_baseline_is_matched_on_settings_not_names(tmp_path):
    run = node(tmp_path, "a-run", scores={"en": {"accuracy": 55.0, "n": 10}, "de": {"accuracy": 38.0, "n": 10}})
    node(tmp_path, "b-other-seed", intermediate="none", seed=1)
    node(tmp_path, "c-other-lr", intermediate="none", lr=1e-5)
    node(tmp_path, "d-other-task", intermediate="udpos")
    assert report.find_baseline(run) is None                     # nothing comparable yet
    base = node(tmp_path, "zz-baseline", intermediate="none")
    assert report.find_baseline(run) == base
    assert report.find_baseline(base) is None                    # a baseline has no baseline
    table = report.language_table(report.load_node(run), report.load_node(base))
    assert list(table["lang"]) == ["en", "de"]
    assert table["delta"].tolist() == pytest.approx([5.0, -2.0])
    fig = figures.delta_bars(table)
    assert list(fig.data[0].y) == pytest.approx([5.0, -2.0])
    assert fig.data[0].marker.color == ("#2ca02c", "#d62728")   # helped / hurt


def test_load_node_names_the_folder_and_reads_wall_time(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a finished node.*xlt status"):
        report.load_node(tmp_path / "missing")
    d = node(tmp_path, "x")
    m = report.load_node(d)
    assert m["wall_s"] == 12.5 and m["params"] == {}
    assert report.node_summary(m)["node wall s"] == 12.5
    assert "baseline" not in report.language_table(m).columns
