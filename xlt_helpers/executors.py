"""Running a grid: one scheduler, two backends (local processes, Ray tasks).

The scheduler owns the DAG logic once: it skips nodes that are already done,
starts ready nodes (phase 1 first, so phase-2 work unblocks early), marks the
dependents of a failed node as skipped (they are not executed) and keeps going
with the rest. A backend only knows how to start a node and report when it
has ended; every marker is written by the node's runner process on the shared
filesystem (see :mod:`xlt_helpers.runs`), so both backends leave the same files.
"""
from __future__ import annotations

from collections.abc import Callable

import contextlib
import os
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from .grid import Node
from .machine import bf16_refusal, mem_total_mb
from .profiles import Resources
from .runs import (CHECKPOINT_DIR, FAILED_FILE, METRICS_FILE, RunsFolderError, State, disk_failure, finish_node,
                   first_error_line, fork_node, move_aside, node_dir, node_state, read_marker, reap, verify_node,
                   write_failed)


@dataclass
class RunSummary:
    """What one ``xlt run`` did: ids per outcome, and its wall time."""

    already_done: list[str] = field(default_factory=list)
    done: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    # nodes this machine cannot run (bf16 without native bf16): (id, why); not started, their dependents skipped
    not_here: list[tuple[str, str]] = field(default_factory=list)
    # finished nodes that failed verification: (id, why, where the folder was moved); they run again
    moved_aside: list[tuple[str, str, Path]] = field(default_factory=list)
    stopped: str | None = None     # why the grid stopped early (a full or read-only runs folder)
    wall_s: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.skipped and self.stopped is None


class Backend(Protocol):
    def submit(self, node: Node) -> None: ...
    def wait(self, timeout: float) -> list[tuple[str, State, float]]: ...   # finished: (id, state, wall_s)
    def close(self) -> None: ...


# ------------------------------------------------------------------ progress
class ProgressReporter:
    """Live counts and an ETA on a terminal (rich); one plain line per finished node otherwise.

    ETA = mean wall time of the nodes finished in this run x nodes left / workers.
    """

    def __init__(self, total: int, workers: int, already_done: int, enabled: bool = True,
                 stream: Any = None) -> None:
        self.total, self.workers, self.already_done = total, max(1, workers), already_done
        self.stream = stream or sys.stdout
        self.counts = {"done": 0, "failed": 0, "skipped": 0, "running": 0}
        self.walls: list[float] = []
        self.enabled = enabled
        self.live = None
        if enabled and getattr(self.stream, "isatty", lambda: False)():
            from rich.console import Console
            from rich.live import Live
            self.live = Live(self._render(), console=Console(file=self.stream), refresh_per_second=2,
                             transient=False)
            self.live.start()

    @property
    def pending(self) -> int:
        c = self.counts
        return self.total - c["done"] - c["failed"] - c["skipped"] - c["running"]

    def eta_s(self) -> float | None:
        if not self.walls:
            return None
        left = self.pending + self.counts["running"]
        return sum(self.walls) / len(self.walls) * left / self.workers

    def _render(self) -> Any:
        from rich.table import Table
        t = Table.grid(padding=(0, 2))
        c = self.counts
        eta = self.eta_s()
        t.add_row(f"[green]done {c['done']}[/]", f"[cyan]running {c['running']}[/]",
                  f"[red]failed {c['failed']}[/]", f"[yellow]skipped {c['skipped']}[/]",
                  f"pending {self.pending}", f"(already done {self.already_done})",
                  f"ETA {_fmt_s(eta) if eta is not None else '?'}")
        return t

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._render())

    def started(self, node_id: str) -> None:
        self.counts["running"] += 1
        self._refresh()

    def finished(self, node_id: str, state: str, wall_s: float | None = None, was_running: bool = True) -> None:
        if was_running:
            self.counts["running"] -= 1
        self.counts[state] += 1
        if state == "done" and wall_s is not None:
            self.walls.append(wall_s)
        if self.live is not None:
            self._refresh()
            self.live.console.print(f"{state:>7}  {node_id}" + (f"  ({_fmt_s(wall_s)})" if wall_s else ""),
                                    highlight=False)
        elif self.enabled:
            n = sum(self.counts[k] for k in ("done", "failed", "skipped"))
            print(f"[{n}/{self.total}] {state:<7} {node_id}" + (f" ({_fmt_s(wall_s)})" if wall_s else ""),
                  file=self.stream, flush=True)

    def close(self) -> None:
        if self.live is not None:
            self._refresh()
            self.live.stop()


def _fmt_s(s: float | None) -> str:
    if s is None:
        return "?"
    s = int(round(s))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


# ------------------------------------------------------------------ backends
class LocalBackend:
    """Runner processes forked from this (main) thread, polled."""

    def __init__(self, runs: Path) -> None:
        self.runs = runs
        self.procs: dict[str, tuple[Node, int, float]] = {}
        self.folder_errors: list[RunsFolderError] = []   # FAILED.json could not be written (read by run_grid)

    def submit(self, node: Node) -> None:
        self.procs[node.id] = (node, fork_node(node, self.runs), time.time())

    def wait(self, timeout: float) -> list[tuple[str, State, float]]:
        deadline = time.time() + timeout
        while True:
            out = []
            for nid, (node, pid, t0) in list(self.procs.items()):
                rc = reap(pid)
                if rc is not None:
                    del self.procs[nid]
                    try:
                        state = finish_node(node, self.runs, rc)
                    except RunsFolderError as e:   # not done either way; the scheduler stops on it
                        self.folder_errors.append(e)
                        state = "failed"
                    out.append((nid, state, time.time() - t0))
            if out or time.time() >= deadline:
                return out
            time.sleep(0.1)

    def close(self) -> None:
        for _node, pid, _t0 in self.procs.values():  # only on errors/interrupts: stop our own children
            with contextlib.suppress(ProcessLookupError, ChildProcessError):
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)


def _ray_run_node(node_json: dict[str, Any], runs: str) -> dict[str, Any]:
    from .runs import run_node_blocking
    return run_node_blocking(node_json, runs)


class RayBackend:
    """One Ray task per node; the task runs the same runner subprocess as the local backend."""

    def __init__(self, runs: Path, workers: int, resources: Resources, address: str | None) -> None:
        import ray
        self.ray, self.runs = ray, runs
        self.refs: dict[Any, tuple[str, float]] = {}
        self.owns_ray = not ray.is_initialized()
        if self.owns_ray:
            if address:
                ray.init(address=address, include_dashboard=False)
            else:
                ray.init(address=None, num_cpus=workers, include_dashboard=False)
        avail = ray.cluster_resources()
        for res, want in (("CPU", resources.num_cpus), ("GPU", resources.num_gpus)):
            if want and avail.get(res, 0) < want:
                self.close()
                key = "num_cpus" if res == "CPU" else "num_gpus"
                raise RuntimeError(f"profile resources.{key}={want} per node, but the Ray cluster has "
                                   f"{avail.get(res, 0)} {res}(s): no node could ever start. Use "
                                   f"--set resources.{key}=<= {avail.get(res, 0)}, more --workers, or "
                                   f"--address of a cluster that has them.")
        self.task = ray.remote(_ray_run_node).options(num_cpus=resources.num_cpus, num_gpus=resources.num_gpus)

    def submit(self, node: Node) -> None:
        self.refs[self.task.remote(node.to_json(), str(self.runs))] = (node.id, time.time())

    def wait(self, timeout: float) -> list[tuple[str, State, float]]:
        if not self.refs:
            return []
        ready, _ = self.ray.wait(list(self.refs), num_returns=1, timeout=timeout)
        out = []
        for ref in ready:
            nid, t0 = self.refs.pop(ref)
            try:
                res = self.ray.get(ref)
                out.append((nid, res["state"], res["wall_s"]))
            except Exception as e:  # the Ray task itself died (worker crash, node lost)
                with contextlib.suppress(OSError):   # a full disk: the node is failed all the same
                    write_failed(node_dir(self.runs, nid), f"Ray task failed: {type(e).__name__}: {e}", repr(e))
                out.append((nid, "failed", time.time() - t0))
        return out

    def close(self) -> None:
        for ref in self.refs:
            self.ray.cancel(ref, force=True)
        if self.owns_ray and self.ray.is_initialized():
            self.ray.shutdown()


# ------------------------------------------------------------------ the scheduler
MEMORY_SHARE = 0.85   # of MemTotal that nodes running side by side may plan to use; the rest: OS, scheduler


def memory_group(node: Node) -> tuple:
    """Nodes whose peak memory is alike: same phase, model, task or target, sequence length and batch
    (seed and intermediate task change what is learned, not how much memory it takes)."""
    p = node.params
    return (node.phase, p.get("model"), p.get("task") or p.get("target"), p.get("max_length"), p.get("batch_size"),
            p.get("gradient_checkpointing"))


class MemoryGuard:
    """Keeps nodes side by side within this machine's memory, from the peaks their siblings measured.

    Two e5-L12 CosmosQA phase-1 nodes (~12 GB each) started together on a 24 GB machine and the kernel
    killed one (issue 16's study, 2026-11-30). A node's expected peak is the largest ``peak_rss_mb`` recorded
    by a finished node of its :func:`memory_group` (in the runs folder, restored nodes included). A node
    starts beside running ones only if the expected peaks add up to at most :data:`MEMORY_SHARE` of the
    machine's memory; a node of a group nobody has measured yet starts only while no sibling of its group
    runs (one scout measures the group first). With nothing running, any node starts: the guard delays, it
    never deadlocks, and it never refuses a node the machine might hold alone."""

    def __init__(self, runs: Path, nodes: Sequence[Node], budget_mb: float | None = None) -> None:
        total = mem_total_mb()
        self.budget_mb = budget_mb if budget_mb is not None else (MEMORY_SHARE * total if total else float("inf"))
        self.budget_text = ("the memory budget" if budget_mb is not None
                            else f"{MEMORY_SHARE:.0%} of this machine's {total / 1024:.1f} GB" if total else "no limit")
        self.runs = runs
        self.peaks: dict[tuple, float] = {}
        for n in nodes:
            self.record(n)
        self.announced: set[str] = set()

    def record(self, node: Node) -> None:
        """Read a finished node's measured peak into its group's (call it when a node ends)."""
        peak = read_marker(self.runs, node.id, METRICS_FILE).get("peak_rss_mb")   # {} until the node is done
        if isinstance(peak, (int, float)) and peak > 0:
            g = memory_group(node)
            self.peaks[g] = max(self.peaks.get(g, 0.0), float(peak))

    def expected_mb(self, node: Node) -> float | None:
        return self.peaks.get(memory_group(node))

    def why_not(self, node: Node, running: Sequence[Node]) -> str | None:
        """None when ``node`` may start beside ``running``, else why it waits."""
        if not running:
            return None
        want = self.expected_mb(node)
        if want is None:
            same = [r.id for r in running if memory_group(r) == memory_group(node)]
            return (f"its memory is not measured yet and {same[0]} (same kind) is measuring it" if same else None)
        planned = sum(self.expected_mb(r) or 0.0 for r in running)
        if planned + want > self.budget_mb:
            return (f"expected peak {want / 1024:.1f} GB beside {planned / 1024:.1f} GB planned by the running nodes "
                    f"exceeds {self.budget_mb / 1024:.1f} GB ({self.budget_text}); it starts when one ends")
        return None


def _stop(summary: RunSummary, why: str, nid: str | None, runs: Path, states: dict[str, str],
          reporter: ProgressReporter) -> None:
    """Node ``nid`` could not even start (the runs folder cannot be written): mark it failed
    (FAILED.json if it still fits) and start nothing more."""
    if summary.stopped is None:
        summary.stopped = why
    if nid is None:
        return
    states[nid] = "failed"
    summary.failed.append(nid)
    if node_dir(runs, nid).is_dir() and not (node_dir(runs, nid) / FAILED_FILE).is_file():
        with contextlib.suppress(OSError):
            write_failed(node_dir(runs, nid), why, "(the runs folder could not be written)")
    reporter.finished(nid, "failed", was_running=False)


def run_grid(nodes: Sequence[Node], runs: Path, *, executor: str = "local", workers: int = 1,
             address: str | None = None, resources: Resources | None = None,
             progress: bool = True, stream: Any = None,
             on_done: Callable[[str], None] | None = None, verify_hashes: bool = False) -> RunSummary:
    """Run every node of ``nodes`` that is not done yet, honouring dependencies.

    ``nodes`` must be closed under dependencies (:func:`xlt_helpers.grid.select`
    guarantees it). Local: at most ``workers`` nodes at once. Ray: every ready
    node is submitted and Ray's resource accounting decides what runs.

    A finished node counts as done only if :func:`~xlt_helpers.runs.verify_node` passes (sizes
    always, sha256 with ``verify_hashes``); one that fails is named, moved aside and runs again.
    When the runs folder fills up or turns read-only, no further node starts: the nodes running
    end, the one that hit it is marked failed, and ``summary.stopped`` says why.
    """
    t_start = time.time()
    runs = Path(runs)
    summary = RunSummary()
    order = {n.id: (0 if n.phase == "intermediate" else 1, i) for i, n in enumerate(nodes)}
    by_id = {n.id: n for n in nodes}
    missing = {d for n in nodes for d in n.deps if d not in by_id}
    if missing:
        raise ValueError(f"nodes depend on ids outside the selection: {sorted(missing)}; use grid.select()")
    states: dict[str, str] = {}
    out = stream or sys.stdout
    for n in nodes:
        if node_state(runs, n.id) == "done":
            why = verify_node(node_dir(runs, n.id), hashes=verify_hashes)
            if why is not None:
                moved = move_aside(node_dir(runs, n.id))
                summary.moved_aside.append((n.id, why, moved))
                print(f"node {n.id} did not verify ({why}): moved aside to {moved.name}; it runs again",
                      file=out, flush=True)
                continue
            states[n.id] = "done"
            summary.already_done.append(n.id)
    # a done phase-1 node whose checkpoint was pruned (xlt clean --prune-checkpoints) runs again
    # when a dependent that is not done yet needs it
    for dep in {d for n in nodes if n.id not in states for d in n.deps}:
        if states.get(dep) == "done" and not (node_dir(runs, dep) / CHECKPOINT_DIR).exists():
            del states[dep]
            summary.already_done.remove(dep)
    todo = [n for n in nodes if n.id not in states]
    if not todo:
        summary.wall_s = time.time() - t_start
        return summary
    if executor not in ("local", "ray"):
        raise ValueError(f"unknown executor {executor!r}; expected 'local' or 'ray'")

    # One node's math threads per share of the cores: with 2 cores and 2 workers each node gets 1
    # thread. Oversubscribed OpenMP threads spin against each other and made small ops ~50x slower
    # here (tiny-mt5 generation: 0.38 s per decoding step). Children (and their kernels) inherit it.
    threads = (resources or Resources()).num_cpus if executor == "ray" else max(1, (os.cpu_count() or 1) // max(1, workers))
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(var, str(max(1, int(threads))))
    # bf16 nodes on a machine without native bf16: refused before they start, all named in one message,
    # so a study that mixes precisions resumes its fp32 nodes on any machine (issue 16, item 6)
    summary.not_here = [(n.id, why) for n in todo if (why := bf16_refusal(n.params)) is not None]
    if summary.not_here:
        print(f"{len(summary.not_here)} nodes not started on this machine: {summary.not_here[0][1]}. Run them on a "
              f"CPU with AVX512-BF16/AMX or a GPU (their finished dependencies are kept); the other nodes run. "
              f"First: {', '.join(nid for nid, _ in summary.not_here[:3])}", file=out, flush=True)
    reporter = ProgressReporter(len(nodes), workers, len(summary.already_done), enabled=progress, stream=stream)
    for nid, _ in summary.not_here:
        states[nid] = "skipped"
        summary.skipped.append(nid)
        reporter.finished(nid, "skipped", was_running=False)
    todo = [n for n in todo if n.id not in states]
    backend: Backend = (LocalBackend(runs) if executor == "local"
                        else RayBackend(runs, workers, resources or Resources(), address))
    limit = max(1, workers) if executor == "local" else len(todo)
    # local workers share this machine's memory: the guard keeps their expected peaks inside it (Ray has its own)
    guard = MemoryGuard(runs, nodes) if executor == "local" and limit > 1 else None
    running: set[str] = set()
    waiting = {n.id for n in todo}
    try:
        while waiting or running:
            # skip every waiting node with a failed or skipped dependency (transitively, by repetition)
            changed = True
            while changed:
                changed = False
                for nid in sorted(waiting, key=order.__getitem__):
                    if any(states.get(d) in ("failed", "skipped") for d in by_id[nid].deps):
                        waiting.discard(nid)
                        states[nid] = "skipped"
                        summary.skipped.append(nid)
                        reporter.finished(nid, "skipped", was_running=False)
                        changed = True
            ready = sorted((nid for nid in waiting if all(states.get(d) == "done" for d in by_id[nid].deps)),
                           key=order.__getitem__)
            for nid in ready if summary.stopped is None else []:
                if len(running) >= limit:
                    break
                why = guard.why_not(by_id[nid], [by_id[r] for r in running]) if guard is not None else None
                if why is not None:
                    if nid not in guard.announced:
                        guard.announced.add(nid)
                        print(f"{nid} waits for memory: {why}", file=out, flush=True)
                    continue
                waiting.discard(nid)
                try:
                    backend.submit(by_id[nid])
                except RunsFolderError as e:
                    _stop(summary, str(e), nid, runs, states, reporter)
                    break
                running.add(nid)
                reporter.started(nid)
            if not running:
                if waiting and summary.stopped is None:  # cannot happen with a closed DAG; guard against a silent hang
                    raise RuntimeError(f"no node can start: {sorted(waiting)} wait on unfinished dependencies")
                break
            finished = backend.wait(timeout=1.0)
            errors = getattr(backend, "folder_errors", [])   # a runner ended and its FAILED.json did not fit
            if errors:
                summary.stopped = summary.stopped or str(errors[0])
                errors.clear()
            for nid, state, wall in finished:
                running.discard(nid)
                if guard is not None:
                    guard.record(by_id[nid])
                states[nid] = state
                (summary.done if state == "done" else summary.failed).append(nid)
                reporter.finished(nid, state, wall)
                if state == "failed" and summary.stopped is None and disk_failure(runs, nid):
                    summary.stopped = (f"the runs folder {runs} is full or read-only: {nid} failed with "
                                       f"{first_error_line(runs, nid)}. Free space (or make it writable) "
                                       f"and run again: finished nodes are kept")
                if state == "done" and on_done is not None:
                    try:
                        on_done(nid)  # e.g. export to results/ at once, so a killed sitting loses nothing finished
                    except OSError as e:
                        if summary.stopped is None:
                            summary.stopped = (f"{nid} finished, but recording it failed: {e}. Free space "
                                               f"(or make the folder writable) and run again")
    finally:
        backend.close()
        reporter.close()
    if summary.stopped and waiting:
        summary.stopped += f" ({len(waiting)} nodes not started)"
    summary.wall_s = time.time() - t_start
    return summary
