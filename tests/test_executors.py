"""The scheduler end to end with the fixture notebooks: local processes and Ray, failures, progress."""
from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from xlt_helpers.cli import main as xlt
from xlt_helpers.cli import node_states
from xlt_helpers.executors import ProgressReporter, run_grid
from xlt_helpers.grid import build_grid
from xlt_helpers.profiles import load_profile
from xlt_helpers.runs import node_state

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
# the smoke profile's shape (an encoder and an encoder-decoder, intermediate tasks, both targets),
# cut to the fewest nodes that still cover every edge kind
SMALL = ["models=[tiny-xlmr, tiny-mt5]", "intermediate_tasks=[none, sst2]", "seq2seq_intermediate_tasks=[none]",
         "targets=[xnli]", "seeds=[0]", "target.xnli.eval_langs=[en, de]"]


def grid(*overrides: str):
    profile = load_profile("smoke", [*SMALL, *overrides])
    return profile, build_grid(profile, FIXTURES)


def metrics(runs: Path, node_id: str) -> dict:
    return json.loads((runs / node_id / "metrics.json").read_text())


def test_local_executor_runs_every_node(tmp_path):
    profile, nodes = grid()
    assert [n.phase for n in nodes] == ["intermediate", "target", "target", "target"]
    out = io.StringIO()
    summary = run_grid(nodes, tmp_path, executor="local", workers=2, resources=profile.resources, stream=out)
    assert summary.ok and sorted(summary.done) == sorted(n.id for n in nodes)
    assert all(node_state(tmp_path, n.id) == "done" for n in nodes)
    # phase 2 really started from its phase-1 checkpoint (the fixture folds it into the fake score)
    with_sst2 = next(n for n in nodes if n.params.get("intermediate") == "sst2")
    ckpt = json.loads((tmp_path / with_sst2.deps[0] / "checkpoint" / "weights.txt").read_text())
    assert ckpt["task"] == "sst2" and ckpt["seed"] == 0
    assert set(metrics(tmp_path, with_sst2.id)["scores"]) == {"en", "de"}
    assert out.getvalue().count("done") == len(nodes)          # one line per finished node (not a TTY)
    # a second run does nothing
    again = run_grid(nodes, tmp_path, executor="local", workers=2)
    assert sorted(again.already_done) == sorted(n.id for n in nodes) and not again.done


def test_failed_node_skips_dependents_and_the_rest_continue(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("XLT_FIXTURE_FAIL", "udpos")
    profile, nodes = grid("intermediate_tasks=[none, sst2, udpos]")
    summary = run_grid(nodes, tmp_path, workers=2, progress=False)
    bad = [n.id for n in nodes if n.params.get("task") == "udpos"]
    skipped = [n.id for n in nodes if n.params.get("intermediate") == "udpos"]
    assert summary.failed == bad and summary.skipped == skipped and not summary.ok
    assert sorted(summary.done) == sorted(n.id for n in nodes if n.id not in bad + skipped)
    failed = json.loads((tmp_path / bad[0] / "FAILED.json").read_text())
    assert "fixture failure requested" in failed["error"] and "RuntimeError" in failed["traceback"]
    assert "log_tail" in failed
    assert not (tmp_path / skipped[0]).exists()                 # skipped nodes are not executed
    states = node_states(nodes, tmp_path)
    assert {states[i] for i in bad} == {"failed"} and {states[i] for i in skipped} == {"skipped"}
    assert set(states.values()) == {"done", "failed", "skipped"}
    # the CLI's status shows the three states and the failure's first line, and exits 0
    profile_file = tmp_path / "p.yml"
    profile_file.write_text((Path(__file__).parents[1] / "configs" / "smoke.yml").read_text())
    args = ["status", "--profile", str(profile_file), "--runs-dir", str(tmp_path), "--notebooks-dir",
            str(FIXTURES)]
    for o in [*SMALL, "intermediate_tasks=[none, sst2, udpos]"]:
        args += ["--set", o]
    capsys.readouterr()
    assert xlt(args) == 0
    text = capsys.readouterr().out
    assert "failed nodes:" in text and "fixture failure requested for task udpos" in text
    all_row = next(line for line in text.splitlines() if "│ all" in line or line.startswith("all"))
    assert [int(x) for x in all_row.replace("│", " ").split()[1:]] == [
        len(summary.done), 0, len(bad), len(skipped), 0, 0, len(nodes)]   # done bad failed skipped running pending


def test_progress_eta_is_mean_time_times_remaining_over_workers():
    rep = ProgressReporter(total=10, workers=2, already_done=0, enabled=False)
    assert rep.eta_s() is None
    for i in range(4):
        rep.started(f"n{i}")
    rep.finished("n0", "done", 10.0)
    rep.finished("n1", "done", 20.0)
    rep.finished("n2", "failed", 99.0)       # failures do not count toward the mean node time
    # left = 6 pending + 1 running = 7; mean 15 s; 2 workers
    assert rep.eta_s() == pytest.approx(15.0 * 7 / 2)
    assert rep.counts == {"done": 2, "failed": 1, "skipped": 0, "running": 1}


@pytest.mark.slow
def test_ray_executor_runs_every_node(tmp_path):
    pytest.importorskip("ray")
    profile, nodes = grid()
    summary = run_grid(nodes, tmp_path, executor="ray", workers=2, resources=profile.resources, progress=False)
    assert summary.ok and sorted(summary.done) == sorted(n.id for n in nodes)
    assert all(node_state(tmp_path, n.id) == "done" for n in nodes)
    # Ray writes exactly what the local executor writes: same files, same deterministic metrics
    local = tmp_path.parent / (tmp_path.name + "-local")
    run_grid(nodes, local, executor="local", workers=2, progress=False)
    for n in nodes:
        assert metrics(tmp_path, n.id) == metrics(local, n.id)
        assert sorted(p.name for p in (tmp_path / n.id).iterdir()) == sorted(p.name for p in (local / n.id).iterdir())


def test_a_finished_node_that_does_not_verify_is_named_moved_aside_and_runs_again(tmp_path):
    profile, nodes = grid("models=[tiny-xlmr]")
    p1 = next(n for n in nodes if n.phase == "intermediate")
    assert run_grid(nodes, tmp_path, workers=2, progress=False).ok
    ckpt = tmp_path / p1.id / "checkpoint" / "weights.txt"
    whole = ckpt.stat().st_size
    ckpt.write_text(ckpt.read_text()[:-3])                       # a half-written phase-1 checkpoint
    out = io.StringIO()
    again = run_grid(nodes, tmp_path, workers=2, stream=out, progress=False)
    assert [(i, why) for i, why, _ in again.moved_aside] == [
        (p1.id, f"checkpoint/weights.txt: {whole - 3} bytes, DONE.json records {whole} "
                f"(truncated or changed after the node finished)")]
    moved = again.moved_aside[0][2]
    assert moved.is_dir() and moved.name.startswith(f"{p1.id}.bad-")
    assert f"node {p1.id} did not verify (checkpoint/weights.txt: " in out.getvalue()
    assert again.done == [p1.id] and again.ok                    # it ran again; its dependents stay done
    assert node_state(tmp_path, p1.id) == "done" and (tmp_path / p1.id / "checkpoint" / "weights.txt").is_file()
    # a change that keeps the size is seen by the sha256 check only (xlt run --verify, xlt status --verify)
    m = tmp_path / p1.id / "metrics.json"
    m.write_bytes(m.read_bytes().replace(b"sst2", b"SST2"))
    assert not run_grid(nodes, tmp_path, progress=False).moved_aside
    hashed = run_grid(nodes, tmp_path, progress=False, verify_hashes=True)
    assert [i for i, _, _ in hashed.moved_aside] == [p1.id] and hashed.done == [p1.id]
    assert "sha256 differs" in hashed.moved_aside[0][1]


def _disk_full_for(monkeypatch, *names: str) -> None:
    """Simulate a full disk: every atomic write of a file called one of ``names`` raises ENOSPC (in this
    process and in the runners it forks, which inherit the patch)."""
    import errno

    from xlt_helpers import files as R
    real = R.write_bytes_atomic

    def write(path, data):
        if Path(path).name in names:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(R, "write_bytes_atomic", write)


def test_full_disk_marks_the_running_node_failed_and_stops_the_grid(tmp_path, monkeypatch):
    """Issue 13: on a full disk the parent crashed and left no FAILED.json. Now the node that hit it is
    failed (FAILED.json, with the errno), nothing more starts, and the summary says why."""
    _disk_full_for(monkeypatch, "DONE.json")
    profile, nodes = grid("models=[tiny-xlmr]")
    summary = run_grid(nodes, tmp_path, workers=1, progress=False)
    first = summary.failed[0]
    assert len(summary.failed) == 1 and not summary.done and not summary.ok
    failed = json.loads((tmp_path / first / "FAILED.json").read_text())
    assert failed["errno"] == 28 and failed["error"] == "OSError: [Errno 28] No space left on device"
    assert summary.stopped.startswith(f"the runs folder {tmp_path} is full or read-only: {first} failed with "
                                      f"OSError: [Errno 28] No space left on device.")
    started = [n.id for n in nodes if (tmp_path / n.id).exists()]
    assert started == [first], "nothing started after the disk filled up"
    assert summary.stopped.endswith(f"({len(nodes) - 1 - len(summary.skipped)} nodes not started)")


def test_full_disk_even_for_failed_json_still_stops_cleanly(tmp_path, monkeypatch):
    _disk_full_for(monkeypatch, "DONE.json", "FAILED.json")
    profile, nodes = grid("models=[tiny-xlmr]")
    summary = run_grid(nodes, tmp_path, workers=1, progress=False)
    first = summary.failed[0]
    assert len(summary.failed) == 1 and not summary.done
    assert not (tmp_path / first / "DONE.json").exists()          # not done: it runs again next time
    assert summary.stopped.startswith(f"cannot write FAILED.json of {first} in the runs folder {tmp_path}: "
                                      f"No space left on device. Fix: free space there")


def test_full_disk_when_a_node_starts_stops_the_grid(tmp_path, monkeypatch):
    _disk_full_for(monkeypatch, "node.json")
    profile, nodes = grid("models=[tiny-xlmr]")
    summary = run_grid(nodes, tmp_path, workers=2, progress=False)
    assert summary.failed and not summary.done and not summary.ok
    assert summary.stopped.startswith(f"cannot start node {summary.failed[0]} in the runs folder {tmp_path}")


def test_bf16_nodes_are_not_started_on_a_machine_without_native_bf16(tmp_path, monkeypatch):
    """A study whose target nodes evaluate in bf16 resumes on an AVX2-only machine: the fp32 nodes run, the
    bf16 ones are named once and skipped (not failed one by one), and a machine with AMX then runs them."""
    import torch

    from xlt_helpers import machine
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2", "avx512f"})
    _, nodes = grid("target.xnli.eval_precision=bf16")
    bf16 = sorted(n.id for n in nodes if n.phase == "target")
    out = io.StringIO()
    summary = run_grid(nodes, tmp_path, workers=2, progress=False, stream=out)
    assert summary.done == [n.id for n in nodes if n.phase == "intermediate"]
    assert sorted(summary.skipped) == bf16 and sorted(i for i, _ in summary.not_here) == bf16 and not summary.failed
    assert all(why == "eval_precision: bf16 needs native bf16, but this CPU has none of the flags avx512_bf16, "
                      "amx_bf16 in /proc/cpuinfo (and no CUDA GPU is visible)" for _, why in summary.not_here)
    assert out.getvalue().count("needs native bf16") == 1 and f"{len(bf16)} nodes not started" in out.getvalue()
    assert not any((tmp_path / i).exists() for i in bf16)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    again = run_grid(nodes, tmp_path, workers=2, progress=False)
    assert sorted(again.done) == bf16 and again.ok and not again.not_here


def test_memory_guard_keeps_side_by_side_nodes_within_memory(tmp_path):
    """Hand-worked: a 20 GB budget; a 12 GB kind may not run twice at once, but beside a 5 GB kind it may; an
    unmeasured kind sends one scout at a time; with nothing running anything starts."""
    from xlt_helpers.executors import MemoryGuard
    from xlt_helpers.grid import Node

    def node(nid, task, seed, peak=None):
        n = Node(nid, "intermediate", "01.ipynb", {"model": "e5-L12", "task": task, "seed": seed, "max_length": 256,
                                                    "batch_size": 16})
        if peak is not None:
            (tmp_path / nid).mkdir()
            (tmp_path / nid / "metrics.json").write_text(json.dumps({"peak_rss_mb": peak}))
        return n

    done_big, done_small = node("big-s0", "cosmosqa", 0, 12000.0), node("small-s0", "sst2", 0, 5000.0)
    big1, big2, small1 = node("big-s1", "cosmosqa", 1), node("big-s2", "cosmosqa", 2), node("small-s1", "sst2", 1)
    new1, new2 = node("new-s0", "hellaswag", 0), node("new-s1", "hellaswag", 1)
    g = MemoryGuard(tmp_path, [done_big, done_small, big1, big2, small1, new1, new2], budget_mb=20000.0)
    assert g.expected_mb(big2) == 12000.0 and g.expected_mb(small1) == 5000.0 and g.expected_mb(new1) is None
    assert g.why_not(big2, [big1]) == ("expected peak 11.7 GB beside 11.7 GB planned by the running nodes exceeds "
                                       "19.5 GB (the memory budget); it starts when one ends")
    assert g.why_not(big2, [small1]) is None                      # 12 + 5 <= 20
    assert g.why_not(big2, []) is None                            # alone it always starts
    assert "new-s0 (same kind) is measuring it" in g.why_not(new2, [new1])
    assert g.why_not(new2, [big1]) is None                        # an unmeasured kind beside another kind
    (tmp_path / "new-s0").mkdir()
    (tmp_path / "new-s0" / "metrics.json").write_text(json.dumps({"peak_rss_mb": 9000.0}))
    g.record(new1)                                                # the scout ended: its siblings plan with it
    assert g.expected_mb(new2) == 9000.0 and g.why_not(new2, [new1]) is None and g.why_not(new2, [big1]) is not None


def test_siblings_of_an_unmeasured_kind_wait_for_the_scout_and_all_finish(tmp_path):
    # two baselines of one model, ready at once: the same kind, nobody has measured it, two workers free
    profile, nodes = grid("models=[tiny-xlmr]", "intermediate_tasks=[none]", "seeds=[0, 1]")
    assert [n.phase for n in nodes] == ["target", "target"]
    out = io.StringIO()
    summary = run_grid(nodes, tmp_path, executor="local", workers=2, stream=out, progress=False)
    assert summary.ok and sorted(summary.done) == sorted(n.id for n in nodes)
    assert out.getvalue().count("waits for memory: its memory is not measured yet") == 1
