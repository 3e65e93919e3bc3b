"""One finished grid node, read back for the per-run report notebook (notebooks/03_report.ipynb).

A node folder (``runs/<id>/`` or ``results/nodes/<id>/``) holds ``metrics.json`` (written by
:mod:`xlt_helpers.pipeline`), and when the grid ran it also ``node.json`` (its parameters) and
``DONE.json`` (wall time). The report's most useful comparison is a phase-2 run against the
no-intermediate baseline trained with the same settings and seed: that baseline is found among
the sibling folders by parameters, never by name, so a renamed or re-hashed folder still matches.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from .tasks import NONE_TASK, primary_metric


def load_node(node_dir: str | Path) -> dict[str, Any]:
    """``metrics.json`` of a finished node plus ``params`` (node.json) and ``wall_s`` (DONE.json) when present.

    Raises FileNotFoundError naming the folder when it has no metrics.json (not run, still running
    or failed: ``xlt status`` says which).
    """
    d = Path(node_dir)
    path = d / "metrics.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: {d} is not a finished node (still running, failed or "
                                "never run; `xlt status` lists the grid's nodes and their folders)")
    out = json.loads(path.read_text())
    out["dir"] = str(d)
    node = d / "node.json"
    out["params"] = json.loads(node.read_text())["params"] if node.is_file() else {}
    done = d / "DONE.json"
    out["wall_s"] = json.loads(done.read_text()).get("wall_s") if done.is_file() else None
    return out


def comparison_key(metrics: dict[str, Any]) -> tuple:
    """What must be equal for two phase-2 runs to be compared: model, target, seed, hyperparameters,
    training-set size and the evaluated languages and sizes (everything but the intermediate task)."""
    return (metrics.get("model"), metrics.get("target"), metrics.get("seed"),
            json.dumps(metrics.get("config", {}), sort_keys=True),
            metrics.get("train", {}).get("train_examples"),
            tuple(sorted((lang, s.get("n")) for lang, s in metrics.get("scores", {}).items())))


def find_baseline(node_dir: str | Path) -> Path | None:
    """The sibling folder holding this phase-2 node's no-intermediate baseline, or None.

    A baseline is a finished phase-2 run whose :func:`comparison_key` equals this run's and whose
    intermediate task is "none". It is matched on what metrics.json records, not on folder names,
    so hand-made runs (papermill into any folder) are matched as well as grid nodes.
    """
    d = Path(node_dir)
    me = load_node(d)
    if me.get("phase") != "target" or me.get("intermediate") == NONE_TASK:
        return None
    want = comparison_key(me)
    for other in sorted(p for p in d.parent.iterdir() if p.is_dir() and p != d):
        path = other / "metrics.json"
        if not path.is_file():
            continue
        m = json.loads(path.read_text())
        if m.get("phase") == "target" and m.get("intermediate") == NONE_TASK and comparison_key(m) == want:
            return other
    return None


def language_table(metrics: dict[str, Any], baseline: dict[str, Any] | None = None) -> pd.DataFrame:
    """Per-language primary score of a phase-2 node, with the baseline's score and the difference.

    Rows in the order the run evaluated them, English first; ``delta`` is run − baseline in the
    metric's points (positive: the intermediate task helped that language).
    """
    metric = primary_metric(metrics["target"])
    scores = metrics["scores"]
    langs = sorted(scores, key=lambda lang: (lang != "en", lang))
    rows = []
    for lang in langs:
        row = {"lang": lang, metric: scores[lang][metric], "n": scores[lang].get("n")}
        if baseline is not None:
            b = baseline["scores"].get(lang, {}).get(metric)
            row["baseline"] = b
            row["delta"] = None if b is None else scores[lang][metric] - b
        rows.append(row)
    return pd.DataFrame(rows)


def node_summary(metrics: dict[str, Any]) -> pd.Series:
    """The facts a reader checks first: what ran, on what, how long, on which device."""
    t = metrics.get("train", {})
    out = {"model": metrics.get("model"), "stands for": metrics.get("stands_for", "–"),
           "phase": metrics.get("phase"), "intermediate task": metrics.get("intermediate", metrics.get("task")),
           "target": metrics.get("target", "–"), "seed": metrics.get("seed"),
           "train examples": t.get("train_examples"), "steps": t.get("steps"),
           "tokens/s": None if t.get("tokens_per_s") is None else round(t["tokens_per_s"]),
           "train s": None if t.get("train_wall_s") is None else round(t["train_wall_s"], 1),
           "node wall s": metrics.get("wall_s"), "peak RSS MB": round(metrics.get("peak_rss_mb") or 0),
           "device": metrics.get("device")}
    return pd.Series(out, name="")
