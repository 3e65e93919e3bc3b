"""The committed results store: finished grid nodes, and the tidy tables the book reads.

``runs/`` (git-ignored) holds everything a node wrote, checkpoints included.
``results/`` (committed) holds the small, durable part of every finished node,

    results/nodes/<run-id>/{node.json, DONE.json, metrics.json, predictions.jsonl.gz}
    results/runs/<run-id>.ipynb                     the executed notebook (per-run appendix)

and the tidy tables made from them (:func:`write_tables` writes them, :func:`load_results`
reads them back for the book's pages; :mod:`xlt_helpers.robustness` takes them from there):

    results/scores.csv            one row per (target run, language, metric)
    results/per_example.csv.gz    one row per (language, example, metric), one column per target run
    results/intermediate.csv      one row per phase-1 run: English dev score, chance, V-information
    results/meta.json             device, versions, wall times, node counts

Why both: a long study runs in sittings on machines that do not keep ``runs/``.
:func:`restore` copies exported nodes back into ``runs/`` so ``xlt run`` treats
them as done and resumes where the last sitting stopped (a phase-1 node whose
checkpoint was not kept is re-run only if a pending phase-2 node needs it).
Restoring verifies every committed node (:func:`xlt_helpers.runs.verify_node`,
sha256 included) and refuses a bad one by name; every file read or written
here names itself when that fails (:class:`ResultsError`, or an ``OSError``
whose message holds the path).

Scores and per-example values are on one 0..100 scale, as ``xlt_helpers.evaluate`` writes them
into a node's files: the tables take them as they are, and the mean of a run's per-example values
in a language is its score (classification and QA; a tagging score counts words, not sentences).
"""
from __future__ import annotations

import gzip
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Iterator

from .grid import major_minor

if TYPE_CHECKING:
    import pandas as pd   # imported where used: `xlt run` on a finished grid must not pay for it
from .paths import repo_root
from .files import write_bytes_atomic
from .runs import DONE_FILE, METRICS_FILE, NODE_FILE, RECORDS_KEY, file_records, verify_node

PREDICTIONS = "predictions.jsonl.gz"
# the columns of the tidy tables as read from their files, before load_results joins the run keys on
# (robustness.SCORE_COLUMNS / PER_EXAMPLE_COLUMNS: as analysed); scores.csv is written in these columns
SCORES_FILE_COLUMNS: tuple[str, ...] = ("run_id", "family", "model", "size", "intermediate", "target", "seed",
                                        "lang", "metric", "score", "n")
PER_EXAMPLE_FILE_COLUMNS: tuple[str, ...] = ("run_id", "lang", "example_id", "metric", "value")
# ... but per_example.csv.gz is written wide (per_example_wide / per_example_long): these key columns, then one
# column per target run (an empty cell: the run did not evaluate that example). Long, the 40-character example
# ids repeat on every run's row (7.5 MB for the 105-node study, rewritten at every node commit); wide, every run
# shares them (0.57 MB).
PER_EXAMPLE_KEYS: tuple[str, ...] = ("lang", "example_id", "metric")
# the scores columns that describe a run; load_results joins them onto every per-example row
RUN_COLUMNS: tuple[str, ...] = ("family", "model", "size", "intermediate", "target", "seed")
KEPT = (NODE_FILE, DONE_FILE, METRICS_FILE, PREDICTIONS)


class ResultsError(ValueError):
    """A file of the results store that cannot be read as what it should be; the message names it."""


def read_json(path: Path) -> Any:
    """``path`` parsed, or :class:`ResultsError` naming the file and the cause."""
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as e:
        raise ResultsError(f"{path}: cannot read it as JSON ({type(e).__name__}: {e}). Fix: restore the file "
                           f"(e.g. git checkout -- {path}) or regenerate it") from None


def read_csv(path: Path) -> pd.DataFrame:
    """A tidy table (csv, or csv.gz), or :class:`ResultsError` naming the file and the cause."""
    import pandas as pd
    try:
        return pd.read_csv(path)
    except (OSError, UnicodeDecodeError, ValueError, EOFError) as e:   # pandas' ParserError is a ValueError
        raise ResultsError(f"{path}: cannot read it as a table ({type(e).__name__}: {e}). Fix: restore the file "
                           f"(e.g. git checkout -- {path}) or regenerate it (xlt run writes the tables)") from None


def _write(path: Path, data: bytes) -> Path:
    """Atomic write whose error names the file (an OSError with its errno kept: ENOSPC stops a grid)."""
    try:
        return write_bytes_atomic(path, data)
    except OSError as e:
        raise OSError(e.errno, f"{e.strerror or e} (writing {path})") from e


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
        if not (src / DONE_FILE).is_file() or verify_node(src) is not None:   # unfinished, damaged, moved aside
            continue
        if (dst / DONE_FILE).is_file() and verify_node(dst, hashes=True) is None:
            continue
        try:
            (dst / DONE_FILE).unlink(missing_ok=True)   # a committed copy that does not verify is replaced
            dst.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise OSError(e.errno, f"{e.strerror or e} (writing {dst})") from e
        for name in (NODE_FILE, METRICS_FILE, PREDICTIONS):
            if (src / name).is_file():
                _write(dst / name, (src / name).read_bytes())
        for nb in src.glob("0*.ipynb"):
            _write(results / "runs" / f"{rid}.ipynb", nb.read_bytes())
        _write(dst / DONE_FILE, (src / DONE_FILE).read_bytes())  # last: marks the export complete
        done.append(rid)
    return done


def restore(results: Path, runs: Path, refused: list[tuple[str, str]] | None = None) -> list[str]:
    """Copy exported nodes that ``runs`` lacks back into it (so the grid sees them as done).

    Every committed node is verified first (sha256 where its DONE.json records files); one that
    fails is not restored and goes into ``refused`` as (id, "file: cause"), so it counts as not
    done instead of being trusted and crashing a later step."""
    restored = []
    nodes = Path(results) / "nodes"
    if not nodes.is_dir():
        return restored
    for src in sorted(nodes.iterdir()):
        dst = Path(runs) / src.name
        if not (src / DONE_FILE).is_file():
            continue
        why = verify_node(src, hashes=True)
        if why is not None:
            if refused is not None:
                refused.append((src.name, why))
            continue
        if (dst / DONE_FILE).is_file():
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
    meta = read_json(path)
    if not isinstance(meta, dict):
        raise ResultsError(f"{path}: expected a JSON object, got {type(meta).__name__}")
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
    try:
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return [json.loads(line) for line in f]
    except (OSError, EOFError, UnicodeDecodeError, ValueError) as e:
        raise ResultsError(f"{path}: cannot read it as gzipped JSON lines ({type(e).__name__}: {e}). Fix: restore "
                           f"the file (e.g. git checkout -- {path}) or re-run the node") from None


def _finished_nodes(results: Path, ids: Iterable[str] | None = None) -> Iterator[Path]:
    """Folders of ``results/nodes`` whose export completed (DONE.json), only ``ids`` when given."""
    keep = None if ids is None else set(ids)
    for d in sorted((Path(results) / "nodes").glob("*/")):
        if (d / DONE_FILE).is_file() and (keep is None or d.name in keep):
            yield d


def tidy_tables(results: Path, ids: Iterable[str] | None = None) -> dict[str, pd.DataFrame]:
    """scores / per_example / intermediate tables from ``results/nodes`` (only ``ids`` when given:
    nodes of an older version of a profile stay in the store but not in its tables)."""
    import pandas as pd
    scores, per_ex, inter = [], [], []
    for d in _finished_nodes(results, ids):
        m = read_json(d / METRICS_FILE)
        rid = d.name
        try:
            _tidy_rows(m, rid, scores, inter)
        except (KeyError, TypeError, AttributeError) as e:
            raise ResultsError(f"{d / METRICS_FILE}: not the metrics of a phase node ({type(e).__name__}: {e}). "
                               f"Fix: restore the file (e.g. git checkout -- {d}) or re-run the node") from None
        if m["phase"] != "intermediate" and (d / PREDICTIONS).is_file():
            try:
                per_ex += [{"run_id": rid, "lang": r["lang"], "example_id": r["example_id"],
                            "metric": r["metric"], "value": r["value"]}
                           for r in _read_rows(d / PREDICTIONS)]
            except (KeyError, TypeError) as e:
                raise ResultsError(f"{d / PREDICTIONS}: a row lacks a field of the per-example format "
                                   f"({type(e).__name__}: {e}). Fix: restore the file or re-run the node") from None
    return {"scores": pd.DataFrame(scores), "per_example": pd.DataFrame(per_ex), "intermediate": pd.DataFrame(inter)}


def _tidy_rows(m: dict[str, Any], rid: str, scores: list[dict[str, Any]], inter: list[dict[str, Any]]) -> None:
    """The scores / intermediate rows of one node's metrics.json."""
    size = m["train"].get("params_total")
    if m["phase"] == "intermediate":
        inter.append({"run_id": rid, "model": m["model"], "intermediate": m["task"], "seed": m["seed"],
                      "metric": m["metric"], "score": m["dev"][m["metric"]], "chance": m["chance"],
                      "n": m["n_dev"], "v_info_bits": m.get("v_information_bits")})
        return
    for lang, vals in m["scores"].items():
        for metric, score in vals.items():
            if metric != "n":
                scores.append({"run_id": rid, "family": m["family"], "model": m["model"], "size": size,
                               "intermediate": m["intermediate"], "target": m["target"], "seed": m["seed"],
                               "lang": lang, "metric": metric, "score": score, "n": vals["n"]})


def write_tables(results: Path, profile: str | None = None, ids: Iterable[str] | None = None) -> dict[str, int]:
    """Write the tidy tables (of ``ids``, default all nodes) and meta.json into ``results``; returns row counts."""
    results = Path(results)
    t = tidy_tables(results, ids)
    counts = {k: len(v) for k, v in t.items()}
    if t["scores"].empty:
        return counts
    _write(results / "scores.csv", t["scores"].to_csv(index=False).encode())
    wide = per_example_wide(t["per_example"], results / "nodes")
    _write(results / "per_example.csv.gz", gzip.compress(wide.to_csv(index=False).encode(), mtime=0))
    if not t["intermediate"].empty:
        _write(results / "intermediate.csv", t["intermediate"].to_csv(index=False).encode())
    _write(results / "meta.json", (json.dumps(meta(results, profile, ids), indent=2, sort_keys=True) + "\n").encode())
    return counts


def per_example_wide(long: pd.DataFrame, source: Path | str = "the per-example rows") -> pd.DataFrame:
    """The long per-example table (:data:`PER_EXAMPLE_FILE_COLUMNS`) as written to disk: one row per
    :data:`PER_EXAMPLE_KEYS` in order of first appearance, one column per run in order of first appearance.

    Pure and lossless (:func:`per_example_long` inverts it): a duplicated (run, key) row or a missing value
    would not survive the round trip, so both are errors naming the run and ``source``."""
    import pandas as pd
    keys, cols = list(PER_EXAMPLE_KEYS), ["run_id", *PER_EXAMPLE_KEYS]
    if long.empty:
        return pd.DataFrame(columns=keys)
    dup = long.duplicated(cols)
    if dup.any():
        r = long[dup].iloc[0]
        raise ResultsError(f"{source}: run {r['run_id']} has more than one value for (lang={r['lang']}, "
                           f"example_id={r['example_id']}, metric={r['metric']}). Fix: re-run that node, whose "
                           f"{PREDICTIONS} should hold one row per example and metric")
    missing = long["value"].isna()
    if missing.any():
        r = long[missing].iloc[0]
        raise ResultsError(f"{source}: run {r['run_id']} has no value for (lang={r['lang']}, example_id="
                           f"{r['example_id']}, metric={r['metric']}) ({int(missing.sum())} such rows). Fix: "
                           f"re-run that node")
    wide = long.set_index(cols)["value"].unstack("run_id")
    wide = wide.reindex(pd.MultiIndex.from_frame(long[keys].drop_duplicates()))
    return wide[list(dict.fromkeys(long["run_id"]))].reset_index().rename_axis(columns=None)


def per_example_long(wide: pd.DataFrame, path: Path | str) -> pd.DataFrame:
    """:func:`per_example_wide` undone: the long table, run by run in column order, each run's rows in the
    file's row order, empty cells dropped. A table already long (``run_id`` column: files written before
    the wide format) is returned as it is."""
    if "run_id" in wide.columns:
        _require(wide, PER_EXAMPLE_FILE_COLUMNS, Path(path))
        return wide
    _require(wide, PER_EXAMPLE_KEYS, Path(path))
    runs = [c for c in wide.columns if c not in PER_EXAMPLE_KEYS]
    bad = [c for c in runs if wide[c].dtype.kind not in "fiu"]
    if bad:
        raise ResultsError(f"{path}: run column(s) {bad[:3]} hold non-numbers; every column after "
                           f"{list(PER_EXAMPLE_KEYS)} is one run's per-example values. Fix: restore it (git "
                           f"checkout -- {path}) or rewrite it from the nodes beside it with "
                           f"xlt_helpers.results.write_tables")
    long = wide.melt(id_vars=list(PER_EXAMPLE_KEYS), value_vars=runs, var_name="run_id", value_name="value")
    long = long.dropna(subset=["value"]).astype({"value": "float64"})
    return long[list(PER_EXAMPLE_FILE_COLUMNS)].reset_index(drop=True)


def meta(results: Path, profile: str | None, ids: Iterable[str] | None = None) -> dict[str, Any]:
    """Which device produced the results, with which versions, in how much wall time."""
    devices, walls, by_model = set(), [], {}
    trained: dict[str, set[str]] = {}
    evaluated: dict[str, set[str]] = {}
    for d in _finished_nodes(results, ids):
        m = read_json(d / METRICS_FILE)
        model, cfg = m.get("model", "unknown"), m.get("config", {})
        devices.add(m.get("device", "unknown"))
        by_model.setdefault(model, set()).add(m.get("device", "unknown"))
        # a node from before the precision fields existed computed in fp32 (grid.HASH_OMIT_DEFAULTS)
        trained.setdefault(model, set()).add(cfg.get("precision", "fp32"))
        if m.get("phase") == "target":                 # the scores the book reports are phase 2's evaluations
            evaluated.setdefault(model, set()).add(cfg.get("eval_precision", "fp32"))
        walls.append(read_json(d / DONE_FILE).get("wall_s", 0.0))
    import platform

    import torch
    import transformers
    return {"profile": profile, "device": "; ".join(sorted(devices)) or "unknown", "devices": sorted(devices),
            # per model, so a book mixing CPU and GPU runs labels each model with what trained it
            "devices_by_model": {k: sorted(v) for k, v in sorted(by_model.items())},
            # per model, so the book says which arithmetic produced each model's numbers
            "precision_by_model": {k: {"training": sorted(v), "evaluation": sorted(evaluated.get(k, ()))}
                                   for k, v in sorted(trained.items())},
            "nodes": len(walls),
            "node_wall_s_total": round(sum(walls), 1), "python": platform.python_version(),
            "torch": torch.__version__, "transformers": transformers.__version__}


NODE_TIME_COLUMNS = ["id", "model", "phase", "intermediate", "target", "seed", "wall_s", "finished_at", "device"]


def node_times(results: Path, ids: Iterable[str] | None = None) -> pd.DataFrame:
    """One row per finished node of ``results/nodes`` (only ``ids`` when given): what it was (node.json) and
    the wall time its run took (DONE.json), the measured side of a study's budget."""
    import pandas as pd
    rows = []
    for d in _finished_nodes(results, ids):
        node, done = read_json(d / NODE_FILE), read_json(d / DONE_FILE)
        params = node.get("params", {})
        rows.append({"id": d.name, "model": params.get("model"), "phase": node.get("phase"),
                     "intermediate": params.get("intermediate", params.get("task")), "target": params.get("target"),
                     "seed": params.get("seed"), "wall_s": float(done.get("wall_s", float("nan"))),
                     "finished_at": done.get("finished_at"),
                     "device": read_json(d / METRICS_FILE).get("device", "unknown")})
    return pd.DataFrame(rows, columns=NODE_TIME_COLUMNS)


def threads_of(device: str) -> int | None:
    """The thread count in a node's device string ("CPU: <model>, 1 threads"), None where it names none."""
    import re
    m = re.search(r"(\d+) threads?\b", device or "")
    return int(m.group(1)) if m else None


def budget_table(planned: pd.DataFrame, times: pd.DataFrame, budget_hours: float | None = None,
                 cores: int = 2, retired: Iterable = ()) -> pd.DataFrame:
    """Per (model, phase, target) of the ``planned`` nodes (``id, model, phase, target``): nodes planned and
    done, the measured hours of those done, the median node minutes, and the hours the rest would take at
    that median (NaN where no node of the group is done yet), then a total row with ``budget_hours``.

    Hours are *machine* hours of a ``cores``-core machine: a node's wall time times the share of the cores it
    ran on (its device string's thread count; all of them where it names none). Two one-thread nodes side by
    side on two cores thus cost one machine-hour per hour, as the budget means. The rest is extrapolated, not
    measured: the column says so, and it is 0 once the study is complete.

    ``retired`` (``profiles.Retired``: nodes, machine_hours, reason) adds a row per batch of nodes that
    were run and then replaced: not in the plan, so not in the total's node counts, but their hours were
    spent and the total's measured hours include them."""
    import numpy as np
    import pandas as pd
    keys = ["model", "phase", "target"]
    plan = planned.assign(target=planned["target"].fillna("–"))
    share = [min(t, cores) / cores if t else 1.0 for t in (threads_of(d) for d in times["device"])]
    done = plan.merge(times[["id", "wall_s"]].assign(machine_s=times["wall_s"] * share), on="id", how="inner")
    rows = []
    for key, g in plan.groupby(keys, sort=False):
        d = done.merge(g[["id"]], on="id")
        med = float(d["machine_s"].median()) if len(d) else np.nan
        left = len(g) - len(d)
        rows.append({**dict(zip(keys, key)), "nodes": len(g), "done": len(d),
                     "measured_h": float(d["machine_s"].sum()) / 3600,
                     "median_node_min": float(d["wall_s"].median()) / 60 if len(d) else np.nan,
                     "rest_h_extrapolated": (left * med / 3600) if left else 0.0})
    out = pd.DataFrame(rows, columns=[*keys, "nodes", "done", "measured_h", "median_node_min", "rest_h_extrapolated"])
    gone = pd.DataFrame([{"model": "retired", "phase": "replaced", "target": "–", "nodes": r.nodes, "done": r.nodes,
                          "measured_h": float(r.machine_hours), "median_node_min": np.nan, "rest_h_extrapolated": 0.0}
                         for r in retired], columns=out.columns)
    total = {"model": "total", "phase": "", "target": "", "nodes": int(out["nodes"].sum()),
             "done": int(out["done"].sum()), "measured_h": float(out["measured_h"].sum() + gone["measured_h"].sum()),
             "median_node_min": np.nan, "rest_h_extrapolated": float(out["rest_h_extrapolated"].sum(min_count=1))
             if out["rest_h_extrapolated"].notna().all() else np.nan}
    out = pd.concat([out, *([gone] if len(gone) else []), pd.DataFrame([total])], ignore_index=True)
    out["budget_h"] = [budget_hours if m == "total" else np.nan for m in out["model"]]
    return out


def verify_store(results: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """(ids that verify, [(id, "file: cause")] of those that do not) over ``results/nodes``, sha256 included."""
    good, bad = [], []
    for d in _finished_nodes(results):
        why = verify_node(d, hashes=True)
        (bad.append((d.name, why)) if why else good.append(d.name))
    return good, bad


def record_hashes(results: Path) -> list[str]:
    """Add the size and sha256 of every file to committed DONE.json files written before DONE.json
    recorded them, so restoring checks them byte for byte from then on. Only nodes that verify are
    recorded (a bad one raises :class:`ResultsError` naming it: its bytes must not be blessed). The
    other fields of DONE.json stay as they are, and run ids do not change (DONE.json is not hashed).
    Returns the ids updated."""
    results = Path(results)
    _good, bad = verify_store(results)
    if bad:
        rid, why = bad[0]
        raise ResultsError(f"{results / 'nodes' / rid}: {why}; not recording hashes of a node that does not "
                           f"verify ({len(bad)} such). Fix: restore it (e.g. git checkout -- {results / 'nodes' / rid})")
    updated = []
    for d in _finished_nodes(results):
        done = read_json(d / DONE_FILE)
        if RECORDS_KEY in done:
            continue
        done[RECORDS_KEY] = file_records(d)
        _write(d / DONE_FILE, (json.dumps(done, indent=2, sort_keys=True) + "\n").encode())
        updated.append(d.name)
    return updated


# ------------------------------------------------------------------ reading the tidy tables back
@dataclass(frozen=True)
class Results:
    """The tidy result tables of one results directory (``None`` where a file is absent)."""

    dir: Path
    scores: pd.DataFrame
    per_example: pd.DataFrame | None      # RUN_COLUMNS joined on from scores, as robustness expects
    intermediate: pd.DataFrame | None
    meta: dict | None
    runs: tuple[Path, ...]                # runs/<run_id>.ipynb of the runs in scores / intermediate


def _require(df: pd.DataFrame, columns: tuple[str, ...], path: Path) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{path} lacks column(s) {missing} (has {list(df.columns)}); the results format is "
                         f"{list(columns)} — regenerate it with the study's collect step.")


def load_results(directory: str | os.PathLike | None = None) -> Results | None:
    """Read ``scores.csv`` (+ ``per_example.csv.gz``, ``intermediate.csv``, ``meta.json``, ``runs/``).

    Returns None when ``scores.csv`` is absent: the pages then say
    :data:`xlt_helpers.analysis.NO_RESULTS` rather than inventing numbers. A present but
    malformed file is an error.
    """
    d = results_dir(directory)
    scores_path = d / "scores.csv"
    if not scores_path.is_file():
        return None
    scores = read_csv(scores_path)
    _require(scores, SCORES_FILE_COLUMNS, scores_path)
    per_example = None
    pe_path = d / "per_example.csv.gz"
    if pe_path.is_file():
        per_example = per_example_long(read_csv(pe_path), pe_path)
        keys = scores[["run_id", *RUN_COLUMNS]].drop_duplicates("run_id")
        unknown = sorted(set(per_example["run_id"]) - set(keys["run_id"]))
        if unknown:
            raise ValueError(f"{pe_path}: run_id(s) {unknown[:5]} have no row in {scores_path}; "
                             f"the two files come from different collections — regenerate both.")
        per_example = per_example.merge(keys, on="run_id", how="left")
    inter_path = d / "intermediate.csv"
    intermediate = read_csv(inter_path) if inter_path.is_file() else None
    meta_path = d / "meta.json"
    meta = read_json(meta_path) if meta_path.is_file() else None
    if meta is not None and not isinstance(meta, dict):
        raise ResultsError(f"{meta_path}: expected a JSON object, got {type(meta).__name__}")
    # the executed notebooks of the runs these tables hold: the store keeps those of older versions of a
    # profile too (their nodes stay in results/nodes), but the book shows only what its numbers come from
    shown = set(scores["run_id"]) | (set(intermediate["run_id"]) if intermediate is not None else set())
    runs = tuple(p for p in sorted((d / "runs").glob("*.ipynb")) if p.stem in shown)
    return Results(d, scores, per_example, intermediate, meta, runs)
