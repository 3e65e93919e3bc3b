"""The data folder's manifest: every local file a node reads is checked against it, and its entries
enter the node's run id.

The shared data ships ``MANIFEST.sha256`` (``sha256sum`` format) and ``COUNTS.tsv`` (records per file).
Without a check, an XNLI file cut at a line boundary loaded 1,000 of 2,490 rows without a word and the
node kept its run id while its scores changed. So:

* :func:`verify_files` compares each file's sha256 with the manifest before it is read. The hash is
  cached per file by (size, mtime) in ``<cache dir>/data-verified.json``, so re-runs cost one ``stat``
  per file. A mismatch names the file, the expected and actual hash, and the fix.
* :func:`check_count` compares the records a reader produced with ``COUNTS.tsv`` (where its unit is a
  record: rows, examples, questions, sentences), which catches a cut file even when someone
  regenerated the manifest after cutting it.
* :func:`changed_entries` is what a run id hashes: the manifest entries of the files a node reads
  that differ from :data:`SNAPSHOT`, the committed copy of the manifest the study was made with. Same
  data adds nothing to the hash (committed ids hold); a changed file moves the ids of exactly the
  nodes that read it.

Hub-sourced data has no manifest: nothing is verified here and nothing enters the run id (the hub
reference is fixed in :mod:`xlt_helpers.tasks`; ``datasets`` checks its own downloads).
A local folder without ``MANIFEST.sha256`` is read unverified by :func:`~xlt_helpers.data.load_task`
(e.g. a test's hand-made folder), but a grid node refuses it (:func:`verify_node_inputs`).

No heavy imports: the grid computes run ids with this module.
"""
from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from .files import sha256_file
from .paths import DataError, DataFileMissing, cache_dir, data_dir
from .tasks import TASKS

MANIFEST_NAME = "MANIFEST.sha256"
COUNTS_NAME = "COUNTS.tsv"
#: The manifest entries the committed study (results/) was made with: a copy of the shared data's
#: MANIFEST.sha256 at the time. Entries equal to these add nothing to run ids.
SNAPSHOT = Path(__file__).resolve().parent / "resources" / "data_manifest.sha256"
#: COUNTS.tsv units that count the records a reader yields (not "lines" of Tatoeba, which no task reads)
RECORD_UNITS = ("rows", "examples", "questions", "sentences")
CACHE_NAME = "data-verified.json"


class DataIntegrityError(DataError):
    """A data file that differs from what the data folder's manifest or counts say it is."""


# ------------------------------------------------------------------ reading the manifest
def parse_manifest(text: str, source: str) -> dict[str, str]:
    """``sha256sum`` output (``<64 hex>  <path>``, ``*`` marks binary mode) -> {path: sha256}."""
    out: dict[str, str] = {}
    for i, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        sha, sep, rel = line.partition(" ")
        rel = rel.lstrip(" ").removeprefix("*")
        if not sep or len(sha) != 64 or not rel or any(c not in "0123456789abcdef" for c in sha.lower()):
            raise DataIntegrityError(f"{source}:{i}: expected '<sha256>  <path>' as sha256sum writes it, got {line!r:.120}")
        out[rel] = sha.lower()
    return out


def manifest(root: Path) -> dict[str, str] | None:
    """The manifest of data folder ``root`` ({relative path: sha256}), None when it has none. Read
    afresh each time (17 kB, well under a millisecond): a cache keyed by mtime can miss a quick edit."""
    path = Path(root) / MANIFEST_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    return parse_manifest(text, str(path))


@lru_cache(maxsize=1)
def snapshot() -> dict[str, str]:
    return parse_manifest(SNAPSHOT.read_text(encoding="utf-8"), str(SNAPSHOT))


def _parse_counts(text: str, path: str) -> dict[str, tuple[str, int]]:
    out: dict[str, tuple[str, int]] = {}
    lines = text.splitlines()
    for i, line in enumerate(lines[1:], 2):          # header: file, unit, count, detail
        parts = line.split("\t")
        if len(parts) < 3 or not parts[2].isdigit():
            raise DataIntegrityError(f"{path}:{i}: expected 'file<TAB>unit<TAB>count<TAB>detail', got {line!r:.120}")
        out[parts[0]] = (parts[1], int(parts[2]))
    return out


def counts(root: Path) -> dict[str, tuple[str, int]]:
    """COUNTS.tsv of ``root`` ({relative path: (unit, count)}); empty when it has none."""
    path = Path(root) / COUNTS_NAME
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    return _parse_counts(text, str(path))


# ------------------------------------------------------------------ verification
def _cache_path() -> Path:
    return cache_dir() / CACHE_NAME


def _load_cache() -> dict[str, Any]:
    try:
        obj = json.loads(_cache_path().read_text(encoding="utf-8"))
        return obj if isinstance(obj, dict) else {}
    except (FileNotFoundError, json.JSONDecodeError):     # a lost or torn cache only costs a re-hash
        return {}


def _save_cache(cache: dict[str, Any]) -> None:
    path = _cache_path()
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")   # concurrent nodes: last writer wins, never torn
    tmp.write_text(json.dumps(cache, sort_keys=True), encoding="utf-8")
    tmp.replace(path)


def _fix(root: Path) -> str:
    return (f"Fix: restore the file from the shipped data (copy it again, then check the folder with "
            f"`cd {root} && sha256sum -c {MANIFEST_NAME}`); if the change is deliberate, regenerate "
            f"{MANIFEST_NAME} and {COUNTS_NAME} with the data's verification script (the nodes that read "
            f"the file then get new run ids)")


def verify_files(root: Path, rels: Sequence[str], *, require_manifest: bool = False) -> None:
    """Check each file ``root/rel`` against ``root``'s manifest; raise :class:`DataIntegrityError` on
    the first that differs or is not listed. Without a manifest: an error if ``require_manifest``,
    else nothing is checked."""
    root = Path(root)
    entries = manifest(root)
    if entries is None:
        if require_manifest:
            raise DataIntegrityError(
                f"data folder {root} has no {MANIFEST_NAME}, so the files a node reads cannot be verified. "
                f"Fix: point XLT_DATA_DIR at the shipped data (it has one), or write one with "
                f"`cd {root} && sha256sum <the data files> > {MANIFEST_NAME}`")
        return
    cache, dirty = _load_cache(), False
    for rel in rels:
        path = root / rel
        if rel not in entries:
            raise DataIntegrityError(f"{path}: not listed in {root / MANIFEST_NAME}, so it cannot be verified. "
                                     f"{_fix(root)}")
        try:
            st = path.stat()
        except FileNotFoundError:
            raise DataFileMissing(f"{path}: listed in {root / MANIFEST_NAME} but missing. {_fix(root)}") from None
        key = str(path.resolve())
        seen = cache.get(key)
        if isinstance(seen, dict) and seen.get("size") == st.st_size and seen.get("mtime_ns") == st.st_mtime_ns:
            actual = seen.get("sha256")
        else:
            actual = sha256_file(path)
            cache[key] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": actual}
            dirty = True
        if actual != entries[rel]:
            if dirty:
                _save_cache(cache)
            raise DataIntegrityError(
                f"{path}: sha256 {actual} ({st.st_size:,} bytes) differs from {entries[rel]} in "
                f"{root / MANIFEST_NAME}: the file was changed or cut short. {_fix(root)}")
    if dirty:
        _save_cache(cache)


def check_count(root: Path, rel: str, n_records: int) -> None:
    """Raise when a reader produced ``n_records`` from ``root/rel`` but COUNTS.tsv lists another count."""
    entry = counts(root).get(rel)
    if entry is None or entry[0] not in RECORD_UNITS:
        return
    unit, expected = entry
    if n_records != expected:
        raise DataIntegrityError(f"{Path(root) / rel}: read {n_records:,} {unit} but {Path(root) / COUNTS_NAME} "
                                 f"lists {expected:,}: the file is incomplete or was changed. {_fix(Path(root))}")


# ------------------------------------------------------------------ what a node reads
def node_inputs(phase: str, params: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(task, split, language) of every dataset a node loads (as :mod:`xlt_helpers.pipeline` does):
    phase 1 its task's English train and dev, phase 2 its target's English train and the dev split
    of every evaluation language."""
    if phase == "intermediate":
        return [(params["task"], "train", "en"), (params["task"], "dev", "en")]
    target = params["target"]
    langs = params.get("eval_langs", "all")
    if langs in (None, "all"):
        langs = TASKS[target].langs_for("dev")
    elif isinstance(langs, str):
        langs = [langs]
    return [(target, "train", "en"), *((target, "dev", lang) for lang in langs)]


def node_files(phase: str, params: Mapping[str, Any]) -> list[str]:
    """The local files (relative to the data folder) a node reads, in order, each once; hub-only
    splits have none."""
    out: list[str] = []
    for task, split, lang in node_inputs(phase, params):
        spec = TASKS.get(task)
        src = spec.splits.get(split) if spec else None
        for rel in (src.local_files(lang) if src else ()):
            if rel not in out:
                out.append(rel)
    return out


def changed_entries(phase: str, params: Mapping[str, Any]) -> dict[str, str | None]:
    """What a run id hashes of the node's data: {file: manifest sha256} for the files whose entry
    differs from :data:`SNAPSHOT` (None = not in the manifest). Empty when the data is what the
    committed study was made with, when there is no data folder or it has no manifest (the node then
    reads the hub, or refuses to run: :func:`verify_node_inputs`)."""
    try:
        root = data_dir()
    except DataFileMissing:
        return {}
    entries = manifest(root)
    if entries is None:
        return {}
    old = snapshot()
    return {rel: entries.get(rel) for rel in node_files(phase, params) if entries.get(rel) != old.get(rel)}


def verify_node_inputs(phase: str, params: Mapping[str, Any]) -> list[str]:
    """Before a node trains: every local file it reads matches the data folder's manifest (which must
    exist). Returns the files checked; none when there is no data folder (the loaders then use the hub)."""
    try:
        root = data_dir()
    except DataFileMissing:
        return []
    rels = [rel for rel in node_files(phase, params)]
    verify_files(root, rels, require_manifest=True)
    return rels
