"""Shared test setup: offline hub, and the ``shared_data`` marker/fixture.

Tests that read the real benchmark data ask for the ``shared_data`` fixture (the
data folder as a Path) or carry ``@pytest.mark.shared_data``; both skip with the
reason when the folder is absent, so the suite passes on a bare checkout and CI
(which has ``../shared/data``) runs everything.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

# The hub is unreachable here: fail fast instead of retrying the network.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _shared_data_dir() -> tuple[Path | None, str]:
    from xlt_helpers.paths import DataFileMissing, data_dir

    try:
        return data_dir(), ""
    except DataFileMissing as e:
        return None, f"benchmark data not found ({e})"


def pytest_runtest_setup(item: pytest.Item) -> None:
    if item.get_closest_marker("shared_data") is not None:
        found, reason = _shared_data_dir()
        if found is None:
            pytest.skip(reason)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real data folder (``$XLT_DATA_DIR`` or ``../shared/data``); skips the test if absent."""
    found, reason = _shared_data_dir()
    if found is None:
        pytest.skip(reason)
    return found
