"""The study as a DAG of notebook runs, each with a stable, content-addressed id.

Phase 1 (``intermediate``) trains a pretrained model on one English
intermediate task; phase 2 (``target``) fine-tunes on the English target task
(from the phase-1 checkpoint, or from the pretrained model for the ``none``
baseline) and evaluates zero-shot in every language.

A node's id is a readable slug plus a hash of everything that changes its
result: its fully resolved parameters, the ids of its dependencies (so a
changed phase-1 setting re-runs its phase-2 dependents), :data:`CODE_VERSION`,
the torch/transformers major.minor versions and the data manifest entries of
the files it reads. Two rules keep the committed study's ids: a parameter at
its :data:`HASH_OMIT_DEFAULTS` value and a data file whose entry equals the
committed snapshot (:data:`xlt_helpers.manifest.SNAPSHOT`) add nothing. The profile name is *not*
hashed, so identical nodes are shared between profiles and never recomputed.
"""
from __future__ import annotations

import fnmatch
import hashlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any, Literal

import yaml

from . import hparams, manifest
from .models import MODELS
from .paths import repo_root
from .profiles import NONE_TASK, Profile
from .tasks import TASKS

#: Bump when code that changes results changes (training loop, featurization, metrics):
#: every run id changes with it, so old results are never mistaken for new ones.
CODE_VERSION = 1

Phase = Literal["intermediate", "target"]
PHASE_NOTEBOOKS: dict[str, str] = {"intermediate": "01_intermediate.ipynb", "target": "02_target.ipynb"}
HASH_CHARS = 10

#: Node parameters that entered the run-id hash after the committed study was made: a parameter
#: whose value equals its entry here is left out of the hashed payload, so the committed nodes keep
#: their ids; any other value enters the hash and moves the id. Each value is the one every committed
#: node ran with (read from ``config`` in each of the 98 results/nodes/*/metrics.json, or, for a
#: parameter added after the study, the behaviour every committed node had).
HASH_OMIT_DEFAULTS: dict[str, Any] = {
    # the notebooks' default and TrainConfig's: no committed node passed one
    "weight_decay": 0.0,
    # the notebooks' default and TrainConfig's: word embeddings frozen in every committed node
    "freeze_word_embeddings": True,
    # the notebooks' default (TrainConfig's was 64 but never reached a node; it is 32 now)
    "eval_batch_size": 32,
    # the notebooks' default and TrainConfig's (jiant/HF run_qa.py use 30 too)
    "max_answer_length": 30,
    "gradient_accumulation_steps": 1,     # one micro-batch per optimizer step
    "gradient_checkpointing": False,      # activations kept, not recomputed
    "precision": "fp32",                  # training arithmetic (hparams.TrainConfig.precision)
    "eval_precision": "fp32",             # evaluation arithmetic (hparams.TrainConfig.eval_precision)
    "torch_compile": False,               # the model trained uncompiled (hparams.TrainConfig.torch_compile)
    "dropout_rng": "torch",               # torch's dropout masks (hparams.TrainConfig.dropout_rng)
}


@dataclass
class Node:
    """One notebook execution: ``params`` are exactly what papermill injects (plus
    ``out_dir`` and ``init_from``, which depend on where the runs live)."""

    id: str
    phase: Phase
    notebook: str
    params: dict[str, Any]
    deps: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_json(cls, obj: dict[str, Any]) -> Node:
        return cls(id=obj["id"], phase=obj["phase"], notebook=obj["notebook"],
                   params=dict(obj["params"]), deps=list(obj.get("deps", [])))


@lru_cache(maxsize=1)
def major_minor(version: str) -> str:
    """"2.13.0+cpu" -> "2.13": the part of a version that run ids hash (a local build label and
    patch releases do not change results enough to re-run a study)."""
    return ".".join(version.split("+")[0].split(".")[:2])


def framework_versions() -> dict[str, str]:
    """torch / transformers major.minor, read from package metadata (importing torch takes seconds)."""
    out = {}
    for dist in ("torch", "transformers"):
        try:
            out[dist] = major_minor(metadata.version(dist))
        except metadata.PackageNotFoundError:
            out[dist] = "absent"
    return out


def canonical_json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "-", text).strip("-")


def run_id(phase: Phase, params: dict[str, Any], deps: Sequence[str] = ()) -> str:
    """``p1-<model>-<task>-s<seed>-<hash>`` or ``p2-<model>-<intermediate>-<target>-s<seed>-<hash>``."""
    if phase == "intermediate":
        slug = f"p1-{params['model']}-{params['task']}-s{params['seed']}"
    elif phase == "target":
        slug = f"p2-{params['model']}-{params['intermediate']}-{params['target']}-s{params['seed']}"
    else:
        raise ValueError(f"unknown phase {phase!r}; expected 'intermediate' or 'target'")
    hashed = {k: v for k, v in params.items() if not _at_historical_default(k, v)}
    payload = {"phase": phase, "params": hashed, "deps": sorted(deps), "code_version": CODE_VERSION,
               "versions": framework_versions()}
    task = TASKS.get(params.get("target") or params.get("task"))       # the task this node trains
    recipe = (MODELS[params["model"]].weight_recipe(generated_targets=task is not None and task.generated_targets)
              if params.get("model") in MODELS else {})
    if recipe:
        payload["weight_recipe"] = recipe
    data = manifest.changed_entries(phase, params)
    if data:                        # only data that differs from what the committed study read
        payload["data"] = data
    digest = hashlib.sha256(canonical_json(payload).encode()).hexdigest()[:HASH_CHARS]
    return f"{_slug(slug)}-{digest}"


def _at_historical_default(name: str, value: Any) -> bool:
    """Whether ``value`` is ``name``'s entry in HASH_OMIT_DEFAULTS (``1`` is not ``True``)."""
    if name not in HASH_OMIT_DEFAULTS:
        return False
    old = HASH_OMIT_DEFAULTS[name]
    return isinstance(value, bool) == isinstance(old, bool) and value == old


def intermediate_params(profile: Profile, model: str, task: str, seed: int) -> dict[str, Any]:
    """Everything phase 1 needs, resolved (the intermediate ``per_model`` overrides for ``model``
    applied, learning rate from models.py when null; hyperparameters that mean nothing for the task's
    kind, e.g. doc_stride outside QA, left out)."""
    kind = TASKS[task].kind
    s = {k: v for k, v in profile.intermediate.for_task(task, model).items()
         if k not in hparams.HPARAMS or hparams.applies(k, kind)}
    s["learning_rate"] = hparams.resolve_learning_rate(s["learning_rate"], model)
    return {"model": model, "task": task, "seed": seed, "trim_vocab": profile.trim_vocab, **s}


def target_params(profile: Profile, model: str, intermediate: str, target: str, seed: int) -> dict[str, Any]:
    """Everything phase 2 needs, resolved (the target's ``per_model`` overrides for ``model`` applied,
    eval languages listed, learning rate from models.py when null)."""
    s = profile.target[target].for_model(model)
    s["eval_langs"] = list(s["eval_langs"])
    s["learning_rate"] = hparams.resolve_learning_rate(s["learning_rate"], model)
    return {"model": model, "intermediate": intermediate, "target": target, "seed": seed,
            "trim_vocab": profile.trim_vocab, **s}


def build_grid(profile: Profile, notebooks_dir: str | Path | None = None) -> list[Node]:
    """The profile's DAG: phase-1 nodes first (model, task, seed order), then phase-2 nodes."""
    nb_dir = Path(notebooks_dir) if notebooks_dir is not None else repo_root() / "notebooks"
    nb = {phase: str((nb_dir / name).resolve()) for phase, name in PHASE_NOTEBOOKS.items()}
    phase1: dict[tuple[str, str, int], Node] = {}
    phase2: list[Node] = []
    for model in profile.models:
        for task in profile.intermediate_tasks_for(model):
            if task == NONE_TASK:
                continue
            for seed in profile.seeds:
                params = intermediate_params(profile, model, task, seed)
                phase1[(model, task, seed)] = Node(run_id("intermediate", params), "intermediate",
                                                   nb["intermediate"], params, [])
    for model in profile.models:
        for task in profile.intermediate_tasks_for(model):
            for target in profile.targets_for(model):
                for seed in profile.seeds:
                    params = target_params(profile, model, task, target, seed)
                    deps = [] if task == NONE_TASK else [phase1[(model, task, seed)].id]
                    phase2.append(Node(run_id("target", params, deps), "target", nb["target"], params, deps))
    return [*phase1.values(), *phase2]


# ------------------------------------------------------------------ selection
def _matches(node: Node, flt: str) -> bool:
    """One ``--only`` filter: ``key=value`` on params (value parsed as YAML), a glob, or a substring of the id."""
    key, sep, text = flt.partition("=")
    if sep:
        if key not in node.params:
            return False
        want = yaml.safe_load(text) if text else ""
        have = node.params[key]
        return have == want or str(have) == text
    if any(ch in flt for ch in "*?["):
        return fnmatch.fnmatchcase(node.id, flt)
    return flt in node.id


def select(nodes: Sequence[Node], filters: Iterable[str]) -> list[Node]:
    """Nodes matching *every* filter, plus their dependencies, in grid order.

    Filters AND together (``--only model=e5-L3 --only target=xnli``). A phase-1
    node has no ``target`` key, so it is selected only as a dependency.
    """
    filters = [f for f in filters if f]
    if not filters:
        return list(nodes)
    by_id = {n.id: n for n in nodes}
    keep: set[str] = set()
    stack = [n.id for n in nodes if all(_matches(n, f) for f in filters)]
    while stack:
        nid = stack.pop()
        if nid not in keep:
            keep.add(nid)
            stack.extend(by_id[nid].deps)
    return [n for n in nodes if n.id in keep]


def dependents(nodes: Sequence[Node]) -> dict[str, list[str]]:
    """id -> ids of the nodes that depend on it directly."""
    out: dict[str, list[str]] = {n.id: [] for n in nodes}
    for n in nodes:
        for d in n.deps:
            out.setdefault(d, []).append(n.id)
    return out
