"""One node's execution: atomic writes, markers, the runs lock, and a real papermill run of a fixture."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from xlt_helpers import runs as R
from xlt_helpers.grid import Node

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"


def test_write_json_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    R.write_json_atomic(path, {"a": 1})
    R.write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    R.write_bytes_atomic(tmp_path / "w.bin", b"\x00\x01")
    assert (tmp_path / "w.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["metrics.json", "sub", "w.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "DONE.json"
    R.write_json_atomic(path, {"old": True})

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(R.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        R.write_json_atomic(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["DONE.json"]     # the temp file was removed


def test_runs_dir_resolution(tmp_path, monkeypatch):
    monkeypatch.delenv(R.RUNS_ENV, raising=False)
    assert R.runs_dir() == R.repo_root() / "runs"
    monkeypatch.setenv(R.RUNS_ENV, str(tmp_path / "env"))
    assert R.runs_dir() == tmp_path / "env"
    assert R.runs_dir(tmp_path / "explicit") == tmp_path / "explicit"


def test_states_only_done_json_counts(tmp_path):
    d = tmp_path / "n1"
    d.mkdir()
    (d / "metrics.json").write_text("{}")            # half-run: metrics but no DONE.json
    assert R.node_state(tmp_path, "n1") == "pending"
    R.write_json_atomic(d / R.FAILED_FILE, {"error": "ValueError: bad\nmore"})
    assert R.node_state(tmp_path, "n1") == "failed"
    assert R.first_error_line(tmp_path, "n1") == "ValueError: bad"
    R.write_json_atomic(d / R.DONE_FILE, {})
    assert R.node_state(tmp_path, "n1") == "done"
    assert R.node_state(tmp_path, "missing") == "pending"


def test_prepare_clears_leftovers_and_params_point_at_dependency(tmp_path):
    node = Node("p2-x", "target", "/nb/02_target.ipynb", {"model": "m", "seed": 0}, ["p1-x"])
    (tmp_path / "p2-x").mkdir()
    (tmp_path / "p2-x" / "metrics.json").write_text("stale")
    d = R.prepare_node_dir(node, tmp_path)
    assert sorted(p.name for p in d.iterdir()) == [R.NODE_FILE]
    assert Node.from_json(json.loads((d / R.NODE_FILE).read_text())) == node
    params = R.notebook_parameters(node, tmp_path)
    assert params["init_from"] == str(tmp_path / "p1-x" / "checkpoint")
    assert params["out_dir"] == str(d) and params["model"] == "m"
    base = Node("p2-y", "target", "/nb/02_target.ipynb", {}, [])
    assert R.notebook_parameters(base, tmp_path)["init_from"] == ""


def test_lock_is_exclusive_and_names_the_holder(tmp_path):
    with R.runs_lock(tmp_path) as path:
        assert R.lock_holder(tmp_path) == str(os.getpid())
        with pytest.raises(R.RunsLocked) as e:
            with R.runs_lock(tmp_path):
                pass
        assert str(path) in str(e.value) and f"PID {os.getpid()}" in str(e.value)
        # another process is refused too
        code = (f"from xlt_helpers.runs import runs_lock\n"
                f"with runs_lock({str(tmp_path)!r}): pass")
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert out.returncode != 0 and "RunsLocked" in out.stderr
    assert R.lock_holder(tmp_path) is None
    with R.runs_lock(tmp_path):                      # free again after release
        pass


def test_runner_death_becomes_failed(tmp_path):
    node = Node("p1-dead", "intermediate", "/nb/01.ipynb", {}, [])
    d = R.prepare_node_dir(node, tmp_path)
    (d / R.LOG_FILE).write_text("line 1\nKilled\n")
    assert R.finish_node(node, tmp_path, -9) == "failed"
    failed = json.loads((d / R.FAILED_FILE).read_text())
    assert "signal 9" in failed["error"] and "Killed" in failed["log_tail"]


def _fixture_node(tmp_path: Path, task: str) -> Node:
    params = {"model": "tiny-xlmr", "task": task, "seed": 3, "trim_vocab": False, "train_n": 8, "dev_n": 8,
              "epochs": 1, "max_steps": 1, "batch_size": 2, "learning_rate": 1e-3, "max_length": 32,
              "warmup_ratio": 0.1}
    return Node(f"p1-{task}", "intermediate", str(FIXTURES / "01_intermediate.ipynb"), params, [])


def test_run_node_success_failure_and_missing_metrics(tmp_path, monkeypatch):
    import nbformat
    silent = tmp_path / "silent.ipynb"          # runs fine but writes no metrics.json
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1")])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, silent)
    monkeypatch.setenv("XLT_FIXTURE_FAIL", "udpos")
    nodes = [_fixture_node(tmp_path, "sst2"), _fixture_node(tmp_path, "udpos"),
             Node("p1-silent", "intermediate", str(silent), {}, [])]
    # concurrently, like the executors: a forked runner (local executor) and a subprocess runner (Ray)
    forked = {n.id: R.fork_node(n, tmp_path) for n in nodes if n.id != "p1-udpos"}
    spawned = R.spawn_node(nodes[1], tmp_path)
    rcs = {"p1-udpos": spawned.wait(timeout=300)}
    for nid, pid in forked.items():
        rcs[nid] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])
    assert rcs == {"p1-sst2": 0, "p1-udpos": 1, "p1-silent": 1}
    states = [R.finish_node(n, tmp_path, rcs[n.id]) for n in nodes]
    assert states == ["done", "failed", "failed"]
    silent_failed = json.loads((tmp_path / "p1-silent" / "FAILED.json").read_text())
    assert "without writing" in silent_failed["error"] and "metrics.json" in silent_failed["error"]
    assert not (tmp_path / "p1-silent" / "DONE.json").exists()
    d = tmp_path / "p1-sst2"
    assert {"node.json", "log.txt", "metrics.json", "DONE.json", "01_intermediate.ipynb", "checkpoint"} <= \
        {p.name for p in d.iterdir()}
    done = json.loads((d / "DONE.json").read_text())
    assert {"wall_s", "finished_at", "host"} <= set(done)
    assert json.loads((d / "metrics.json").read_text())["task"] == "sst2"
    failed = json.loads((tmp_path / "p1-udpos" / "FAILED.json").read_text())
    assert failed["error"].startswith("RuntimeError: fixture failure requested for task udpos")
    assert "Traceback" in failed["traceback"] or "RuntimeError" in failed["traceback"]
    assert not (tmp_path / "p1-udpos" / "DONE.json").exists()
    assert not (tmp_path / "p1-udpos" / "metrics.json").exists()
