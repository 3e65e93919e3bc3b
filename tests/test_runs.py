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
    assert {"wall_s", "finished_at", "host", R.RECORDS_KEY} <= set(done)
    # every file the node wrote is recorded (the markers and the log are not results)
    assert set(done[R.RECORDS_KEY]) == {p.relative_to(d).as_posix() for p in d.rglob("*")
                                        if p.is_file() and p.name not in ("DONE.json", "log.txt")}
    assert R.verify_node(d, hashes=True) is None
    assert json.loads((d / "metrics.json").read_text())["task"] == "sst2"
    failed = json.loads((tmp_path / "p1-udpos" / "FAILED.json").read_text())
    assert failed["error"].startswith("RuntimeError: fixture failure requested for task udpos")
    assert "Traceback" in failed["traceback"] or "RuntimeError" in failed["traceback"]
    assert not (tmp_path / "p1-udpos" / "DONE.json").exists()
    assert not (tmp_path / "p1-udpos" / "metrics.json").exists()


# ------------------------------------------------------------------ a finished node is verified, not assumed
def _safetensors(path: Path, n: int = 6) -> bytes:
    """A real safetensors file of one float32 tensor of ``n`` values (8 + header + 4n bytes)."""
    import torch
    from safetensors.torch import save_file
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.arange(n, dtype=torch.float32)}, str(path))
    return path.read_bytes()


def _finished(d: Path, records: bool = True) -> Path:
    """A node folder as the runner leaves it: node.json, metrics.json, predictions, checkpoint, DONE.json
    (with the file records, or a DONE.json of before records existed when ``records`` is False)."""
    import gzip
    d.mkdir(parents=True)
    R.write_json_atomic(d / R.NODE_FILE, {"id": d.name, "phase": "intermediate", "notebook": "01.ipynb",
                                          "params": {}, "deps": []})
    R.write_json_atomic(d / R.METRICS_FILE, {"phase": "intermediate", "dev": {"accuracy": 50.0}})
    (d / R.PREDICTIONS_FILE).write_bytes(gzip.compress(b'{"lang": "en"}\n' * 50))
    _safetensors(d / "checkpoint" / "body.safetensors")
    (d / R.LOG_FILE).write_text("log\n")
    done = {"id": d.name, "wall_s": 1.0}
    if records:
        done[R.RECORDS_KEY] = R.file_records(d)
    R.write_json_atomic(d / R.DONE_FILE, done)
    return d


def test_done_json_records_size_and_sha256_of_every_file_the_node_wrote(tmp_path):
    import hashlib
    d = _finished(tmp_path / "p1-x")
    rec = json.loads((d / R.DONE_FILE).read_text())[R.RECORDS_KEY]
    assert sorted(rec) == ["checkpoint/body.safetensors", "metrics.json", "node.json", "predictions.jsonl.gz"]
    body = (d / "checkpoint" / "body.safetensors").read_bytes()
    assert rec["checkpoint/body.safetensors"] == {"size": len(body), "sha256": hashlib.sha256(body).hexdigest()}
    # 8-byte length + JSON header + 6 float32 values
    n = int.from_bytes(body[:8], "little")
    assert len(body) == 8 + n + 24
    assert R.verify_node(d) is None and R.verify_node(d, hashes=True) is None


@pytest.mark.parametrize("records", [True, False])
def test_verify_names_the_file_and_the_cause(tmp_path, records):
    def fresh(name):
        return _finished(tmp_path / f"{name}-{records}", records=records)

    d = fresh("garbage-done")
    (d / R.DONE_FILE).write_text("not json {")
    assert R.verify_node(d).startswith("DONE.json: not valid JSON (JSONDecodeError")
    d = fresh("no-metrics")
    (d / R.METRICS_FILE).unlink()
    assert R.verify_node(d).startswith("metrics.json: missing")
    d = fresh("cut-checkpoint")
    ckpt = d / "checkpoint" / "body.safetensors"
    whole = ckpt.read_bytes()
    ckpt.write_bytes(whole[:-10])                 # half-written phase-1 checkpoint
    why = R.verify_node(d)
    if records:
        assert why == (f"checkpoint/body.safetensors: {len(whole) - 10} bytes, DONE.json records {len(whole)} "
                       f"(truncated or changed after the node finished)")
    else:   # no record to compare with: the safetensors header says how long the file must be
        assert why == (f"checkpoint/body.safetensors: {len(whole) - 10} bytes but its header describes "
                       f"{len(whole)}: truncated or damaged")
    d = fresh("cut-predictions")
    gz = d / R.PREDICTIONS_FILE
    gz.write_bytes(gz.read_bytes()[:-12])
    if records:
        assert R.verify_node(d).startswith("predictions.jsonl.gz: ")
    else:
        assert R.verify_node(d) is None           # sizes only: nothing to compare with ...
        assert R.verify_node(d, hashes=True).startswith("predictions.jsonl.gz: not a whole gzip file")  # ... reading does
    d = fresh("same-size-edit")
    m = d / R.METRICS_FILE
    m.write_text(m.read_text().replace("50.0", "90.0"))   # same size, other content
    assert R.verify_node(d) is None               # sizes cannot see it
    if records:
        assert R.verify_node(d, hashes=True) == ("metrics.json: sha256 differs from DONE.json's record "
                                                 "(changed after the node finished)")


def test_pruned_checkpoint_and_missing_notebook_are_not_damage(tmp_path):
    d = _finished(tmp_path / "p1-x")
    import shutil
    shutil.rmtree(d / "checkpoint")               # xlt clean --prune-checkpoints / the committed store
    assert R.verify_node(d, hashes=True) is None
    (d / R.NODE_FILE).unlink()
    assert R.verify_node(d) == "node.json: missing (DONE.json records " \
        f"{json.loads((d / R.DONE_FILE).read_text())[R.RECORDS_KEY]['node.json']['size']} bytes)"


def test_move_aside_keeps_the_folder_under_a_bad_name(tmp_path):
    d = _finished(tmp_path / "p1-x")
    moved = R.move_aside(d)
    assert not d.exists() and moved.parent == tmp_path
    assert moved.name.startswith("p1-x.bad-") and (moved / R.METRICS_FILE).is_file()
    again = R.move_aside(_finished(tmp_path / "p1-x"))
    assert again != moved and again.is_dir() and moved.is_dir()


def test_truncated_checkpoint_names_the_file_when_loaded(tmp_path):
    import torch
    from safetensors.torch import save_file

    from xlt_helpers.train import load_body
    body = torch.nn.Linear(2, 2)
    ckpt = tmp_path / "p1-x" / "checkpoint"
    ckpt.mkdir(parents=True)
    save_file({k: v.contiguous() for k, v in body.state_dict().items()}, str(ckpt / "body.safetensors"))
    data = (ckpt / "body.safetensors").read_bytes()
    (ckpt / "body.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(ValueError) as e:
        load_body(body, ckpt)
    assert str(e.value).startswith(f"{ckpt / 'body.safetensors'}: not a readable safetensors checkpoint")
