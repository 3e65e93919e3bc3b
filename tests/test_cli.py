"""The ``xlt`` command as a user runs it: subprocesses, SIGKILL and resume, the lock, status, clean."""
from __future__ import annotations

import io
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
    assert [int(x) for x in all_row.replace("│", " ").split()[1:]] == [3, 0, 0, 0, 0, 0, 3]
    assert "failed nodes" not in out and "do not verify" not in out


def test_status_names_a_finished_node_that_does_not_verify(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    p2 = next(n for n in nodes() if n.phase == "target")
    m = runs / p2.id / "metrics.json"
    m.write_bytes(m.read_bytes().replace(b'"en"', b'"EN"'))       # same size: only the sha256 sees it
    capsys.readouterr()
    assert xlt(cli_args("status", runs)) == 0
    assert "do not verify" not in capsys.readouterr().out
    assert xlt(cli_args("status", runs, "--verify")) == 0
    out = capsys.readouterr().out
    all_row = next(line for line in out.splitlines() if "│ all" in line)
    assert [int(x) for x in all_row.replace("│", " ").split()[1:]] == [2, 1, 0, 0, 0, 0, 3]
    assert f"{p2.id}: metrics.json: sha256 differs from DONE.json's record" in out
    assert "xlt run --verify" in out
    assert (runs / p2.id / "DONE.json").is_file(), "status moves nothing"
    (runs / p2.id / "DONE.json").write_text("{garbage")
    assert xlt(cli_args("status", runs)) == 0
    assert f"{p2.id}: DONE.json: not valid JSON" in capsys.readouterr().out


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
    # fake one failed and one half-run node directory (made by xlt run: node.json of their own id)
    for fake in ("p2-fake-failed", "p2-half"):
        (runs / fake).mkdir()
        (runs / fake / "node.json").write_text(json.dumps({**p1.to_json(), "id": fake}))
    (runs / "p2-fake-failed" / "FAILED.json").write_text('{"error": "x"}')
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


def _foreign_folders(runs: Path) -> dict[str, Path]:
    """What else lives in a runs folder: an `xlt transfer` result (its default --out is the runs
    folder) and a user's own folder of notes; neither has a node.json."""
    transfer = runs / "transfer-e5-L3-sst2-xnli-s0"
    (transfer / "target").mkdir(parents=True)
    (transfer / "target" / "metrics.json").write_text('{"scores": {}}')
    notes = runs / "my-notes"
    notes.mkdir()
    (notes / "ideas.txt").write_text("keep me")
    moved = runs / "p2-x-none-xnli-s0-0123456789.bad-20261130T000000Z"  # moved aside by verification
    moved.mkdir()
    (moved / "node.json").write_text(json.dumps({"id": "p2-x-none-xnli-s0-0123456789", "phase": "target",
                                                 "notebook": "02.ipynb", "params": {}}))
    return {"transfer": transfer, "notes": notes, "moved": moved}


@pytest.mark.parametrize("profile", [False, True])
def test_clean_never_deletes_what_xlt_run_did_not_make(finished, tmp_path, capsys, profile):
    """Issue 13: `xlt clean` removed every folder without DONE.json, a finished transfer result and a
    user's notes included. It now removes only node folders xlt run made (node.json of that id)."""
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    keep = _foreign_folders(runs)
    half = runs / "p2-half"
    half.mkdir()
    (half / "node.json").write_text(json.dumps({**nodes()[0].to_json(), "id": "p2-half"}))
    extra = ["--profile", "smoke", *sum((["--set", s] for s in SETS), [])] if profile else []
    capsys.readouterr()
    assert xlt(["clean", "--runs-dir", str(runs), *extra]) == 0
    out = capsys.readouterr().out
    assert all(p.is_dir() for p in keep.values()), out
    assert (keep["notes"] / "ideas.txt").read_text() == "keep me"
    assert (keep["transfer"] / "target" / "metrics.json").is_file()
    assert half.exists() == profile          # outside the profile's grid: kept under --profile
    assert all(node_state(runs, n.id) == "done" for n in nodes())
    if not profile:
        assert "left alone" in out and "my-notes" in out and "transfer-e5-L3-sst2-xnli-s0" in out


def test_clean_dry_run_lists_with_reasons_and_deletes_nothing(finished, tmp_path, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    half = runs / "p2-half"
    half.mkdir()
    (half / "node.json").write_text(json.dumps({**nodes()[0].to_json(), "id": "p2-half"}))
    before = sorted(p.relative_to(runs) for p in runs.rglob("*"))
    capsys.readouterr()
    assert xlt(["clean", "--runs-dir", str(runs), "--dry-run", "--prune-checkpoints", "--profile", "smoke",
                *sum((["--set", s] for s in SETS), [])]) == 0
    out = capsys.readouterr().out
    p1 = next(n for n in nodes() if n.phase == "intermediate")
    assert f"would remove {p1.id}/checkpoint  (checkpoint (--prune-checkpoints): all 2 dependents are done)" in out
    assert "dry run, 1 to delete" in out            # p2-half is outside the profile's grid
    assert sorted(p.relative_to(runs) for p in runs.rglob("*")) == before
    assert xlt(["clean", "--runs-dir", str(runs), "--dry-run"]) == 0
    assert "would remove p2-half  (unfinished: made by xlt run, no DONE.json)" in capsys.readouterr().out
    assert half.is_dir()


def test_clean_asks_at_a_terminal_and_yes_skips_the_question(finished, tmp_path, monkeypatch, capsys):
    runs = tmp_path / "runs"
    shutil.copytree(finished, runs)
    half = runs / "p2-half"
    half.mkdir()
    (half / "node.json").write_text(json.dumps({**nodes()[0].to_json(), "id": "p2-half"}))
    answers = iter(["n", "y"])
    asked = []
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    monkeypatch.setattr(sys.stdin, "isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda q: asked.append(q) or next(answers))
    assert xlt(["clean", "--runs-dir", str(runs)]) == 1          # answered no
    assert half.is_dir() and "Delete these 1" in asked[0]
    assert xlt(["clean", "--runs-dir", str(runs)]) == 0          # answered yes
    assert not half.exists() and len(asked) == 2
    half.mkdir()
    (half / "node.json").write_text(json.dumps({**nodes()[0].to_json(), "id": "p2-half"}))
    assert xlt(["clean", "--runs-dir", str(runs), "--yes"]) == 0  # not asked
    assert not half.exists() and len(asked) == 2


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


def test_run_refuses_a_corrupt_committed_node_by_name_then_retrains_and_replaces_it(finished, tmp_path, monkeypatch,
                                                                                  capsys):
    """Issue 13: a corrupt file in results/nodes was restored as done and crashed every later `xlt run`
    with a bare JSONDecodeError. Now restore refuses it in one line (file and cause)."""
    from xlt_helpers import results as store
    res = tmp_path / "results"
    assert len(store.export(finished, res)) == 3
    p2 = next(n for n in nodes() if n.phase == "target")
    (res / "nodes" / p2.id / "metrics.json").write_text('{"phase": ')
    tables = []
    monkeypatch.setattr(store, "write_tables", lambda *a, **k: tables.append(a))   # fixture metrics are not tidy
    sets = SETS + ["export_results=true"]
    fresh = tmp_path / "runs"
    capsys.readouterr()
    assert xlt(cli_args("run", fresh, "--results-dir", str(res), sets=sets)) == 0
    out, err = capsys.readouterr()
    assert "restored 2 finished nodes" in out
    size = (finished / p2.id / "metrics.json").stat().st_size
    assert (f"refused {res / 'nodes' / p2.id}: metrics.json: 10 bytes, DONE.json records {size} (truncated or "
            f"changed after the node finished) (it trains again and its export replaces it") in err
    assert "1 done" in out and len(tables) == 1        # retrained, exported, then the tables were written
    assert (res / "nodes" / p2.id / "metrics.json").read_bytes() == (fresh / p2.id / "metrics.json").read_bytes()
    # a corrupt committed copy of a node the runs folder holds whole is replaced from there, nothing trains
    (res / "nodes" / p2.id / "metrics.json").write_text("garbage")
    assert xlt(cli_args("run", fresh, "--results-dir", str(res), sets=sets)) == 0
    out, _ = capsys.readouterr()
    assert f"replaced {res / 'nodes' / p2.id} (metrics.json: 7 bytes, DONE.json records" in out
    assert "nothing to run" in out
    assert store.verify_store(res)[1] == []


def test_results_command_verifies_the_store_and_records_hashes(finished, tmp_path, capsys):
    from xlt_helpers import results as store
    res = tmp_path / "results"
    store.export(finished, res)
    capsys.readouterr()
    assert xlt(["results", "--results-dir", str(res)]) == 0
    assert "3 committed nodes verify, 0 do not" in capsys.readouterr().out
    p1 = next(n for n in nodes() if n.phase == "intermediate")
    (res / "nodes" / p1.id / "DONE.json").write_text("[]")
    assert xlt(["results", "--results-dir", str(res)]) == 1
    assert f"BAD {res / 'nodes' / p1.id}: DONE.json: not a JSON dict (list)" in capsys.readouterr().out
    assert xlt(["results", "--results-dir", str(res), "--record-hashes"]) == 2
    assert "not recording hashes of a node that does not verify" in capsys.readouterr().err


@pytest.mark.parametrize("argv, line", [
    (["--model", "gpt-17"], "xlt transfer: --model 'gpt-17' is not one of the valid values: e5-L12, e5-L3,"),
    (["--target", "xnlii"], "xlt transfer: --target 'xnlii' is not one of the valid values: mlqa, pawsx, xnli, xquad"),
    (["--intermediate", "foo"], "xlt transfer: --intermediate 'foo' is not one of the valid values: none, anli,"),
    (["--epochs", "0"], "xlt transfer: --epochs: expected a number > 0, got 0.0"),
    (["--batch-size", "0"], "xlt transfer: --batch-size: expected an integer >= 1, got 0"),
    (["--train-n", "-3"], "xlt transfer: --train-n: expected an integer >= 1, got -3"),
    (["--learning-rate=-1e-4"], "xlt transfer: --learning-rate: expected a number > 0, got -0.0001"),
    (["--max-length", "600"], "xlt transfer: --max-length: 600 is more than the 512 token positions of model 'e5-L3'"),
])
def test_transfer_bad_value_is_one_line_with_the_valid_values(argv, line, capsys, monkeypatch):
    import xlt_helpers.pipeline as pipeline
    monkeypatch.setattr(pipeline, "run_intermediate", lambda **kw: pytest.fail("trained despite a bad value"))
    assert xlt(["transfer", *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith(line) and err.count("\n") == 1, err


@pytest.mark.parametrize("code, cause, fix", [(30, "Read-only file system", "make it writable"),
                                              (28, "No space left on device", "free space there")])
def test_read_only_or_full_runs_folder_is_one_line_naming_it(tmp_path, monkeypatch, capsys, code, cause, fix):
    """Running as root, chmod cannot make a folder read-only: the filesystem's answer is simulated."""
    real = os.open

    def refuse(path, *a, **k):
        if str(path).endswith(".lock"):
            raise OSError(code, cause, str(path))
        return real(path, *a, **k)

    monkeypatch.setattr(os, "open", refuse)
    runs = tmp_path / "runs"
    for cmd in ("run", "clean"):
        runs.mkdir(exist_ok=True)
        args = cli_args("run", runs) if cmd == "run" else ["clean", "--runs-dir", str(runs)]
        assert xlt(args) == 2
        err = capsys.readouterr().err
        assert err == (f"xlt {cmd}: cannot create the lock file in the runs folder {runs} ({runs / '.lock'}): "
                       f"{cause}. Fix: {fix}, or pass another --runs-dir (or $XLT_RUNS_DIR)\n")


def test_run_on_a_full_disk_says_it_stopped_and_why(tmp_path, monkeypatch, capsys):
    import errno

    from xlt_helpers import files as R
    real = R.write_bytes_atomic

    def write(path, data):
        if Path(path).name == "DONE.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(path, data)

    monkeypatch.setattr(R, "write_bytes_atomic", write)
    assert xlt(cli_args("run", tmp_path)) == 1
    out, err = capsys.readouterr()
    assert f"xlt run: stopped: the runs folder {tmp_path} is full or read-only: " in err
    assert "1 failed" in out and "FAILED" in out


def test_a_relative_data_dir_means_the_folder_xlt_was_started_in(tmp_path, monkeypatch):
    """xlt pins a relative XLT_DATA_DIR to the folder it was started in, so a papermill kernel or a bench worker
    running in another folder reads the same data (the bench's forked node once looked for ../shared/data beside
    its own run folder); an absolute one is left as it is."""
    from xlt_helpers import cli
    from xlt_helpers.paths import DATA_ENV

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(DATA_ENV, "../shared/data")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert os.environ[DATA_ENV] == str(tmp_path.parent / "shared" / "data")
    monkeypatch.setenv(DATA_ENV, "/srv/xtreme")
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    assert os.environ[DATA_ENV] == "/srv/xtreme"
