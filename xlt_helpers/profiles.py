"""Profiles: the study's grid and hyperparameters, as one validated YAML file.

A profile (``configs/<name>.yml``) is the whole description of a study run:
which models, which intermediate tasks, which targets and seeds, and every
size and hyperparameter. It is validated on load against the registries
(:mod:`xlt_helpers.models`, :mod:`xlt_helpers.tasks`) so a typo fails at once,
with the file, the field path and the allowed values, instead of hours later
inside a notebook. Unknown keys are errors for the same reason.

``--set key=value`` overrides (dotted paths, YAML values) are applied to the
raw mapping *before* validation, so an override is checked exactly like a
value written in the file.

This module imports no heavy library (no torch, no datasets): ``xlt run`` on a
finished grid must return in seconds.
"""
from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import yaml

from . import hparams
from .models import MODELS
from .paths import repo_root
from .tasks import NONE_TASK, TASKS

ALL_LANGS = "all"           # eval_langs: every language of the target's dev split


class ProfileError(hparams.ParameterError):
    """A profile file (or a --set override) that does not describe a valid study."""


# ------------------------------------------------------------------ settings
class _Hparams:
    """``settings.batch_size`` reads the resolved hyperparameter from ``settings.hparams``."""

    def __getattr__(self, name: str) -> Any:
        hp = self.__dict__.get("hparams", {})
        if name in hp:
            return hp[name]
        raise AttributeError(f"{type(self).__name__} has no field {name!r}")


@dataclass(frozen=True)
class IntermediateSettings(_Hparams):
    """Phase-1 sizes and hyperparameters (the same for every intermediate task,
    except where ``per_task`` overrides a field for one task, e.g. a longer
    ``max_length`` for extractive QA). ``hparams`` holds every phase field of
    :class:`~xlt_helpers.hparams.TrainConfig`, defaults filled in."""

    train_n: int | None            # None = the whole training split
    dev_n: int | None
    hparams: Mapping[str, Any]
    per_task: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    # per-model overrides, applied after per_task (e.g. checkpointing for mT5-XL only); a model without
    # an entry gets exactly the settings above, so its run ids do not move
    per_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_task(self, task: str, model: str | None = None) -> dict[str, Any]:
        """The settings of ``task`` (for ``model``): the shared ones, its ``per_task`` entry, then the
        model's ``per_model`` entry."""
        return {"train_n": self.train_n, "dev_n": self.dev_n, **self.hparams, **self.per_task.get(task, {}),
                **(self.per_model.get(model, {}) if model is not None else {})}


@dataclass(frozen=True)
class TargetSettings(_Hparams):
    """Phase-2 sizes and hyperparameters of one target task (``hparams``: every phase field of
    TrainConfig that applies to the target's kind, defaults filled in; doc_stride: QA only)."""

    train_n: int | None
    eval_n: int | None             # per evaluation language
    eval_langs: tuple[str, ...]    # resolved: "all" becomes the dev split's languages
    hparams: Mapping[str, Any]
    # per-model overrides of the hyperparameters above (e.g. a smaller learning rate for a deeper
    # model); a model without an entry gets exactly the shared settings, so its run ids do not move
    per_model: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_model(self, model: str) -> dict[str, Any]:
        """The settings ``model`` trains with: the shared ones with its ``per_model`` entry applied."""
        return {"train_n": self.train_n, "eval_n": self.eval_n, "eval_langs": self.eval_langs,
                **self.hparams, **self.per_model.get(model, {})}


@dataclass(frozen=True)
class Resources:
    """What one node asks of a Ray worker."""

    num_cpus: float = 1
    num_gpus: float = 0


@dataclass(frozen=True)
class Dropped:
    """A (model, targets) pair left out of the grid, with the measurement that made it so: the methods
    page prints it, so a reader sees what was tried before a cell went missing."""

    model: str
    targets: tuple[str, ...]
    reason: str


@dataclass(frozen=True)
class Retired:
    """Nodes run and then replaced (their settings changed, so their ids did): they are not in results/
    (git history keeps them) but the machine time they took was spent from the budget all the same."""

    nodes: int
    machine_hours: float
    reason: str


@dataclass(frozen=True)
class StudyTerms:
    """What the book holds the study to, beside the grid: the compute budget, the English floor every
    reported baseline must clear, and the (model, target) pairs dropped for failing it. None of it is a
    node parameter, so none of it enters a run id: tightening a floor re-labels, it never re-trains."""

    budget_hours: float | None = None                            # node wall time allowed, in hours
    floors: Mapping[str, float] = field(default_factory=dict)    # target -> English primary-metric score
    dropped: tuple[Dropped, ...] = ()
    retired: tuple[Retired, ...] = ()                            # spent on nodes no longer in results/


@dataclass(frozen=True)
class Profile:
    name: str
    description: str
    models: tuple[str, ...]
    intermediate_tasks: tuple[str, ...]           # includes "none" for the baseline
    seq2seq_intermediate_tasks: tuple[str, ...]   # the subset used for encoder-decoder models
    targets: tuple[str, ...]
    seeds: tuple[int, ...]
    intermediate: IntermediateSettings
    target: Mapping[str, TargetSettings]
    trim_vocab: bool
    resources: Resources
    source: str = ""                              # the file it came from (for messages)
    # export finished nodes into results/ (committed) and restore them from there: the reference
    # study's profile sets it, so a study run in sittings on fresh machines resumes where it stopped
    export_results: bool = False
    # model -> the subset of intermediate_tasks it runs (overrides the two lists above): lets a CPU
    # budget cover the difficulty range densely at the cheapest size and sparsely at the dearest
    model_intermediate_tasks: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # model -> the subset of targets it runs: a family that cannot learn a target in the budget
    # (measured, and said in the profile's comments) skips it instead of filling the grid with zeros
    model_targets: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # the budget, the floors and the dropped pairs (``study:`` in the file); not hashed into run ids
    study: StudyTerms = field(default_factory=StudyTerms)

    def targets_for(self, model: str) -> tuple[str, ...]:
        """The target tasks run for ``model``: ``model_targets`` if it names the model, else all."""
        return self.model_targets.get(model, self.targets)

    def intermediate_tasks_for(self, model: str) -> tuple[str, ...]:
        """The intermediate tasks (incl. "none") run for ``model``: ``model_intermediate_tasks``
        if it names the model; else encoder-decoders use the seq2seq subset, because some tasks
        are expensive or awkward as text-to-text; else all of ``intermediate_tasks``."""
        if model in self.model_intermediate_tasks:
            return self.model_intermediate_tasks[model]
        if MODELS[model].family == "encoder-decoder":
            return self.seq2seq_intermediate_tasks
        return self.intermediate_tasks


# ------------------------------------------------------------------ checkers
# The scalar checkers and the hyperparameters' own checks live in hparams (the notebooks use them too).
Checker = hparams.Checker
_type_name = hparams.type_name
_int, _number, _optional, _str, _bool = (hparams.check_int, hparams.check_number, hparams.optional,
                                         hparams.check_str, hparams.check_bool)


def _err(where: str, msg: str) -> ProfileError:
    return ProfileError(f"{where}: {msg}")


def _names(allowed: Sequence[str], what: str, one: str) -> Checker:
    """A non-empty list of distinct names (``what``; a single one is a ``one``), each in ``allowed``."""
    def check(v: Any, where: str) -> tuple[str, ...]:
        if not isinstance(v, list) or not v:
            raise _err(where, f"expected a non-empty list of {what}, got {v!r}; allowed: {', '.join(allowed)}")
        for i, item in enumerate(v):
            if item not in allowed:
                raise _err(f"{where}[{i}]", f"unknown {one} {item!r}; allowed: {', '.join(allowed)}")
        dup = sorted({x for x in v if v.count(x) > 1})
        if dup:
            raise _err(where, f"duplicate entries {dup}; list each once")
        return tuple(v)
    return check


def _seeds(v: Any, where: str) -> tuple[int, ...]:
    if not isinstance(v, list) or not v:
        raise _err(where, f"expected a non-empty list of integers >= 0, got {v!r}")
    out = tuple(_int(0)(s, f"{where}[{i}]") for i, s in enumerate(v))
    if len(set(out)) != len(out):
        raise _err(where, f"duplicate seeds in {list(out)}; list each once")
    return out


_COUNT = _optional(_int(1), "all examples")
_SIZE_CHECKERS: dict[str, Checker] = {"train_n": _COUNT, "dev_n": _COUNT, "eval_n": _COUNT}
_INTERMEDIATE_FIELDS = ("train_n", "dev_n", *hparams.PHASE_HPARAMS)
_TARGET_FIELDS = ("train_n", "eval_n", "eval_langs", *hparams.PHASE_HPARAMS)
# every other field is optional and defaults to TrainConfig's value
_REQUIRED_SETTINGS = ("train_n", "dev_n", "eval_n", "eval_langs", "epochs", "max_steps", "batch_size",
                      "learning_rate", "max_length", "warmup_ratio")


def _check(name: str, value: Any, where: str) -> Any:
    """One setting checked: a size here, a hyperparameter by its TrainConfig checker."""
    if name in _SIZE_CHECKERS:
        return _SIZE_CHECKERS[name](value, where)
    return hparams.check_hparam(name, value, where)


def _hparams(values: Mapping[str, Any], kind: str | None = None) -> dict[str, Any]:
    """Every phase hyperparameter (that applies to ``kind``; None = any), given or defaulted."""
    return {n: values.get(n, hparams.default(n)) for n in hparams.PHASE_HPARAMS
            if kind is None or hparams.applies(n, kind)}


def _mapping(v: Any, source: str, path: str, allowed: Sequence[str], required: Sequence[str]) -> dict[str, Any]:
    """``v`` (at field ``path`` of ``source``) is a mapping with only ``allowed`` keys and every ``required`` one."""
    where = f"{source}: field {path}" if path else f"{source}: top level"
    if not isinstance(v, dict):
        raise _err(where, f"expected a mapping with keys {', '.join(allowed)}, got {v!r} ({_type_name(v)})")
    for key in v:
        if key not in allowed:
            raise _err(f"{source}: field {path + '.' if path else ''}{key}",
                       f"unknown key {key!r}; allowed keys here: {', '.join(allowed)}")
    missing = [k for k in required if k not in v]
    if missing:
        raise _err(where, f"missing required key(s) {', '.join(missing)}")
    return v


def _intermediate_tasks() -> list[str]:
    """Tasks that can be trained on in phase 1: every registered task with a train split."""
    return [NONE_TASK] + sorted(n for n, s in TASKS.items() if "train" in s.splits)


def _target_tasks() -> list[str]:
    return sorted(n for n, s in TASKS.items() if s.role in ("target", "both") and "dev" in s.splits)


# ------------------------------------------------------------------ validation
_TOP_KEYS = ("name", "description", "models", "intermediate_tasks", "seq2seq_intermediate_tasks",
             "model_intermediate_tasks", "model_targets", "targets", "seeds", "intermediate", "target", "trim_vocab", "resources",
             "export_results", "study")
_TOP_REQUIRED = ("name", "models", "intermediate_tasks", "targets", "seeds", "intermediate", "target")


def _per_model_subsets(raw: Mapping[str, Any], key: str, models: Sequence[str], allowed: Sequence[str],
                       what: str, one: str, at: Callable[[str], str]) -> dict[str, tuple[str, ...]]:
    """``raw[key]``, a mapping model -> subset of ``allowed`` (e.g. model_intermediate_tasks,
    model_targets), checked: each model must be one of the profile's, each name one of ``allowed``."""
    field_name = what.replace(" ", "_")
    mapping = raw.get(key) or {}
    if not isinstance(mapping, dict):
        raise _err(at(key), f"expected a mapping model -> list of {what}, got {mapping!r}")
    out: dict[str, tuple[str, ...]] = {}
    for model, names in mapping.items():
        if model not in models:
            raise _err(at(f"{key}.{model}"),
                       f"unknown model {model!r}; allowed: the profile's models ({', '.join(models)})")
        out[model] = _names(list(allowed), f"{what} (a subset of {field_name})",
                            f"{one} ({key} must be subsets of {field_name})")(names, at(f"{key}.{model}"))
    return out


def validate_profile(raw: Any, source: str = "<profile>") -> Profile:
    """Check ``raw`` (a parsed YAML mapping) and return the typed, resolved :class:`Profile`.

    Every error message starts with ``source`` and the dotted field path, and
    names the allowed values or type, so the fix is obvious from the message.
    """
    try:
        return _validate_profile(raw, source)
    except ProfileError:
        raise
    except hparams.ParameterError as e:      # a shared checker (hparams) failed: same message, profile type
        raise ProfileError(str(e)) from None


def _validate_profile(raw: Any, source: str) -> Profile:
    def at(path: str) -> str:
        return f"{source}: field {path}"

    _mapping(raw, source, "", _TOP_KEYS, _TOP_REQUIRED)
    models = _names(sorted(MODELS), "models", "model")(raw["models"], at("models"))
    inter = _names(_intermediate_tasks(), "intermediate tasks", "intermediate task")(raw["intermediate_tasks"],
                                                                 at("intermediate_tasks"))
    if "seq2seq_intermediate_tasks" in raw:
        s2s = _names(list(inter), "intermediate tasks (a subset of intermediate_tasks)",
                     "task (seq2seq_intermediate_tasks must be a subset of intermediate_tasks)")(
            raw["seq2seq_intermediate_tasks"], at("seq2seq_intermediate_tasks"))
    else:
        s2s = inter
    per_model = _per_model_subsets(raw, "model_intermediate_tasks", models, inter, "intermediate tasks", "task", at)
    targets = _names(_target_tasks(), "target tasks", "target task")(raw["targets"], at("targets"))
    per_model_targets = _per_model_subsets(raw, "model_targets", models, targets, "targets", "target", at)
    seeds = _seeds(raw["seeds"], at("seeds"))

    # phase 1
    ip = "intermediate"
    sec = _mapping(raw[ip], source, ip, (*_INTERMEDIATE_FIELDS, "per_task", "per_model"),
                   [f for f in _INTERMEDIATE_FIELDS if f in _REQUIRED_SETTINGS])
    vals = {k: _check(k, sec[k], at(f"{ip}.{k}")) for k in _INTERMEDIATE_FIELDS if k in sec}
    per_task: dict[str, dict[str, Any]] = {}
    pt = sec.get("per_task") or {}
    if not isinstance(pt, dict):
        raise _err(at(f"{ip}.per_task"), f"expected a mapping task -> settings, got {pt!r}")
    for task, overrides in pt.items():
        if task not in inter or task == NONE_TASK:
            raise _err(at(f"{ip}.per_task.{task}"),
                       f"unknown task {task!r}; allowed: the profile's intermediate_tasks "
                       f"({', '.join(t for t in inter if t != NONE_TASK)})")
        o = _mapping(overrides, source, f"{ip}.per_task.{task}", _INTERMEDIATE_FIELDS, ())
        per_task[task] = {k: _check(k, v, at(f"{ip}.per_task.{task}.{k}")) for k, v in o.items()}
    pmi = sec.get("per_model") or {}
    if not isinstance(pmi, dict):
        raise _err(at(f"{ip}.per_model"), f"expected a mapping model -> settings, got {pmi!r}")
    per_model_inter: dict[str, dict[str, Any]] = {}
    for m, overrides in pmi.items():
        if m not in models:
            raise _err(at(f"{ip}.per_model.{m}"),
                       f"unknown model {m!r}; allowed: the profile's models ({', '.join(models)})")
        o = _mapping(overrides, source, f"{ip}.per_model.{m}", [f for f in _INTERMEDIATE_FIELDS if f != "dev_n"], ())
        per_model_inter[m] = {k: _check(k, v, at(f"{ip}.per_model.{m}.{k}")) for k, v in o.items()}
    intermediate = IntermediateSettings(vals.get("train_n"), vals.get("dev_n"), _hparams(vals), per_task,
                                        per_model_inter)

    # phase 2
    tp = "target"
    tsec = _mapping(raw[tp], source, tp, _target_tasks(), targets)
    target: dict[str, TargetSettings] = {}
    for name, sub in tsec.items():
        spec = TASKS[name]
        fields = [f for f in _TARGET_FIELDS if f not in hparams.HPARAMS or hparams.applies(f, spec.kind)]
        sub = _mapping(sub, source, f"{tp}.{name}", (*fields, "per_model"),
                       [f for f in fields if f in _REQUIRED_SETTINGS])
        tv = {k: _check(k, sub[k], at(f"{tp}.{name}.{k}"))
              for k in fields if k in sub and k != "eval_langs"}
        pm = sub.get("per_model") or {}
        if not isinstance(pm, dict):
            raise _err(at(f"{tp}.{name}.per_model"), f"expected a mapping model -> settings, got {pm!r}")
        per_model_target: dict[str, dict[str, Any]] = {}
        tunable = [f for f in fields if f not in ("eval_langs", "eval_n")]
        for m, overrides in pm.items():
            if m not in models:
                raise _err(at(f"{tp}.{name}.per_model.{m}"),
                           f"unknown model {m!r}; allowed: the profile's models ({', '.join(models)})")
            o = _mapping(overrides, source, f"{tp}.{name}.per_model.{m}", tunable, ())
            per_model_target[m] = {k: _check(k, v, at(f"{tp}.{name}.per_model.{m}.{k}"))
                                   for k, v in o.items()}
        dev_langs = spec.langs_for("dev")
        langs = sub["eval_langs"]
        if langs == ALL_LANGS:
            eval_langs = tuple(dev_langs)
        else:
            eval_langs = _names(list(dev_langs), "languages (or the string 'all')",
                                      f"language for {name} (its dev split has no such language)")(
                langs, at(f"{tp}.{name}.eval_langs"))
        target[name] = TargetSettings(tv.get("train_n"), tv.get("eval_n"), eval_langs, _hparams(tv, spec.kind),
                                      per_model_target)

    res_raw = _mapping(raw.get("resources", {}), source, "resources", ("num_cpus", "num_gpus"), ())
    resources = Resources(
        num_cpus=_number(0, strict_min=True)(res_raw.get("num_cpus", 1), at("resources.num_cpus")),
        num_gpus=_number(0)(res_raw.get("num_gpus", 0), at("resources.num_gpus")),
    )
    profile = Profile(
        name=_str(raw["name"], at("name")),
        description=_str(raw.get("description", ""), at("description")),
        models=models, intermediate_tasks=inter, seq2seq_intermediate_tasks=s2s,
        model_intermediate_tasks=per_model, model_targets=per_model_targets, targets=targets,
        seeds=seeds, intermediate=intermediate, target=target,
        trim_vocab=_bool(raw.get("trim_vocab", False), at("trim_vocab")),
        export_results=_bool(raw.get("export_results", False), at("export_results")),
        resources=resources, source=source,
    )
    _check_positions(profile, sec, tsec, at)
    if "study" in raw:
        profile = replace(profile, study=_study_terms(raw["study"], profile, source))
    return profile


def _study_terms(raw: Any, profile: Profile, source: str) -> StudyTerms:
    """The ``study:`` section: ``budget_hours``, ``floors`` (target -> score on its primary metric, one of
    the profile's targets), ``dropped`` (model, targets, reason) and ``retired`` (nodes, machine_hours,
    reason: time spent on nodes since replaced, which the budget counts). A dropped pair still in the grid
    is an error: the book would call a cell dropped that it also reports."""
    def at(path: str) -> str:
        return f"{source}: field study.{path}"

    sec = _mapping(raw, source, "study", ("budget_hours", "floors", "dropped", "retired"), ())
    budget = _optional(_number(0, strict_min=True), "no budget stated")(sec.get("budget_hours"), at("budget_hours"))
    floors_raw = sec.get("floors") or {}
    if not isinstance(floors_raw, dict):
        raise _err(at("floors"), f"expected a mapping target -> English score (0..100), got {floors_raw!r}")
    floors = {}
    for target, v in floors_raw.items():
        if target not in profile.targets:
            raise _err(at(f"floors.{target}"), f"unknown target {target!r}; allowed: the profile's targets "
                                               f"({', '.join(profile.targets)})")
        floors[target] = _number(0, 100)(v, at(f"floors.{target}"))
    dropped_raw = sec.get("dropped") or []
    if not isinstance(dropped_raw, list):
        raise _err(at("dropped"), f"expected a list of {{model, targets, reason}}, got {dropped_raw!r}")
    dropped = []
    for i, d in enumerate(dropped_raw):
        d = _mapping(d, source, f"study.dropped[{i}]", ("model", "targets", "reason"), ("model", "targets", "reason"))
        model = _names(sorted(MODELS), "models", "model")([d["model"]], at(f"dropped[{i}].model"))[0]
        targets = _names(_target_tasks(), "target tasks", "target task")(d["targets"], at(f"dropped[{i}].targets"))
        reason = _str(d["reason"], at(f"dropped[{i}].reason")).strip()
        if not reason:
            raise _err(at(f"dropped[{i}].reason"), "empty: give the measurement that made the pair drop")
        in_grid = [t for t in targets if model in profile.models and t in profile.targets_for(model)]
        if in_grid:
            raise _err(at(f"dropped[{i}]"), f"{model} x {', '.join(in_grid)} is in the grid (models / model_targets) "
                                            "and dropped at once; remove it from one of the two")
        dropped.append(Dropped(model, targets, reason))
    retired_raw = sec.get("retired") or []
    if not isinstance(retired_raw, list):
        raise _err(at("retired"), f"expected a list of {{nodes, machine_hours, reason}}, got {retired_raw!r}")
    retired = []
    for i, r in enumerate(retired_raw):
        r = _mapping(r, source, f"study.retired[{i}]", ("nodes", "machine_hours", "reason"),
                     ("nodes", "machine_hours", "reason"))
        nodes = r["nodes"]
        if isinstance(nodes, bool) or not isinstance(nodes, int) or nodes < 1:
            raise _err(at(f"retired[{i}].nodes"), f"expected a whole number of nodes >= 1, got {nodes!r}")
        hours = _number(0, strict_min=True)(r["machine_hours"], at(f"retired[{i}].machine_hours"))
        reason = _str(r["reason"], at(f"retired[{i}].reason")).strip()
        if not reason:
            raise _err(at(f"retired[{i}].reason"), "empty: say why the nodes were replaced")
        retired.append(Retired(nodes, float(hours), reason))
    return StudyTerms(budget_hours=budget, floors=floors, dropped=tuple(dropped), retired=tuple(retired))


def check_max_length(model: str, max_length: int, where: str) -> None:
    """``max_length`` must fit ``model``'s position table (models.py ``max_positions``)."""
    limit = MODELS[model].max_positions
    if limit is not None and max_length > limit:
        raise _err(where, f"{max_length} is more than the {limit} token positions of model {model!r} "
                          f"(models.py max_positions); use at most {limit}")


def _check_positions(profile: Profile, inter_raw: Mapping[str, Any], target_raw: Mapping[str, Any],
                     at: Callable[[str], str]) -> None:
    """Every max_length a model trains with fits its positions; the message names the field that set it."""
    for model in profile.models:
        for task in profile.intermediate_tasks_for(model):
            if task != NONE_TASK:
                by_model = "max_length" in ((inter_raw.get("per_model") or {}).get(model) or {})
                by_task = "max_length" in ((inter_raw.get("per_task") or {}).get(task) or {})
                path = f"per_model.{model}." if by_model else f"per_task.{task}." if by_task else ""
                check_max_length(model, profile.intermediate.for_task(task, model)["max_length"],
                                 at(f"intermediate.{path}max_length"))
        for t in profile.targets_for(model):
            own = "max_length" in ((target_raw[t].get("per_model") or {}).get(model) or {})
            check_max_length(model, profile.target[t].for_model(model)["max_length"],
                             at(f"target.{t}.{'per_model.' + model + '.' if own else ''}max_length"))


# ------------------------------------------------------------------ overrides
def apply_overrides(raw: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """Return a copy of ``raw`` with each ``key.path=value`` applied (value parsed as YAML).

    Missing intermediate mappings are created, so ``--set intermediate.per_task.squad.max_length=384``
    works; whether the result is a valid profile is left to :func:`validate_profile`.
    """
    out = _deepcopy(raw)
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ProfileError(f"--set {item!r}: expected key=value with a dotted key, "
                               f"e.g. --set seeds=[0] or --set target.xnli.train_n=500")
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as e:
            raise ProfileError(f"--set {item!r}: the value {text!r} is not valid YAML ({e})") from None
        node: Any = out
        parts = key.strip().split(".")
        for i, part in enumerate(parts[:-1]):
            nxt = node.get(part)
            if nxt is None:
                nxt = node[part] = {}
            elif not isinstance(nxt, dict):
                raise ProfileError(f"--set {item!r}: {'.'.join(parts[:i + 1])} is {nxt!r}, not a mapping, "
                                   f"so it has no key {parts[i + 1]!r}")
            node = nxt
        node[parts[-1]] = value
    return out


def _deepcopy(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _deepcopy(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_deepcopy(v) for v in obj]
    return obj


# ------------------------------------------------------------------ loading
def configs_dir() -> Path:
    """``<repo>/configs``: where named profiles live."""
    return repo_root() / "configs"


def available_profiles(directory: Path | None = None) -> list[str]:
    d = directory or configs_dir()
    return sorted(p.stem for p in d.glob("*.yml")) if d.is_dir() else []


def profile_path(profile: str | os.PathLike, directory: Path | None = None) -> Path:
    """A profile name (``smoke``) or a path to a YAML file -> the file."""
    p = Path(profile)
    if p.suffix in (".yml", ".yaml") or p.parent != Path("."):
        if not p.is_file():
            raise ProfileError(f"profile file {p} does not exist")
        return p
    d = directory or configs_dir()
    path = d / f"{profile}.yml"
    if not path.is_file():
        raise ProfileError(f"unknown profile {str(profile)!r}: {path} does not exist; "
                           f"available profiles: {', '.join(available_profiles(d)) or '(none)'}")
    return path


def load_profile(profile: str | os.PathLike, overrides: Sequence[str] = (),
                 directory: Path | None = None) -> Profile:
    """Read, override and validate a profile (a name in ``configs/`` or a YAML path)."""
    path = profile_path(profile, directory)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        raise ProfileError(f"{path}: not valid YAML: {e}") from None
    if raw is None:
        raw = {}
    if overrides:
        if not isinstance(raw, dict):
            raise ProfileError(f"{path}: expected a mapping at the top level, got {_type_name(raw)}")
        raw = apply_overrides(raw, overrides)
    source = str(path) + (f" (with --set {' '.join(overrides)})" if overrides else "")
    return validate_profile(raw, source)
