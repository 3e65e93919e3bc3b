"""What machine this is: the CPU's name and feature flags, its measured matmul peak and GEMM rates.

One place for these facts: the bench records them beside every ratio, every node records
which device trained it, and bf16 (training or evaluation) is refused on a CPU without native bf16
(the flags): by the trainer inside a node, and by ``xlt run`` before it starts such a node.
Nothing here imports torch at module level.
"""
from __future__ import annotations

import math
import platform
import time
from pathlib import Path

CPUINFO = Path("/proc/cpuinfo")
MEMINFO = Path("/proc/meminfo")
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16")  # /proc/cpuinfo flags of CPUs that compute bf16 natively
PRECISION_FIELDS = ("precision", "eval_precision")   # the node parameters that can ask for bf16


def _proc_field(path: Path, name: str) -> str | None:
    """The value of the first ``name : value`` line of a ``/proc`` file (None where there is none)."""
    try:
        for line in path.read_text().splitlines():
            if line.startswith(name):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def _cpuinfo_field(name: str) -> str | None:
    """The value of the first ``name : value`` line of ``/proc/cpuinfo`` (None where there is none)."""
    return _proc_field(CPUINFO, name)


def cpu_model_name() -> str:
    """The CPU's model name (Linux ``/proc/cpuinfo``), else what :mod:`platform` knows (e.g. x86_64)."""
    return _cpuinfo_field("model name") or platform.processor() or platform.machine()


def mem_total_mb() -> float | None:
    """This machine's memory in MB (``MemTotal`` of ``/proc/meminfo``), None where it cannot be read."""
    value = _proc_field(MEMINFO, "MemTotal:")    # "24041236 kB"
    try:
        return int(value.split()[0]) / 1024 if value else None
    except (ValueError, IndexError):
        return None


def cpu_flags() -> set[str]:
    """The feature flags of this CPU (``/proc/cpuinfo``; empty where there is no such file)."""
    flags = _cpuinfo_field("flags")
    return set(flags.split()) if flags else set()


def gemm_flops(m: int, k: int, n: int, *, batch: int = 1, ta: bool = False, tb: bool = False, dtype: str = "fp32",
               repeats: int = 5, min_s: float = 0.0) -> float:
    """Best FLOP/s of ``A (m × k) @ B (k × n)`` at ``dtype`` (fp32 or bf16) in this process: 2 m k n FLOPs
    per product, ``batch`` products per call (``torch.bmm``; ``torch.mm`` when 1). ``ta``/``tb``: pass that
    operand as a transposed view, as autograd does (``x @ Wᵀ``, ``dyᵀ @ x``).

    One warm-up call first (thread pool, caches, the kernel's set-up). Each of ``repeats`` timings runs
    the product back to back until it lasts ``min_s`` (once when 0: a large product times well alone;
    a small one takes microseconds, below what one timer read resolves well); the best timing counts."""
    import torch
    dt = {"fp32": torch.float32, "bf16": torch.bfloat16}[dtype]
    lead = (batch,) if batch > 1 else ()
    a = torch.randn(*lead, k, m, dtype=dt).transpose(-1, -2) if ta else torch.randn(*lead, m, k, dtype=dt)
    b = torch.randn(*lead, n, k, dtype=dt).transpose(-1, -2) if tb else torch.randn(*lead, k, n, dtype=dt)
    product = torch.bmm if batch > 1 else torch.mm
    product(a, b)
    calls = 1
    if min_s > 0:                      # how many back-to-back products fill min_s (timed after the warm-up)
        t0 = time.perf_counter()
        product(a, b)
        calls = max(1, math.ceil(min_s / max(time.perf_counter() - t0, 1e-9)))
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(calls):
            product(a, b)
        best = min(best, (time.perf_counter() - t0) / calls)
    return 2.0 * m * k * n * batch / best


def matmul_flops(n: int = 2048, dtype: str = "fp32", repeats: int = 5) -> float:
    """Best FLOP/s of an ``n × n`` matmul at ``dtype`` (fp32 or bf16) in this process: the peak every
    efficiency of the bench is measured against (one warm-up first, then the best single product)."""
    return gemm_flops(n, n, n, dtype=dtype, repeats=repeats)


def native_bf16() -> tuple[bool, str]:
    """(does this machine compute bf16 natively, the reason in words). A CUDA GPU does; a CPU does with
    one of :data:`BF16_CPU_FLAGS`; elsewhere torch emulates bf16, about 20x slower than fp32."""
    import torch
    if torch.cuda.is_available():
        return True, f"CUDA GPU ({torch.cuda.get_device_name(0)})"
    have = sorted(cpu_flags() & set(BF16_CPU_FLAGS))
    if have:
        return True, f"CPU flags {', '.join(have)}"
    return False, (f"this CPU has none of the flags {', '.join(BF16_CPU_FLAGS)} in /proc/cpuinfo "
                   "(and no CUDA GPU is visible)")


def asks_bf16(value: object) -> bool:
    """Whether a precision value computes in bf16 (``bf16``, ``bf16-fp32head``): the one rule that decides
    autocast, the native-bf16 check and which precisions a machine without native bf16 may run."""
    return str(value).startswith("bf16")


def bf16_refusal(params: dict) -> str | None:
    """Why this machine cannot run a node with these parameters (it asks for bf16 in a
    :data:`PRECISION_FIELDS` field and the machine has no native bf16), else None. A study whose nodes use
    bf16 then resumes its fp32 nodes on any machine and names the rest, instead of failing them one by one."""
    asked = [f for f in PRECISION_FIELDS if asks_bf16(params.get(f, ""))]
    if not asked:
        return None
    ok, why = native_bf16()
    return None if ok else f"{' and '.join(f'{f}: {params[f]}' for f in asked)} needs native bf16, but {why}"
