"""The training hyperparameters, listed once, and the one check every way in applies to them.

:class:`TrainConfig` is the only list of hyperparameters. Each field carries its default and its
checker; profiles (:mod:`xlt_helpers.profiles`) take their phase settings from it, the grid
(:mod:`xlt_helpers.grid`) passes them to every node, and the phase notebooks read their parameter
cell through :func:`notebook_params`, which checks node parameters and hyperparameters with the
same checkers the profiles use. Adding a hyperparameter is one field here (plus, when committed
results were made without it, an entry in ``grid.HASH_OMIT_DEFAULTS``).

This module imports no heavy library (no torch, no datasets): ``xlt status`` must stay fast.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from .models import MODELS
from .tasks import NONE_TASK, TASKS

QA_KIND = "extractive-QA"


class ParameterError(ValueError):
    """A node parameter or hyperparameter that no run could use (the message names it and the fix)."""


# ------------------------------------------------------------------ checkers
# A checker takes (value, where) and returns the cleaned value or raises ParameterError.
Checker = Callable[[Any, str], Any]


def type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def err(where: str, msg: str) -> ParameterError:
    return ParameterError(f"{where}: {msg}")


def check_int(minimum: int) -> Checker:
    def check(v: Any, where: str) -> int:
        if isinstance(v, bool) or not isinstance(v, int):
            raise err(where, f"expected an integer >= {minimum}, got {v!r} ({type_name(v)})")
        if v < minimum:
            raise err(where, f"expected an integer >= {minimum}, got {v}")
        return v
    return check


def check_number(minimum: float, maximum: float | None = None, *, strict_min: bool = False) -> Checker:
    """A float; strings like ``1e-5`` (PyYAML reads them as str) are accepted as numbers."""
    def check(v: Any, where: str) -> float:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                pass
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise err(where, f"expected a number, got {v!r} ({type_name(v)})")
        low_ok = v > minimum if strict_min else v >= minimum
        if not low_ok or (maximum is not None and v > maximum):
            rng = f"{'>' if strict_min else '>='} {minimum}" + (f" and <= {maximum}" if maximum is not None else "")
            raise err(where, f"expected a number {rng}, got {v}")
        # integral values become ints so that ``2`` and ``2.0`` give the same run id
        return int(v) if float(v).is_integer() else float(v)
    return check


def optional(inner: Checker, meaning: str) -> Checker:
    def check(v: Any, where: str) -> Any:
        if v is None:
            return None
        try:
            return inner(v, where)
        except ParameterError as e:
            raise type(e)(f"{e} (or null for {meaning})") from None
    return check


def check_str(v: Any, where: str) -> str:
    if not isinstance(v, str):
        raise err(where, f"expected a string, got {v!r} ({type_name(v)})")
    return v


def check_bool(v: Any, where: str) -> bool:
    if not isinstance(v, bool):
        raise err(where, f"expected true or false, got {v!r} ({type_name(v)})")
    return v


def one_of(allowed: Callable[[], list[str]], what: str) -> Checker:
    def check(v: Any, where: str) -> str:
        names = allowed()
        if v not in names:
            raise err(where, f"unknown {what} {v!r}; allowed: {', '.join(names)}")
        return v
    return check


# ------------------------------------------------------------------ the hyperparameters
PRECISIONS: tuple[str, ...] = ("fp32", "bf16")                 # training (TrainConfig.precision)
EVAL_PRECISIONS: tuple[str, ...] = ("fp32", "bf16", "bf16-fp32head", "int8")    # evaluation (TrainConfig.eval_precision)
DROPOUT_RNGS: tuple[str, ...] = ("torch", "pcg64")               # dropout masks (TrainConfig.dropout_rng)


def _hp(default: Any, check: Checker, *, scope: str = "phase", kinds: tuple[str, ...] = ()) -> Any:
    """A TrainConfig field: ``scope`` "phase" = a per-phase profile setting, "node" = set elsewhere
    (the seed is a node coordinate, trim_vocab a profile-wide switch); ``kinds`` = the task kinds it
    applies to (empty = all), so it is neither accepted nor passed where it means nothing."""
    return field(default=default, metadata={"check": check, "scope": scope, "kinds": kinds})


@dataclass
class TrainConfig:
    """Hyperparameters of one phase. Full-scale defaults follow jiant's XTREME scripts
    (lr 1e-5, 10% warmup, max length 256, 384 with stride 128 for QA, 2 epochs)."""

    epochs: float = _hp(2.0, check_number(0, strict_min=True))
    max_steps: int | None = _hp(None, optional(check_int(1), "no step cap"))   # None = epochs decide
    batch_size: int = _hp(32, check_int(1))
    # None = the model's default (models.py), resolved by resolve_learning_rate
    learning_rate: float | None = _hp(None, optional(check_number(0, strict_min=True),
                                                     "the model's default from models.py"))
    max_length: int = _hp(256, check_int(8))
    doc_stride: int = _hp(128, check_int(1), kinds=(QA_KIND,))
    warmup_ratio: float = _hp(0.1, check_number(0, 1))
    weight_decay: float = _hp(0.0, check_number(0))
    freeze_word_embeddings: bool = _hp(True, check_bool)
    trim_vocab: bool = _hp(True, check_bool, scope="node")
    eval_batch_size: int = _hp(32, check_int(1))        # the notebooks' and every committed node's value
    max_answer_length: int = _hp(30, check_int(1), kinds=(QA_KIND,))
    seed: int = _hp(0, check_int(0), scope="node")
    # GPU memory levers: batch_size is the micro-batch one forward/backward pass sees; the optimizer
    # steps once per gradient_accumulation_steps micro-batches, so the effective batch of a profile can
    # be kept on a smaller GPU (batch_size 8 x 4 = 32). Checkpointing recomputes each layer's
    # activations in the backward pass: ~1/3 more compute, activation memory of one layer instead of all.
    # Committed nodes ran with 1 / false (grid.HASH_OMIT_DEFAULTS keeps those values out of run ids).
    gradient_accumulation_steps: int = _hp(1, check_int(1))
    gradient_checkpointing: bool = _hp(False, check_bool)
    # Arithmetic (issue 15). precision: training under bf16 autocast (fp32 master weights; native bf16
    # CPUs and GPUs only, train.check_precision). eval_precision: evaluation in bf16 (bf16-fp32head: the output
    # layer kept in fp32), or with int8
    # dynamic quantization of the linear layers (evaluate.py). Committed nodes ran in fp32 (grid.HASH_OMIT_DEFAULTS).
    precision: str = _hp("fp32", one_of(lambda: list(PRECISIONS), "training precision"))
    eval_precision: str = _hp("fp32", one_of(lambda: list(EVAL_PRECISIONS), "evaluation precision"))
    # torch.compile of the model for training (TrainingArguments.torch_compile: inductor, dynamic shapes).
    # Measured in the bench (bench/results.md, 2b; AMD EPYC with AVX-512, 2026-12-01), batch for batch against
    # the uncompiled trainer: a compiled e5-L12 step was no faster on this CPU (0.95x), after ~100 s of compiling
    # with an empty inductor cache or a few seconds with a warm one, so it is off by default and left for GPUs.
    # (An earlier bench read 1.5x from a median compiled step against the mean uncompiled step: batches of
    # alternating length, not the compiler.) Fused kernels change the arithmetic's rounding, so it is hashed
    # into run ids when set; committed nodes ran uncompiled (grid.HASH_OMIT_DEFAULTS).
    torch_compile: bool = _hp(False, check_bool)
    # Where dropout's masks come from (xlt_helpers.dropout_masks): torch's CPU Bernoulli kernel, about 8% of an
    # e5-L12 step on 2 cores, or NumPy's PCG64 (pcg64: the same Bernoulli masks, other draws, p rounded to
    # 1/65536; CPU only). Other draws are other numerics, so pcg64 is hashed into run ids; every committed
    # node drew torch's masks (grid.HASH_OMIT_DEFAULTS). Bench 2b measures it and the fixed node's scores.
    dropout_rng: str = _hp("torch", one_of(lambda: list(DROPOUT_RNGS), "dropout mask source"))

    @property
    def effective_batch_size(self) -> int:
        """Examples (features) per optimizer step on one device."""
        return self.batch_size * self.gradient_accumulation_steps

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> TrainConfig:
        """The config of a node's parameters (others, e.g. ``train_n``, are not hyperparameters);
        null values take the default."""
        return cls(**{k: v for k, v in params.items() if k in HPARAMS and v is not None})


HPARAMS: dict[str, Any] = {f.name: f for f in fields(TrainConfig)}
#: The hyperparameters a profile sets per phase, in TrainConfig order.
PHASE_HPARAMS: tuple[str, ...] = tuple(n for n, f in HPARAMS.items() if f.metadata["scope"] == "phase")


def applies(name: str, kind: str) -> bool:
    """Whether hyperparameter ``name`` means anything for a task of ``kind`` (doc_stride: QA only)."""
    kinds = HPARAMS[name].metadata["kinds"]
    return not kinds or kind in kinds


def default(name: str) -> Any:
    return HPARAMS[name].default


def check_hparam(name: str, value: Any, where: str) -> Any:
    """``value`` of hyperparameter ``name`` checked and cleaned; the error starts with ``where``."""
    return HPARAMS[name].metadata["check"](value, where)


def resolve_learning_rate(value: float | None, model: str) -> float:
    """The one place where a null learning rate becomes the model's default (models.py)."""
    return MODELS[model].learning_rate if value is None else value


# ------------------------------------------------------------------ node parameters (notebooks)
def _tasks_with(split: str) -> list[str]:
    return sorted(n for n, s in TASKS.items() if split in s.splits)


def _eval_langs(v: Any, where: str) -> Any:
    if v == "all" or (isinstance(v, list) and v and all(isinstance(x, str) for x in v)):
        return v
    raise err(where, f"expected \"all\" or a non-empty list of language codes, got {v!r} ({type_name(v)})")


_COUNT = optional(check_int(1), "all examples")
_MODEL = one_of(lambda: sorted(MODELS), "model")
#: Each phase notebook's parameters besides the hyperparameters (the grid injects exactly these).
NODE_PARAMS: dict[str, dict[str, Checker]] = {
    "intermediate": {"model": _MODEL, "task": one_of(lambda: _tasks_with("train"), "intermediate task"),
                     "seed": check_int(0), "train_n": _COUNT, "dev_n": _COUNT, "init_from": check_str,
                     "out_dir": check_str},
    "target": {"model": _MODEL, "target": one_of(lambda: _tasks_with("dev"), "target task"),
               "intermediate": one_of(lambda: [NONE_TASK, *_tasks_with("train")], "intermediate task"),
               "init_from": check_str, "seed": check_int(0), "train_n": _COUNT, "eval_n": _COUNT,
               "eval_langs": _eval_langs, "out_dir": check_str},
}
#: Hyperparameters a phase notebook takes: all but the seed (a node parameter).
NOTEBOOK_HPARAMS: tuple[str, ...] = tuple(n for n in HPARAMS if n != "seed")


def notebook_param_names(phase: str) -> list[str]:
    """Every parameter the phase notebook's ``parameters`` cell must list."""
    return [*NODE_PARAMS[phase], *NOTEBOOK_HPARAMS]


def validate_params(phase: str, params: Mapping[str, Any], where: str = "parameter") -> dict[str, Any]:
    """``params`` of a ``phase`` node checked like a profile: an unknown name or a bad value is an
    error naming the parameter, the value and what is allowed. Returns the cleaned parameters."""
    if phase not in NODE_PARAMS:
        raise ParameterError(f"unknown phase {phase!r}; expected one of {', '.join(NODE_PARAMS)}")
    allowed = notebook_param_names(phase)
    unknown = [k for k in params if k not in allowed]
    if unknown:
        raise ParameterError(f"unknown {where}(s) {', '.join(map(repr, unknown))} for the {phase} notebook; "
                             f"allowed: {', '.join(allowed)} (a typo? papermill's -p takes these names)")
    checks = {**NODE_PARAMS[phase], **{n: HPARAMS[n].metadata["check"] for n in NOTEBOOK_HPARAMS}}
    return {k: checks[k](v, f"{where} {k}") for k, v in params.items()}


def injected_names(history: list[str]) -> list[str]:
    """The names papermill injected: the assignments of the last executed cell that starts with
    papermill's ``# Parameters`` header (``history`` = IPython's ``In``), in order."""
    import ast

    for src in reversed(history):
        if src.lstrip().startswith("# Parameters"):
            tree = ast.parse(src)
            return [t.id for node in tree.body if isinstance(node, ast.Assign)
                    for t in node.targets if isinstance(t, ast.Name)]
    return []


def notebook_params(phase: str, namespace: Mapping[str, Any]) -> dict[str, Any]:
    """A phase notebook's parameters from its namespace (``globals()``), checked.

    Unknown names are the ones papermill injected (read from the kernel's input history) that the
    notebook does not take: papermill itself only warns and runs on with the default. Returns
    the keyword arguments of the phase's run function (``init_from`` is phase 2's only)."""
    injected = injected_names(list(namespace.get("In", [])))
    unknown = [n for n in injected if n not in notebook_param_names(phase)]
    values = {n: namespace[n] for n in notebook_param_names(phase) if n in namespace}
    missing = [n for n in notebook_param_names(phase) if n not in namespace]
    if missing:
        raise ParameterError(f"the {phase} notebook's parameters cell lacks {', '.join(missing)}")
    out = validate_params(phase, {**values, **{n: namespace.get(n) for n in unknown}}, "parameter")
    if phase == "intermediate":
        out.pop("init_from")
    return out
