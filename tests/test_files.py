"""The atomic writers: a reader sees the old file or the whole new one, never a part."""
from __future__ import annotations

import json

import pytest

from xlt_helpers import files as R


def test_write_json_atomic_replaces_whole_file_and_leaves_no_temp(tmp_path):
    path = tmp_path / "sub" / "metrics.json"
    R.write_json_atomic(path, {"a": 1})
    R.write_json_atomic(path, {"b": [1, 2]})
    assert json.loads(path.read_text()) == {"b": [1, 2]}
    R.write_bytes_atomic(tmp_path / "w.bin", b"\x00\x01")
    assert (tmp_path / "w.bin").read_bytes() == b"\x00\x01"
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["metrics.json", "sub", "w.bin"]


def test_atomic_write_failure_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "DONE.json"
    R.write_json_atomic(path, {"old": True})

    def boom(src, dst):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(R.os, "replace", boom)
    with pytest.raises(OSError, match="simulated"):
        R.write_json_atomic(path, {"new": True})
    assert json.loads(path.read_text()) == {"old": True}
    assert [p.name for p in tmp_path.iterdir()] == ["DONE.json"]     # the temp file was removed
