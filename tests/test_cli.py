"""The ``xlt`` command as a user runs it: subprocesses, SIGKILL and resume, the lock, status, clean."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from xlt_helpers.cli import main as xlt
from xlt_helpers.grid import build_grid
from xlt_helpers.profiles import load_profile
from xlt_helpers.runs import node_state, runs_lock

FIXTURES = Path(__file__).parent / "fixtures" / "notebooks"
SETS = ["models=[tiny-xlmr]", "intermediate_tasks=[none, sst2]", "targets=[xnli]", "seeds=[0]",
        "target.xnli.eval_langs=[en, de]"]
ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}


def cli_args(cmd: str, runs: Path, *extra: str, sets: list[str] = SETS) -> list[str]:
    args = [cmd, "--profile", "smoke", "--runs-dir", str(runs)]
    if cmd in ("run", "status"):
        args += ["--notebooks-dir", str(FIXTURES)]
    for s in sets:
        args += ["--set", s]
    return [*args, *extra]


def xlt_proc(args: list[str], env: dict | None = None, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "xlt_helpers.cli", *args], env=env or ENV,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def nodes(sets: list[str] = SETS):
    return build_grid(load_profile("smoke", sets), FIXTURES)


def all_metrics(runs: Path, sets: list[str] = SETS) -> dict[str, dict]:
    return {n.id: json.loads((runs / n.id / "metrics.json").read_text()) for n in nodes(sets)}


@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A runs dir in which the small grid has been run to the end once (by the CLI)."""
    runs = tmp_path_factory.mktemp("finished")
    assert xlt(cli_args("run", runs, "--workers", "2")) == 0
    return runs


def test_finished_grid_does_no_work_quickly_without_torch(finished):
    before = {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.name != ".lock"}
    code = ("import sys, time; t = time.time(); from xlt_helpers.cli import main\n"
            f"rc = main({cli_args('run', finished)!r})\n"
            "heavy = [m for m in ('torch', 'transformers', 'datasets', 'papermill', 'ray') if m in sys.modules]\n"
            "print('HEAVY', heavy, 'RC', rc, 'SECONDS', time.time() - t)")
    t0 = time.time()
    out = subprocess.run([sys.executable, "-c", code], env=ENV, capture_output=True, text=True, timeout=60)
    wall = time.time() - t0
    assert out.returncode == 0, out.stderr
    assert "already done" in out.stdout and "HEAVY [] RC 0" in out.stdout, out.stdout
    assert wall <= 10, f"xlt run on a finished grid took {wall:.1f} s"
    after = {p: p.stat().st_mtime_ns for p in finished.rglob("*") if p.name != ".lock"}
    assert after == before                       # nothing was touched


def test_status_on_finished_grid(finished, capsys):
    capsys.readouterr()
    assert xlt(cli_args("status", finished)) == 0
    out = capsys.readouterr().out
    all_row = next(line for line in out.splitlines() if "│ all" in line)
    assert [int(x) for x in all_row.replace("│", " ").split()[1:]] == [3, 0, 0, 0, 0, 3]
    assert "failed nodes" not in out


def test_second_concurrent_run_fails_with_lock_message(finished):
    with runs_lock(finished):                    # a run in progress (this test process holds the lock)
        t0 = time.time()
        p = xlt_proc(cli_args("run", finished))
        _, err = p.communicate(timeout=60)
        assert p.returncode == 2
        assert time.time() - t0 < 30             # at once, not after waiting for the holder
    assert str(finished / ".lock") in err and f"PID {os.getpid()}" in err


def test_only_filter_runs_selection_and_dependencies(tmp_path, capsys):
    assert xlt(cli_args("run", tmp_path, "--only", "intermediate=sst2")) == 0
    states = {n.id: node_state(tmp_path, n.id) for n in nodes()}
    want = {n.id: "done" if n.phase == "intermediate" or n.params.get("intermediate") == "sst2" else "pending"
            for n in nodes()}
    assert states == want
    assert xlt(cli_args("run", tmp_path, "--only", "model=nope")) == 2
    assert "matched no node" in capsys.readouterr().err


def test_bad_profile_is_a_clear_cli_error(tmp_path, capsys):
    assert xlt(cli_args("run", tmp_path, sets=["models=[gpt-17]"])) == 2
    err = capsys.readouterr().err
    assert "smoke.yml" in err and "models[0]" in err and "tiny-xlmr" in err


def test_clean_failed_incomplete_and_prune(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    by_phase = {n.phase: n for n in nodes()}
    p1 = by_phase["intermediate"]
    # fake one failed and one half-run node directory
    (runs / "p2-fake-failed").mkdir()
    (runs / "p2-fake-failed" / "FAILED.json").write_text('{"error": "x"}')
    (runs / "p2-half").mkdir()
    (runs / "p2-half" / "metrics.json").write_text("{}")
    assert xlt(["clean", "--runs-dir", str(runs)]) == 0
    assert not (runs / "p2-half").exists() and (runs / "p2-fake-failed").exists()
    assert xlt(["clean", "--runs-dir", str(runs), "--failed"]) == 0
    assert not (runs / "p2-fake-failed").exists()
    # prune: the phase-1 checkpoint goes once every dependent is done ...
    assert (runs / p1.id / "checkpoint").is_dir()
    assert xlt(["clean", "--runs-dir", str(runs), "--prune-checkpoints", "--profile", "smoke",
                *sum((["--set", s] for s in SETS), [])]) == 0
    assert not (runs / p1.id / "checkpoint").exists()
    assert all(node_state(runs, n.id) == "done" for n in nodes())
    # ... and a later run that needs it again (a new dependent) re-runs phase 1 first
    more = [*SETS, "target.xnli.eval_langs=[en]"]
    assert xlt(cli_args("run", runs, sets=more)) == 0
    assert (runs / p1.id / "checkpoint").is_dir()


@pytest.mark.slow
def test_sigkill_mid_run_then_resume_matches_uninterrupted(tmp_path):
    sets = [*SETS, "seeds=[0, 1]"]               # 2 phase-1 + 4 phase-2 nodes
    grid_ids = [n.id for n in nodes(sets)]
    killed, clean = tmp_path / "killed", tmp_path / "clean"
    env = {**ENV, "XLT_FIXTURE_SLEEP": "2"}      # nodes stay running long enough to be caught mid-way
    p = xlt_proc(cli_args("run", killed, "--workers", "2", sets=sets), env=env)
    deadline = time.time() + 240
    while time.time() < deadline:
        done = [i for i in grid_ids if (killed / i / "DONE.json").exists()]
        running = [i for i in grid_ids if (killed / i).is_dir() and not (killed / i / "DONE.json").exists()]
        if done and running:
            break
        assert p.poll() is None, "the run finished before it could be killed; raise XLT_FIXTURE_SLEEP"
        time.sleep(0.1)
    else:
        pytest.fail("never saw a node running while another was done")
    p.send_signal(signal.SIGKILL)
    p.wait(timeout=30)
    time.sleep(1.5)                              # let the orphaned kernels notice (ipykernel polls each 1 s)
    # nothing half-written counts: every DONE.json has its metrics, the running node has no DONE.json
    for i in grid_ids:
        if (killed / i / "DONE.json").exists():
            assert (killed / i / "metrics.json").exists()
    unfinished = [i for i in grid_ids if not (killed / i / "DONE.json").exists()]
    assert unfinished, "every node finished before the kill: nothing was interrupted"
    # the lock died with the process: resume at once, then compare with an uninterrupted run
    assert xlt(cli_args("run", killed, "--workers", "2", sets=sets)) == 0
    assert xlt(cli_args("run", clean, "--workers", "2", sets=sets)) == 0
    assert all_metrics(killed, sets) == all_metrics(clean, sets)
    assert all(node_state(killed, i) == "done" for i in grid_ids)


def test_book_calls_build_book_lazily(tmp_path, monkeypatch, capsys):
    import xlt_helpers.book as book
    calls = []
    monkeypatch.setattr(book, "build_book", lambda results_dir=None, **kw: calls.append(results_dir) or tmp_path)
    assert xlt(["book", "--results", str(tmp_path)]) == 0
    assert calls == [tmp_path] and str(tmp_path) in capsys.readouterr().out


def test_run_stops_before_retraining_a_study_committed_under_other_framework_versions(finished, tmp_path, capsys):
    res = tmp_path / "results"
    res.mkdir()
    (res / "meta.json").write_text(json.dumps({"profile": "smoke", "torch": "2.13.0", "transformers": "0.1.0"}))
    export = ["--results-dir", str(res)]
    sets = SETS + ["export_results=true"]
    fresh = tmp_path / "runs"
    assert xlt(cli_args("run", fresh, *export, sets=sets)) == 2
    err = capsys.readouterr().err
    assert "transformers 0.1 in" in err and "constraints.txt" in err and "--allow-version-change" in err
    assert not any(fresh.glob("p*")), "nothing was trained"
    # a finished grid has nothing to re-train: no reason to stop
    assert xlt(cli_args("run", finished, *export, sets=sets)) == 0


def test_plan_prints_one_row_per_training_setup_and_says_what_does_not_fit(capsys):
    """`xlt plan` on the smoke profile (tiny models, no data counting: max_steps is set)."""
    assert xlt(["plan", "--profile", "smoke", "--set", "seeds=[0, 1]"]) == 0
    out = capsys.readouterr().out
    assert "profile smoke: 26 nodes" in out and "0 of " in out and "exceed 80 GiB" in out
    assert "p2: mlqa" in out and "tiny-mt5" in out
    assert xlt(["plan", "--profile", "smoke", "--gpu-mem", "0.5"]) == 0
    out = capsys.readouterr().out
    assert "exceed 0.5 GiB" in out and "gradient_checkpointing" in out     # the fix is named
