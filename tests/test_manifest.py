"""Input data checked against the data folder's MANIFEST.sha256 and COUNTS.tsv (issue 13.4)."""
from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from xlt_helpers import manifest
from xlt_helpers.data import load_task
from xlt_helpers.manifest import DataIntegrityError, verify_files, verify_node_inputs

ROWS = ["Er geht.\tEr bewegt sich.\tentailment", "Sie lacht.\tSie weint.\tcontradiction",
        "Es regnet.\tDie Straße ist nass.\tneutral"]
REL = "xnli/dev-de.tsv"


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def data_folder(root: Path, rows: list[str] = ROWS, *, listed_rows: int | None = None) -> Path:
    """A data folder with one XNLI file, its manifest entry and its COUNTS.tsv row (``listed_rows``)."""
    body = "".join(r + "\r\n" for r in rows).encode("utf-8")
    (root / "xnli").mkdir(parents=True, exist_ok=True)
    (root / REL).write_bytes(body)
    (root / "MANIFEST.sha256").write_text(f"{sha(body)}  {REL}\n")
    n = len(rows) if listed_rows is None else listed_rows
    (root / "COUNTS.tsv").write_text(f"file\tunit\tcount\tdetail\n{REL}\trows\t{n}\teol=CRLF\n")
    return root


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XLT_CACHE_DIR", str(tmp_path / "cache"))


def test_an_intact_file_loads(tmp_path):
    root = data_folder(tmp_path / "data")
    assert load_task("xnli", "dev", "de", data_dir=root)["label"] == [0, 2, 1]


def test_a_file_cut_at_a_line_boundary_is_caught_naming_file_hashes_and_fix(tmp_path):
    root = data_folder(tmp_path / "data")
    expected = manifest.manifest(root)[REL]
    cut = "".join(r + "\r\n" for r in ROWS[:2]).encode()
    (root / REL).write_bytes(cut)                               # 2 of 3 rows: still a valid TSV
    with pytest.raises(DataIntegrityError) as e:
        load_task("xnli", "dev", "de", data_dir=root)
    msg = str(e.value)
    assert str(root / REL) in msg and expected in msg and sha(cut) in msg
    assert "cut short" in msg and "Fix:" in msg and "sha256sum -c MANIFEST.sha256" in msg


def test_counts_catch_a_cut_file_whose_manifest_was_regenerated(tmp_path):
    root = data_folder(tmp_path / "data", ROWS[:2], listed_rows=3)
    with pytest.raises(DataIntegrityError, match=r"dev-de.tsv: read 2 rows but .*COUNTS.tsv lists 3"):
        load_task("xnli", "dev", "de", data_dir=root)


def test_verification_is_cached_by_size_and_mtime(tmp_path, monkeypatch):
    root = data_folder(tmp_path / "data")
    calls = []
    real = manifest.sha256_file
    monkeypatch.setattr(manifest, "sha256_file", lambda p: calls.append(p) or real(p))
    verify_files(root, [REL])
    verify_files(root, [REL])
    assert len(calls) == 1                                      # the re-run costs a stat, not a hash
    assert (tmp_path / "cache" / manifest.CACHE_NAME).is_file()
    st = (root / REL).stat()
    os.utime(root / REL, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    verify_files(root, [REL])
    assert len(calls) == 2                                      # a touched file is hashed again


def test_unlisted_file_and_missing_manifest(tmp_path, monkeypatch):
    root = data_folder(tmp_path / "data")
    (root / "MANIFEST.sha256").write_text(f"{'0' * 64}  xnli/dev-fr.tsv\n")
    with pytest.raises(DataIntegrityError, match=r"dev-de.tsv: not listed in .*MANIFEST.sha256"):
        verify_files(root, [REL])
    (root / "MANIFEST.sha256").unlink()
    verify_files(root, [REL])                                   # load_task on a hand-made folder: unverified
    monkeypatch.setenv("XLT_DATA_DIR", str(root))
    with pytest.raises(DataIntegrityError, match="has no MANIFEST.sha256.*Fix: point XLT_DATA_DIR"):
        verify_node_inputs("target", {"target": "xnli", "eval_langs": ["de"]})   # a node refuses it
    monkeypatch.setenv("XLT_DATA_DIR", str(tmp_path / "none"))
    assert verify_node_inputs("target", {"target": "xnli", "eval_langs": ["de"]}) == []   # no folder: the hub


def test_malformed_manifest_line_names_the_line(tmp_path):
    with pytest.raises(DataIntegrityError, match=r"MANIFEST.sha256:2: expected '<sha256>  <path>'"):
        manifest.parse_manifest(f"{'a' * 64}  x.tsv\nnot a hash line\n", "MANIFEST.sha256")
    assert manifest.parse_manifest(f"{'A' * 64} *x.tsv\n", "m") == {"x.tsv": "a" * 64}   # binary-mode marker


def test_node_files_are_what_the_phases_read():
    assert manifest.node_files("intermediate", {"task": "squad"}) == ["english/squad/dev-v1.1.json"]
    assert manifest.node_files("target", {"target": "mlqa", "eval_langs": ["de"]}) == [
        "english/squad/dev-v1.1.json", "tydiqa/tydiqa-goldp-v1.1-train/tydiqa.goldp.en.train.json",
        "mlqa/MLQA_V1/dev/dev-context-de-question-de.json"]
    assert manifest.node_files("intermediate", {"task": "mnli"}) == []          # hub only: nothing local


@pytest.mark.shared_data
def test_the_shared_data_is_what_the_committed_study_read(shared_data):
    """Every file the cpu grid reads matches the shared data's manifest, whose entries equal the
    committed snapshot (so the committed run ids hold)."""
    from xlt_helpers.grid import build_grid
    from xlt_helpers.profiles import load_profile

    files = sorted({rel for n in build_grid(load_profile("cpu")) for rel in manifest.node_files(n.phase, n.params)})
    # XNLI test-en + 15 dev; MLQA's 2 training files + 7 dev; sst2, commonsenseqa 2 each; cosmosqa,
    # hellaswag 1 each (train and dev are one file, split by a seeded hash); squad's file is MLQA's training file
    assert len(files) == 16 + 9 + 6
    verify_files(shared_data, files, require_manifest=True)
    live, snap = manifest.manifest(shared_data), manifest.snapshot()
    assert {f: live[f] for f in files} == {f: snap[f] for f in files}
