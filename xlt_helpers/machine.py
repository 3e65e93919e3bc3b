"""What machine this is: the CPU's name and feature flags, and its measured matmul peak.

One place for these facts: the bench records them beside every ratio, every node records
which device trained it, and bf16 training is refused on a CPU without native bf16 (the flags).
Nothing here imports torch at module level.
"""
from __future__ import annotations

import platform
import time
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name : value`` line of ``/proc/cpuinfo`` (None where there is none)."""
    try:
        for line in CPUINFO.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows (e.g. x86_64)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def cpu_flags() -> set[str]:
    """The feature flags of this CPU (``/proc/cpuinfo``; empty where there is no such file)."""
    flags = _cpuinfo_field("flags")
    return set(flags.split()) if flags else set()


def matmul_flops(n: int = 2048, dtype: str = "fp32", repeats: int = 5) -> float:
    """Best FLOP/s of an ``n × n`` matmul at ``dtype`` (fp32 or bf16) in this process (2 n³ FLOPs
    per product; one warm-up first for the thread pool and caches)."""
    import torch
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    a, b = torch.randn(n, n, dtype=dt), torch.randn(n, n, dtype=dt)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        torch.mm(a, b)
        best = min(best, time.perf_counter() - t0)
    return 2.0 * n ** 3 / best
