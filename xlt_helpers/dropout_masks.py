"""Where dropout's random masks come from while a phase trains (``TrainConfig.dropout_rng``).

On a CPU, torch draws every dropout mask with its Bernoulli kernel (``aten::bernoulli_``: ``F.dropout``,
``nn.Dropout`` and the attention-probability dropout inside ``scaled_dot_product_attention`` all reach it),
and that kernel is slow: 1.3-2.0 ms for one 16 x 42 x 384 activation, about 8% of an e5-L12 training step
on 2 cores (torch.profiler, 2026-12-01), more than every op but the matmuls. ``pcg64`` draws the same
Bernoulli masks from NumPy's PCG64 generator instead (16-bit uniform integers, about 6x faster), seeded by the
node's seed, so a run is as reproducible as with torch's generator.

What changes: the masks are other random draws, so the training numerics change (a new run id,
``grid.HASH_OMIT_DEFAULTS``), and the keep probability is rounded to 1/65536: dropout p = 0.1 keeps a unit
with probability 58982/65536 = 0.899994 instead of 0.9 (``at::dropout`` still rescales by 1/0.9, a bias of
7e-6 of the activation). What does not: which ops draw masks, where, and with what p.

How: for the duration of :func:`pcg64_bernoulli`, ``aten::bernoulli_.float`` on CPU tensors is served by a
Python kernel registered with ``torch.library`` (the mechanism torch offers for replacing an operator's kernel
on one dispatch key); on leaving, the registration is removed and torch's kernel serves again. Only that
overload (a scalar p, what dropout calls) is replaced; GPU tensors never reach it (a GPU draws its masks
with Philox, fast already, and ``train.check_dropout_rng`` refuses ``pcg64`` there).
"""
from __future__ import annotations

import contextlib
import threading
import warnings
from collections.abc import Iterator

import numpy as np

#: resolution of a pcg64 Bernoulli draw: one uniform 16-bit integer per mask element
LEVELS = 1 << 16

_active = threading.Lock()          # one replacement at a time: the registration is process-wide


def one_threshold(p: float) -> int:
    """Integers below which a uniform draw in ``[0, LEVELS)`` means 1: ``round(p * LEVELS)``, so a draw is 1
    with probability ``one_threshold(p) / LEVELS``, p to within 1/131072."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"a Bernoulli probability must lie in [0, 1], got p={p!r}")
    return int(round(p * LEVELS))


def bernoulli_mask(shape: tuple[int, ...], p: float, rng: np.random.Generator) -> np.ndarray:
    """A boolean array of ``shape``, each element True with probability ``one_threshold(p) / LEVELS``."""
    n = int(np.prod(shape, dtype=np.int64))
    return (rng.integers(0, LEVELS, n, dtype=np.uint16) < one_threshold(p)).reshape(shape)


@contextlib.contextmanager
def pcg64_bernoulli(seed: int) -> Iterator[np.random.Generator]:
    """Serve ``Tensor.bernoulli_(p)`` on CPU tensors from PCG64 seeded with ``seed`` inside the block
    (dropout's masks; see the module docstring). Yields the generator. Not reentrant: the kernel is the
    process's, so a second block while one is open raises rather than silently sharing or undoing it."""
    import torch
    if not _active.acquire(blocking=False):
        raise RuntimeError("pcg64_bernoulli is already active in this process: its aten::bernoulli_ kernel is "
                           "process-wide, so blocks cannot nest or overlap; leave the first block before opening another")
    rng = np.random.Generator(np.random.PCG64(seed))

    def bernoulli_(self: torch.Tensor, p: float = 0.5, *, generator: torch.Generator | None = None) -> torch.Tensor:
        if generator is not None:
            raise RuntimeError("bernoulli_ with an explicit torch.Generator inside pcg64_bernoulli: the masks come "
                               "from PCG64 here (TrainConfig.dropout_rng='pcg64'); use dropout_rng='torch' for code "
                               "that brings its own generator")
        return self.copy_(torch.from_numpy(bernoulli_mask(tuple(self.shape), p, rng)))

    lib = torch.library.Library("aten", "IMPL")
    try:
        with warnings.catch_warnings():      # torch warns that an existing kernel is overridden: that is the point
            warnings.simplefilter("ignore", UserWarning)
            lib.impl("bernoulli_.float", bernoulli_, "CPU")
        yield rng
    finally:
        lib._destroy()                       # torch.library's own way to drop a registration (its tests use it)
        _active.release()
