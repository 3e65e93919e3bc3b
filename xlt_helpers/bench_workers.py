"""What ``xlt bench`` runs in a fresh process (sections 4 and 5): one node, one forked node, an
import, a Jupyter kernel; and the worker side, entered as ``python -m xlt_helpers.bench node|fork ...``.

A fresh process per point is the measurement: peak RSS (``VmHWM``) is per process, and the
orchestration overhead is what a runner route costs over a direct call, imports included. A
worker prints one ``BENCH {json}`` line; the parent reads it back.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from .bench import TARGET
from .paths import repo_root
from .tasks import NONE_TASK

if TYPE_CHECKING:
    from .grid import Node


def _subprocess_env() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("HF_HUB_OFFLINE", "1")
    env.setdefault("HF_DATASETS_OFFLINE", "1")
    env.setdefault("TOKENIZERS_PARALLELISM", "false")
    return env


def vmhwm_mb() -> float:
    """Peak resident set of this process (``VmHWM`` in /proc/self/status), in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM line in /proc/self/status: peak RSS needs Linux")


def node_params(model: str, train_n: int, eval_n: int, eval_langs: tuple[str, ...], **hp: Any) -> dict[str, Any]:
    """run_target keyword arguments of one XNLI baseline node (no intermediate task)."""
    return {"model": model, "target": TARGET, "intermediate": NONE_TASK, "seed": 0, "init_from": "",
            "train_n": train_n, "eval_n": eval_n, "eval_langs": list(eval_langs), "epochs": 1.0,
            "batch_size": 16, "max_length": 128, **hp}   # the cpu profile's XNLI settings


def tiling_load_task(load_task: Callable) -> Callable:
    """``load_task`` that serves a training set larger than the file by repeating it (scaling only:
    XNLI English has 5010 training pairs and the sweep goes to 8000; cost per example is what matters)."""
    def wrapped(task, split, lang="en", *, n=None, seed=0, **kw):
        if split == "train" and n is not None:
            full = load_task(task, split, lang, seed=seed, **kw)
            if n > len(full):
                from datasets import concatenate_datasets
                reps = -(-n // len(full))
                return concatenate_datasets([full] * reps).select(range(n))
        return load_task(task, split, lang, n=n, seed=seed, **kw)
    return wrapped


# ------------------------------------------------------------------ the worker side (in the fresh process)
def node_worker(params: dict[str, Any]) -> dict[str, Any]:
    """Run one phase-2 node in *this* (fresh) process; wall of run_target and VmHWM."""
    from .data import load_task
    from .pipeline import run_target
    t0 = time.perf_counter()
    m = run_target(**params, load=tiling_load_task(load_task))
    wall = time.perf_counter() - t0
    return {"node_wall_s": wall, "train_wall_s": m["train"]["train_wall_s"], "eval_wall_s": m["eval_wall_s"],
            "tokens_per_s": m["train"]["tokens_per_s"], "vocab_size": m["train"]["vocab_size"],
            "peak_rss_mb": vmhwm_mb()}


def fork_worker(node_json: dict[str, Any], runs: str) -> dict[str, Any]:
    """In this process: preload papermill (as the executor's parent does), fork the node, wait."""
    import papermill  # noqa: F401
    from .grid import Node
    from .runs import DONE_FILE, fork_node
    node = Node.from_json(node_json)
    t0 = time.perf_counter()
    pid = fork_node(node, Path(runs))
    _, status = os.waitpid(pid, 0)
    wall = time.perf_counter() - t0
    ok = os.waitstatus_to_exitcode(status) == 0 and (Path(runs) / node.id / DONE_FILE).is_file()
    if not ok:
        raise RuntimeError(f"forked node {node.id} failed; see {Path(runs) / node.id}")
    return {"wall_s": wall}


def main(argv: list[str] | None = None) -> int:
    """``python -m xlt_helpers.bench node '<json>'``: the fresh-process worker of items 4-5."""
    args = sys.argv[1:] if argv is None else argv
    if len(args) == 2 and args[0] == "node":
        print("BENCH " + json.dumps(node_worker(json.loads(args[1]))), flush=True)
        return 0
    if len(args) == 3 and args[0] == "fork":
        print("BENCH " + json.dumps(fork_worker(json.loads(args[1]), args[2])), flush=True)
        return 0
    print("usage: python -m xlt_helpers.bench node '<run_target kwargs as JSON>' | fork '<node JSON>' RUNS_DIR "
          "(the workers of items 4-5; use `xlt bench` for the suite)",
          file=sys.stderr)
    return 2


# ------------------------------------------------------------------ the parent side
def _bench_worker(args: list[str], what: str, timeout: float) -> tuple[dict[str, Any], float]:
    """Run ``python -m xlt_helpers.bench <args>`` fresh; its ``BENCH {json}`` line and the process wall."""
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xlt_helpers.bench", *args],
                          capture_output=True, text=True, env=_subprocess_env(), cwd=str(repo_root()), timeout=timeout)
    wall = time.perf_counter() - t0
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("BENCH ")]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"{what} failed (exit {proc.returncode}):\n{proc.stderr[-3000:]}")
    return json.loads(lines[-1][6:]), wall


def run_node_subprocess(params: dict[str, Any], timeout: float = 900) -> dict[str, Any]:
    """:func:`node_worker` in a fresh interpreter (peak RSS per configuration); adds the process wall."""
    out, wall = _bench_worker(["node", json.dumps(params)], f"bench node worker for {params}", timeout)
    return {**out, "process_wall_s": wall}


def _grid_node(params: dict[str, Any]) -> "Node":
    """The phase-2 grid node that runs ``params`` (run_target kwargs) through the target notebook."""
    from .grid import PHASE_NOTEBOOKS, Node, run_id
    nb = str(repo_root() / "notebooks" / PHASE_NOTEBOOKS["target"])
    p = {k: v for k, v in params.items() if k not in ("init_from", "out_dir")}
    return Node(run_id("target", p), "target", nb, p, [])


def run_papermill_subprocess(params: dict[str, Any], runs: Path, timeout: float = 900) -> float:
    """The same node through the grid's runner (``python -m xlt_helpers.runs``: papermill + kernel)."""
    from .runs import DONE_FILE, FAILED_FILE, prepare_node_dir
    node = _grid_node(params)
    d = prepare_node_dir(node, runs)
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "xlt_helpers.runs", str(d)], capture_output=True, text=True,
                          env=_subprocess_env(), cwd=str(repo_root()), timeout=timeout)
    wall = time.perf_counter() - t0
    if proc.returncode != 0 or not (d / DONE_FILE).is_file():
        err = (d / FAILED_FILE).read_text()[:3000] if (d / FAILED_FILE).is_file() else proc.stderr[-3000:]
        raise RuntimeError(f"papermill run of {node.id} failed (exit {proc.returncode}): {err}")
    return wall


def run_forked_subprocess(params: dict[str, Any], runs: Path, timeout: float = 900) -> float:
    """The same node as ``xlt run``'s local executor runs it: a parent that has papermill imported
    forks a child per node (:func:`runs.fork_node`). Timed inside that parent, from fork to exit."""
    node = _grid_node(params)
    out, _ = _bench_worker(["fork", json.dumps(node.to_json()), str(runs)], f"forked run of {node.id}", timeout)
    return float(out["wall_s"])


def fresh_import_s(module: str, reps: int = 2) -> float:
    """Seconds a fresh interpreter spends importing ``module`` (best of ``reps``, interpreter start excluded)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    best = float("inf")
    for _ in range(reps):
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=_subprocess_env())
        if out.returncode == 0:
            best = min(best, float(out.stdout.strip().splitlines()[-1]))
    return best


def kernel_start_stop_s(reps: int = 2) -> float:
    """Seconds to start a python3 Jupyter kernel, wait until it answers, and shut it down (best of ``reps``)."""
    from jupyter_client.manager import start_new_kernel
    best = float("inf")
    for _ in range(reps):
        t0 = time.perf_counter()
        km, kc = start_new_kernel(kernel_name="python3")
        kc.stop_channels()
        km.shutdown_kernel(now=False)
        best = min(best, time.perf_counter() - t0)
    return best
