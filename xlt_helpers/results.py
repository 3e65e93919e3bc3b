"""The committed results store: finished grid nodes, and the tidy tables the book reads.

``runs/`` (git-ignored) holds everything a node wrote, checkpoints included.
``results/`` (committed) holds the small, durable part of every finished node,

    results/nodes/<run-id>/{node.json, DONE.json, metrics.json, predictions.jsonl.gz}
    results/runs/<run-id>.ipynb                     the executed notebook (per-run appendix)

and the tidy tables made from them (the formats of :mod:`xlt_helpers.book` and
:mod:`xlt_helpers.robustness`):

    results/scores.csv            one row per (target run, language, metric)
    results/per_example.csv.gz    one row per (target run, language, example, metric)
    results/intermediate.csv      one row per phase-1 run: English dev score, chance, V-information
    results/meta.json             device, versions, wall times, node counts

Why both: a long study runs in sittings on machines that do not keep ``runs/``.
:func:`restore` copies exported nodes back into ``runs/`` so ``xlt run`` treats
them as done and resumes where the last sitting stopped (a phase-1 node whose
checkpoint was not kept is re-run only if a pending phase-2 node needs it).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator

import pandas as pd

from .grid import major_minor
from .paths import repo_root
from .runs import DONE_FILE, METRICS_FILE, NODE_FILE, write_bytes_atomic, write_json_atomic

PREDICTIONS = "predictions.jsonl.gz"
KEPT = (NODE_FILE, DONE_FILE, METRICS_FILE, PREDICTIONS)
# per-example values on the scale robustness.PER_EXAMPLE_SCALE expects: accuracy 0/1, f1 and em 0..100
_TO_SCALE = {"accuracy": 0.01, "f1": 100.0, "em": 100.0}


def results_dir(explicit: str | os.PathLike | None = None) -> Path:
    """Where results live (and the book reads them): ``explicit`` > ``$XLT_RESULTS_DIR`` > ``<repo>/results``."""
    if explicit is not None:
        return Path(explicit).expanduser().resolve()
    env = os.environ.get("XLT_RESULTS_DIR")
    return Path(env).expanduser().resolve() if env else repo_root() / "results"


def export(runs: Path, results: Path, ids: Iterable[str] | None = None) -> list[str]:
    """Copy the durable files of every finished node in ``runs`` (or of ``ids``) into ``results``.

    Returns the ids exported now. Metrics are copied as written; the log history stays (it
    draws the loss curves). Idempotent: an already exported node is left alone."""
    runs, results = Path(runs), Path(results)
    done = []
    candidates = ids if ids is not None else (p.name for p in sorted(runs.iterdir()) if p.is_dir()) if runs.is_dir() else []
    for rid in candidates:
        src, dst = runs / rid, results / "nodes" / rid
        if not (src / DONE_FILE).is_file() or (dst / DONE_FILE).is_file():
            continue
        dst.mkdir(parents=True, exist_ok=True)
        for name in (NODE_FILE, METRICS_FILE, PREDICTIONS):
            if (src / name).is_file():
                write_bytes_atomic(dst / name, (src / name).read_bytes())
        for nb in src.glob("0*.ipynb"):
            (results / "runs").mkdir(parents=True, exist_ok=True)
            write_bytes_atomic(results / "runs" / f"{rid}.ipynb", nb.read_bytes())
        write_bytes_atomic(dst / DONE_FILE, (src / DONE_FILE).read_bytes())  # last: marks the export complete
        done.append(rid)
    return done


def restore(results: Path, runs: Path) -> list[str]:
    """Copy exported nodes that ``runs`` lacks back into it (so the grid sees them as done)."""
    restored = []
    nodes = Path(results) / "nodes"
    if not nodes.is_dir():
        return restored
    for src in sorted(nodes.iterdir()):
        dst = Path(runs) / src.name
        if not (src / DONE_FILE).is_file() or (dst / DONE_FILE).is_file():
            continue
        if dst.exists():
            shutil.rmtree(dst)  # an unfinished attempt: the exported result wins
        dst.mkdir(parents=True)
        for name in (NODE_FILE, METRICS_FILE, PREDICTIONS):
            if (src / name).is_file():
                shutil.copyfile(src / name, dst / name)
        shutil.copyfile(src / DONE_FILE, dst / DONE_FILE)
        restored.append(src.name)
    return restored


def version_mismatch(results: Path, profile: str, installed: dict[str, str]) -> dict[str, tuple[str, str]]:
    """``{framework: (in results, installed)}`` for every framework whose major.minor differs between
    the environment that wrote ``results``' tables for ``profile`` (meta.json) and ``installed``
    (``grid.framework_versions()``). Run ids hash those versions, so under a mismatch no committed
    node of the profile counts as done and the whole study would train again. Empty when meta.json
    is missing or was written for another profile."""
    path = Path(results) / "meta.json"
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text())
    if meta.get("profile") != profile:
        return {}
    out = {}
    for dist, here in installed.items():
        if meta.get(dist) is None:
            continue
        there = major_minor(str(meta[dist]))
        if there != here:
            out[dist] = (there, here)
    return out


def _read_rows(path: Path) -> list[dict[str, Any]]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def _finished_nodes(results: Path, ids: Iterable[str] | None = None) -> Iterator[Path]:
    """Folders of ``results/nodes`` whose export completed (DONE.json), only ``ids`` when given."""
    keep = None if ids is None else set(ids)
    for d in sorted((Path(results) / "nodes").glob("*/")):
        if (d / DONE_FILE).is_file() and (keep is None or d.name in keep):
            yield d


def tidy_tables(results: Path, ids: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """scores / per_example / intermediate tables from ``results/nodes`` (only ``ids`` when given:
    nodes of an older version of a profile stay in the store but not in its tables)."""
    scores, per_ex, inter = [], [], []
    for d in _finished_nodes(results, ids):
        m = json.loads((d / METRICS_FILE).read_text())
        rid = d.name
        size = m["train"].get("params_total")
        if m["phase"] == "intermediate":
            inter.append({"run_id": rid, "model": m["model"], "intermediate": m["task"], "seed": m["seed"],
                          "metric": m["metric"], "score": m["dev"][m["metric"]], "chance": m["chance"],
                          "n": m["n_dev"], "v_info_bits": m.get("v_information_bits")})
            continue
        for lang, vals in m["scores"].items():
            for metric, score in vals.items():
                if metric != "n":
                    scores.append({"run_id": rid, "family": m["family"], "model": m["model"], "size": size,
                                   "intermediate": m["intermediate"], "target": m["target"], "seed": m["seed"],
                                   "lang": lang, "metric": metric, "score": score, "n": vals["n"]})
        if (d / PREDICTIONS).is_file():
            for r in _read_rows(d / PREDICTIONS):
                per_ex.append({"run_id": rid, "lang": r["lang"], "example_id": r["example_id"],
                               "metric": r["metric"], "value": r["value"] * _TO_SCALE[r["metric"]]})
    return {"scores": pd.DataFrame(scores), "per_example": pd.DataFrame(per_ex), "intermediate": pd.DataFrame(inter)}


def write_tables(results: Path, profile: str | None = None, ids: Iterable[str] | None = None) -> dict[str, int]:
    """Write the tidy tables (of ``ids``, default all nodes) and meta.json into ``results``; returns row counts."""
    results = Path(results)
    t = tidy_tables(results, ids)
    counts = {k: len(v) for k, v in t.items()}
    if t["scores"].empty:
        return counts
    write_bytes_atomic(results / "scores.csv", t["scores"].to_csv(index=False).encode())
    write_bytes_atomic(results / "per_example.csv.gz", gzip.compress(t["per_example"].to_csv(index=False).encode(), mtime=0))
    if not t["intermediate"].empty:
        write_bytes_atomic(results / "intermediate.csv", t["intermediate"].to_csv(index=False).encode())
    write_json_atomic(results / "meta.json", meta(results, profile, ids))
    return counts


def meta(results: Path, profile: str | None, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """Which device produced the results, with which versions, in how much wall time."""
    devices, walls, by_model = set(), [], {}
    for d in _finished_nodes(results, ids):
        m = json.loads((d / METRICS_FILE).read_text())
        devices.add(m.get("device", "unknown"))
        by_model.setdefault(m.get("model", "unknown"), set()).add(m.get("device", "unknown"))
        walls.append(json.loads((d / DONE_FILE).read_text()).get("wall_s", 0.0))
    import platform

    import torch
    import transformers
    return {"profile": profile, "device": "; ".join(sorted(devices)) or "unknown", "devices": sorted(devices),
            # per model, so a book mixing CPU and GPU runs labels each model with what trained it
            "devices_by_model": {k: sorted(v) for k, v in sorted(by_model.items())},
            "nodes": len(walls),
            "node_wall_s_total": round(sum(walls), 1), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__}
