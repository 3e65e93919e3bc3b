"""Writing files so that a reader sees the old file or the whole new one, never a part.

Every marker, metrics file and tidy table of the study goes through these two writers: the grid
runner (:mod:`xlt_helpers.runs`), the training pipeline (:mod:`xlt_helpers.pipeline`) and the
results store (:mod:`xlt_helpers.results`). They live here, with nothing else, so that writing a
file does not import the papermill runner or the analysis.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one, never a part.

    The temp file lives in the same directory (``os.replace`` is atomic only
    within one filesystem) and is fsynced before the rename.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    return path


def write_json_atomic(path: str | os.PathLike, obj: Any) -> Path:
    """``obj`` as indented JSON, written atomically (see :func:`write_bytes_atomic`)."""
    return write_bytes_atomic(path, (json.dumps(obj, indent=2, sort_keys=True, default=_jsonable) + "\n").encode())


def _jsonable(o: Any) -> Any:
    """numpy scalars as numbers (not strings), anything else by its str()."""
    item = getattr(o, "item", None)
    if callable(item) and getattr(o, "shape", None) == ():
        return item()
    return str(o)


def sha256_file(path: Path, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks (checkpoints run to hundreds of MB): the one hash
    both the data manifest check and a finished node's file records use."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()
