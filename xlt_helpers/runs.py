"""Executing one node: a papermill run into ``runs/<id>/`` with crash-safe markers.

Layout of a node directory (``runs/<id>/``)::

    node.json          the node (written first)
    <notebook>.ipynb   the executed notebook (papermill)
    log.txt            stdout/stderr of the runner and the kernel
    metrics.json ...   written by the notebook (use files.write_json_atomic)
    checkpoint/        phase 1: the model phase 2 starts from
    DONE.json          success: written atomically, last, only after metrics.json exists;
                       records the size and sha256 of every file the node wrote ("files")
    FAILED.json        failure: error, traceback, log tail (atomic)

A directory without ``DONE.json`` is not done, whatever else it holds: the next
``xlt run`` deletes it and starts the node again. Because the markers are
written with a temp file + ``os.replace``, a SIGKILL at any moment leaves
either a complete marker or none. A directory *with* ``DONE.json`` is done only
if it holds up (:func:`verify_node`: the recorded sizes, and the hashes when
asked; metrics.json parses; a safetensors checkpoint is whole): one that does
not is moved aside (:func:`move_aside`, never deleted) and runs again.

Each node runs in its own runner process whose stdout/stderr is ``log.txt``
(so the kernel's output lands there too): forked from ``xlt run`` by the
local executor (:func:`fork_node`), or ``python -m xlt_helpers.runs <node dir>``
from a Ray task (:func:`spawn_node`). On Linux the runner asks to be killed
when its parent dies, and the kernel exits when the runner does (ipykernel's
parent poller), so killing ``xlt run`` leaves no orphan that could later write
into a re-run directory.
"""
from __future__ import annotations

import contextlib
import errno
import fcntl
import gzip
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import traceback
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from .files import sha256_file, write_json_atomic
from .grid import Node
from .paths import repo_root

RUNS_ENV = "XLT_RUNS_DIR"
NODE_FILE = "node.json"
DONE_FILE = "DONE.json"
FAILED_FILE = "FAILED.json"
LOG_FILE = "log.txt"
METRICS_FILE = "metrics.json"
CHECKPOINT_DIR = "checkpoint"
LOCK_FILE = ".lock"
PREDICTIONS_FILE = "predictions.jsonl.gz"
RECORDS_KEY = "files"          # DONE.json: {relative path: {"size": bytes, "sha256": hex}}
BAD_SUFFIX = ".bad-"           # <id>.bad-<UTC time>: a finished node that failed verification, moved aside
# errors of the runs folder's filesystem itself (not of a node's code): the grid stops on these
DISK_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EROFS)
KERNEL = "python3"
LOG_TAIL_LINES = 40
_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")

State = Literal["done", "failed", "pending"]


# ------------------------------------------------------------------ locations and states
def runs_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where node directories live: ``explicit`` > ``$XLT_RUNS_DIR`` > ``<repo>/runs``."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    if os.environ.get(RUNS_ENV):
        return Path(os.environ[RUNS_ENV]).expanduser().resolve()
    return repo_root() / "runs"


def node_dir(runs: Path, node_id: str) -> Path:
    return Path(runs) / node_id


def node_state(runs: Path, node_id: str) -> State:
    """done (DONE.json), failed (FAILED.json) or pending (anything else, incl. half-run dirs)."""
    d = node_dir(runs, node_id)
    if (d / DONE_FILE).is_file():
        return "done"
    if (d / FAILED_FILE).is_file():
        return "failed"
    return "pending"


# ------------------------------------------------------------------ verifying a finished node
def _recorded(rel: str) -> bool:
    """Files DONE.json records: everything a node wrote but the markers, the log (diagnostics that
    a dying runner may still append to) and hidden temp files of an atomic write."""
    name = rel.rsplit("/", 1)[-1]
    return rel not in (DONE_FILE, FAILED_FILE, LOG_FILE) and not name.startswith(".")


def file_records(d: Path) -> dict[str, dict[str, Any]]:
    """``{relative path: {"size", "sha256"}}`` of every file the node in ``d`` wrote (see :func:`_recorded`)."""
    out = {}
    for p in sorted(Path(d).rglob("*")):
        rel = p.relative_to(d).as_posix()
        if p.is_file() and _recorded(rel):
            out[rel] = {"size": p.stat().st_size, "sha256": sha256_file(p)}
    return out


def _may_be_absent(rel: str) -> bool:
    """A recorded file that a finished node may lack: its checkpoint (``xlt clean --prune-checkpoints``;
    the committed store never keeps it, and the scheduler re-runs a phase-1 node whose checkpoint a
    pending dependent needs) and the executed notebook (kept in results/runs/, not in the node)."""
    return rel.startswith(CHECKPOINT_DIR + "/") or ("/" not in rel and rel.endswith(".ipynb"))


def safetensors_problem(path: Path) -> str | None:
    """Why ``path`` is not a whole safetensors file (None if it is), from its header alone: the
    8-byte header length, the JSON header, and the end of the last tensor == the file's size."""
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) < 8:
                return f"{size} bytes, shorter than a safetensors header"
            n = int.from_bytes(head, "little")
            if n > size - 8:
                return f"header length {n} runs past the end of the file ({size} bytes): truncated"
            header = json.loads(f.read(n))
        end = max((v["data_offsets"][1] for k, v in header.items() if k != "__metadata__"), default=0)
    except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError) as e:
        return f"unreadable safetensors header ({type(e).__name__}: {e})"
    if size != 8 + n + end:
        return f"{size} bytes but its header describes {8 + n + end}: truncated or damaged"
    return None


def _json_problem(path: Path, want: type = dict) -> str | None:
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return "missing"
    except (OSError, UnicodeDecodeError, ValueError) as e:
        return f"not valid JSON ({type(e).__name__}: {e})"
    return None if isinstance(obj, want) else f"not a JSON {want.__name__} ({type(obj).__name__})"


def verify_node(d: Path, hashes: bool = False) -> str | None:
    """None when the finished node in ``d`` holds up, else one line naming the file and the cause.

    Always: DONE.json and metrics.json parse (node.json too when present), every file DONE.json
    records has its recorded size, every safetensors file is whole. With ``hashes``: the recorded
    sha256 too, and a gzip file reads to its end. DONE.json written before it recorded files
    (the committed study's first sitting) is accepted with the checks that need no record.
    """
    d = Path(d)
    why = _json_problem(d / DONE_FILE)
    if why:
        return f"{DONE_FILE}: {why}"
    done = json.loads((d / DONE_FILE).read_text(encoding="utf-8"))
    if done.get("id", d.name) != d.name:
        return f"{DONE_FILE}: records id {done['id']!r}, not this folder's"
    records = done.get(RECORDS_KEY)
    if records is not None:
        if not isinstance(records, dict) or not all(
                isinstance(r, dict) and isinstance(r.get("size"), int) and isinstance(r.get("sha256"), str)
                for r in records.values()):
            return f"{DONE_FILE}: field {RECORDS_KEY} is not a mapping path -> {{size, sha256}}"
        for rel, rec in sorted(records.items()):
            p = d / rel
            if not p.is_file():
                if _may_be_absent(rel):
                    continue
                return f"{rel}: missing (DONE.json records {rec['size']} bytes)"
            size = p.stat().st_size
            if size != rec["size"]:
                return f"{rel}: {size} bytes, DONE.json records {rec['size']} (truncated or changed after the node finished)"
            if hashes and sha256_file(p) != rec["sha256"]:
                return f"{rel}: sha256 differs from DONE.json's record (changed after the node finished)"
    for name in (METRICS_FILE, NODE_FILE):
        if name == METRICS_FILE or (d / name).exists():
            why = _json_problem(d / name)
            if why:
                return f"{name}: {why}"
    for p in sorted(d.rglob("*.safetensors")):
        why = safetensors_problem(p)
        if why:
            return f"{p.relative_to(d).as_posix()}: {why}"
    if hashes:
        for p in sorted(d.rglob("*.gz")):
            try:
                with gzip.open(p, "rb") as f:
                    while f.read(1 << 20):
                        pass
            except (OSError, EOFError) as e:
                return f"{p.relative_to(d).as_posix()}: not a whole gzip file ({type(e).__name__}: {e})"
    return None


def move_aside(d: Path) -> Path:
    """Rename a node folder that failed verification to ``<id>.bad-<UTC time>`` (kept for inspection,
    never deleted; ``xlt clean`` leaves it alone) so the node can run again under its own id."""
    d = Path(d)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    target = d.with_name(f"{d.name}{BAD_SUFFIX}{stamp}")
    i = 1
    while target.exists():
        target = d.with_name(f"{d.name}{BAD_SUFFIX}{stamp}-{i}")
        i += 1
    os.replace(d, target)
    return target


def read_marker(runs: Path, node_id: str, name: str) -> dict[str, Any]:
    try:
        return json.loads((node_dir(runs, node_id) / name).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return {}


def first_error_line(runs: Path, node_id: str) -> str:
    err = str(read_marker(runs, node_id, FAILED_FILE).get("error", "")).strip()
    return err.splitlines()[0] if err else "(no error recorded)"


def notebook_parameters(node: Node, runs: Path) -> dict[str, Any]:
    """What papermill injects: the node's params plus ``out_dir`` and ``init_from``
    (the phase-1 dependency's checkpoint, or "" for the no-intermediate baseline)."""
    init_from = str(node_dir(runs, node.deps[0]) / CHECKPOINT_DIR) if node.deps else ""
    return {**node.params, "out_dir": str(node_dir(runs, node.id)), "init_from": init_from}


# ------------------------------------------------------------------ the lock
_HELD_LOCK_FDS: set[int] = set()   # closed in forked runners so they never hold the lock


class RunsLocked(RuntimeError):
    """Another ``xlt run`` (or ``xlt clean``) holds the runs directory."""


class RunsFolderError(RuntimeError):
    """The runs folder cannot be written (full, read-only, no permission); ``node_id``: the node
    being started or finished when it happened, if any."""

    def __init__(self, message: str, node_id: str | None = None) -> None:
        super().__init__(message)
        self.node_id = node_id


def folder_error(folder: Path, e: OSError, doing: str, node_id: str | None = None) -> RunsFolderError:
    """One line for a write that failed in the runs folder: the folder, the file, the cause, the fix."""
    fix = ("free space there" if e.errno in (errno.ENOSPC, errno.EDQUOT)
           else "make it writable" if e.errno in (errno.EROFS, errno.EACCES, errno.EPERM) else "check it")
    where = f" ({e.filename})" if getattr(e, "filename", None) else ""
    return RunsFolderError(f"cannot {doing} in the runs folder {folder}{where}: {e.strerror or e}. "
                           f"Fix: {fix}, or pass another --runs-dir (or $XLT_RUNS_DIR)", node_id)


@contextlib.contextmanager
def runs_lock(runs: Path) -> Iterator[Path]:
    """Hold ``runs/.lock`` (fcntl.flock, non-blocking) for the duration; fail at once if held.

    flock is released by the kernel when the holder dies, so a SIGKILLed run
    never leaves a stale lock. The holder's PID is written into the file for
    the message the next caller sees.
    """
    runs = Path(runs)
    path = runs / LOCK_FILE
    try:
        runs.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise folder_error(runs, e, "create the lock file") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
            raise RunsLocked(f"{path} is held by another xlt process (PID {holder}): only one `xlt run` "
                             f"per runs directory at a time. Wait for it to finish (or stop PID {holder}), "
                             f"or pass another --runs-dir.") from None
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        except OSError as e:
            raise folder_error(runs, e, "write the lock file") from None
        _HELD_LOCK_FDS.add(fd)
        yield path
    finally:
        _HELD_LOCK_FDS.discard(fd)
        os.close(fd)  # releases the flock


def lock_holder(runs: Path) -> str | None:
    """The PID text of a live lock holder, or None when nobody holds the lock."""
    path = Path(runs) / LOCK_FILE
    if not path.is_file():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return os.pread(fd, 64, 0).decode(errors="replace").strip() or "unknown"
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


# ------------------------------------------------------------------ running one node
def prepare_node_dir(node: Node, runs: Path) -> Path:
    """A fresh ``runs/<id>/`` holding only ``node.json`` (a leftover of an unfinished run is deleted)."""
    d = node_dir(runs, node.id)
    try:
        if d.exists():
            shutil.rmtree(d)
        d.mkdir(parents=True)
        write_json_atomic(d / NODE_FILE, node.to_json())
    except OSError as e:
        raise folder_error(runs, e, f"start node {node.id}", node.id) from None
    return d


def _log_tail(d: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = (d / LOG_FILE).read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def write_failed(d: Path, error: str, tb: str, errno_: int | None = None) -> None:
    """FAILED.json; ``errno_`` of an OSError is kept so the scheduler can tell a full or read-only
    disk (stop the grid) from a failing node (skip its dependents, go on)."""
    sys.stderr.flush()
    marker = {"error": error, "traceback": tb, "log_tail": _log_tail(d), "failed_at": _now(),
              "host": socket.gethostname()}
    if errno_ is not None:
        marker["errno"] = errno_
    write_json_atomic(d / FAILED_FILE, marker)


_ERRNO_TEXT = re.compile(r"\[Errno (\d+)\]")


def disk_failure(runs: Path, node_id: str) -> bool:
    """Whether a failed node failed because its filesystem is full or read-only (in the runner or
    inside the notebook's kernel, where only the message text says so)."""
    marker = read_marker(runs, node_id, FAILED_FILE)
    if marker.get("errno") in DISK_ERRNOS:
        return True
    return any(int(m) in DISK_ERRNOS for m in _ERRNO_TEXT.findall(str(marker.get("error", ""))))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def execute_node(d: Path) -> bool:
    """Run the node described by ``d/node.json`` through papermill, in this process.

    Writes DONE.json on success (only if the notebook wrote metrics.json) or
    FAILED.json on any error. Returns whether it succeeded.
    """
    start = time.time()
    node = Node.from_json(json.loads((d / NODE_FILE).read_text(encoding="utf-8")))
    runs = d.parent
    try:
        import papermill  # heavy (~2 s): only in the runner process
        from papermill.exceptions import PapermillExecutionError
        params = notebook_parameters(node, runs)
        try:
            papermill.execute_notebook(
                node.notebook, str(d / Path(node.notebook).name), parameters=params, kernel_name=KERNEL,
                progress_bar=False, log_output=False, cwd=str(Path(node.notebook).parent))
        except PapermillExecutionError as e:
            tb = _ANSI.sub("", "\n".join(e.traceback))
            print(tb, file=sys.stderr)
            write_failed(d, f"{e.ename}: {e.evalue} (notebook cell {e.exec_count})", tb)
            return False
        if not (d / METRICS_FILE).is_file():
            raise RuntimeError(f"{node.notebook} finished without writing {d / METRICS_FILE}; "
                               f"every phase notebook must write metrics.json into out_dir")
    except Exception as e:  # any runner-side failure (missing notebook, kernel died, ...)
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        write_failed(d, f"{type(e).__name__}: {e}", tb, errno_=getattr(e, "errno", None))
        return False
    try:
        write_json_atomic(d / DONE_FILE, {"id": node.id, "wall_s": round(time.time() - start, 3),
                                          "finished_at": _now(), "host": socket.gethostname(),
                                          RECORDS_KEY: file_records(d)})
    except OSError as e:   # e.g. the disk filled up: a node without DONE.json is failed, and says why
        tb = traceback.format_exc()
        print(tb, file=sys.stderr)
        write_failed(d, f"{type(e).__name__}: {e}", tb, errno_=e.errno)
        return False
    return True


def _die_with_parent() -> None:
    """preexec_fn: SIGKILL this child when the process that started it dies (Linux; no-op elsewhere)."""
    try:
        import ctypes
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def spawn_node(node: Node, runs: Path) -> subprocess.Popen:
    """Start a runner *subprocess* for ``node`` in a fresh directory; its stdout/stderr go to log.txt.

    Used where forking is unsafe (Ray workers run gRPC threads). Call from a
    thread that outlives the child: PR_SET_PDEATHSIG fires when the *thread*
    that started it exits.
    """
    d = prepare_node_dir(node, runs)
    with open(d / LOG_FILE, "ab") as log:
        return subprocess.Popen([sys.executable, "-m", "xlt_helpers.runs", str(d)], stdout=log,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=_die_with_parent, cwd=str(repo_root()))


def fork_node(node: Node, runs: Path) -> int:
    """Start the runner for ``node`` as a *forked* child (local executor); returns its PID.

    The parent imports papermill once and every child inherits it: that saves
    about 2 s of CPU per node over a fresh interpreter, which dominates short
    nodes (the smoke grid, the tests). The child redirects fds 1/2 to log.txt
    (the kernel inherits them), closes the runs lock, asks to die with its
    parent, runs :func:`execute_node` and leaves with ``os._exit``.
    """
    d = prepare_node_dir(node, runs)
    import papermill  # noqa: F401  (preload for the children)
    sys.stdout.flush()
    sys.stderr.flush()
    parent = os.getpid()
    pid = os.fork()
    if pid:
        return pid
    code, redirected = 1, False
    try:
        _die_with_parent()
        if os.getppid() != parent:      # the parent died before prctl took effect
            os._exit(1)
        for fd in list(_HELD_LOCK_FDS):
            with contextlib.suppress(OSError):
                os.close(fd)
        log = os.open(d / LOG_FILE, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.dup2(log, 1)
        os.dup2(log, 2)
        os.close(log)
        os.close(null)
        # fresh stream objects: the inherited ones may be a test runner's capture or rich's proxy,
        # whose locks may be held by a thread that does not exist in this child
        sys.stdout = open(1, "w", buffering=1, closefd=False)
        sys.stderr = open(2, "w", buffering=1, closefd=False)
        redirected = True
        os.chdir(repo_root())
        code = 0 if execute_node(d) else 1
    except BaseException:
        if redirected:
            with contextlib.suppress(BaseException):
                traceback.print_exc()
    finally:
        if redirected:
            with contextlib.suppress(BaseException):
                sys.stdout.flush()
                sys.stderr.flush()
        os._exit(code)


def reap(pid: int) -> int | None:
    """The exit code of child ``pid`` (negative: killed by that signal), or None while it runs."""
    done, status = os.waitpid(pid, os.WNOHANG)
    return None if done == 0 else os.waitstatus_to_exitcode(status)


def finish_node(node: Node, runs: Path, returncode: int) -> State:
    """After the runner exits: make sure a node that is not done has a FAILED.json."""
    state = node_state(runs, node.id)
    if state == "pending":
        how = f"killed by signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        try:
            write_failed(node_dir(runs, node.id), f"runner process ended ({how}) without writing DONE.json",
                         "(no Python traceback: the runner process itself died; see log_tail)")
        except OSError as e:   # the node is not done either way; the scheduler stops on this
            raise folder_error(runs, e, f"write {FAILED_FILE} of {node.id}", node.id) from None
        state = "failed"
    return state


def run_node_blocking(node_json: dict[str, Any], runs: str) -> dict[str, Any]:
    """Run one node to its end in a runner subprocess (used by the Ray executor's tasks)."""
    node, runs_path = Node.from_json(node_json), Path(runs)
    start = time.time()
    proc = spawn_node(node, runs_path)
    rc = proc.wait()
    state = finish_node(node, runs_path, rc)
    return {"id": node.id, "state": state, "wall_s": time.time() - start}


def main(argv: list[str] | None = None) -> int:
    """``python -m xlt_helpers.runs <node dir>``: the runner process."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m xlt_helpers.runs <runs/<id> directory holding node.json>", file=sys.stderr)
        return 2
    return 0 if execute_node(Path(args[0])) else 1


if __name__ == "__main__":
    sys.exit(main())
