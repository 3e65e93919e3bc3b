"""Where the benchmark data and the caches live, and what goes wrong finding them.

The data folder is resolved in one place so that notebooks, tests and the CLI
agree: an explicit argument wins, then ``$XLT_DATA_DIR``, then ``../shared/data``
beside the checkout (the layout CI and ``make`` use). A missing folder is an
error that names every way to provide the data, never a silent fallback.

The data-layer errors are defined here (the lowest module of the layer) and
re-exported by :mod:`xlt_helpers.data`, so every layer raises the same types.
"""
from __future__ import annotations

import os
from pathlib import Path

DATA_ENV = "XLT_DATA_DIR"
CACHE_ENV = "XLT_CACHE_DIR"


class DataError(ValueError):
    """Any problem with the study's data: missing, malformed or leaking."""


class DataFileMissing(DataError, FileNotFoundError):
    """A data folder or file that should exist does not."""


def repo_root() -> Path:
    """The checkout's root (the folder holding ``xlt_helpers/``)."""
    return Path(__file__).resolve().parents[1]


def default_data_dir() -> Path:
    """``<repo>/../shared/data``: where CI and ``make`` put the benchmark data."""
    return (repo_root().parent / "shared" / "data").resolve()


def pin_data_env() -> None:
    """Make a relative ``$XLT_DATA_DIR`` absolute against the current directory, in ``os.environ``: the processes
    started from here run in other folders (a papermill kernel in its node's folder), where ``../shared/data``
    names nothing, or another folder. ``xlt`` calls it first thing (a bench node once failed this way)."""
    value = os.environ.get(DATA_ENV)
    if value and not Path(value).expanduser().is_absolute():
        os.environ[DATA_ENV] = str(Path(value).expanduser().resolve())


def data_dir(explicit: str | os.PathLike | None = None) -> Path:
    """The benchmark data folder: ``explicit`` > ``$XLT_DATA_DIR`` > ``<repo>/../shared/data``.

    Whichever of these is chosen must exist; a named folder that does not exist
    is an error rather than a fall-through, because silently reading another
    copy of the data would be worse than stopping.
    """
    if explicit is not None:
        chosen, origin = Path(explicit).expanduser(), "the data_dir argument"
    elif os.environ.get(DATA_ENV):
        chosen, origin = Path(os.environ[DATA_ENV]).expanduser(), f"${DATA_ENV}"
    else:
        chosen, origin = default_data_dir(), "the default location beside the checkout"
    chosen = chosen.resolve()
    if not chosen.is_dir():
        raise DataFileMissing(
            f"benchmark data folder {chosen} (from {origin}) does not exist. Fix: set {DATA_ENV} "
            f"(or pass data_dir=) to a folder in XTREME's download layout, e.g. the shared data "
            f"at {default_data_dir()}; or load from the Hugging Face hub with source='hub' "
            f"(needs network)."
        )
    return chosen


def cache_dir() -> Path:
    """``$XLT_CACHE_DIR`` or ``<repo>/.cache`` (git-ignored), created on first use."""
    env = os.environ.get(CACHE_ENV)
    path = Path(env).expanduser() if env else repo_root() / ".cache"
    path.mkdir(parents=True, exist_ok=True)
    return path.resolve()
