"""Training one phase with the Hugging Face Trainer, for both families.

Phase 1 (intermediate task) and phase 2 (English target task) are the same
function: ``init_from`` names the phase-1 body to start from (``None`` = the
pretrained model), and the head is always fresh. Bodies are saved as
safetensors in the *full* vocabulary's id space, so a phase-1 body can feed any
phase-2 node whatever vocabulary that node trims to.

CPU speed (issue 3/6): word embeddings are frozen by default (they are 75-95%
of a small multilingual model's parameters and the slowest to update), batches
are padded dynamically and grouped by length, and the vocabulary is trimmed to
the tokens of the node's data.
"""
from __future__ import annotations

import contextlib
import gc
import math
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from datasets import Dataset
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from transformers import Seq2SeqTrainer, Seq2SeqTrainingArguments, Trainer, TrainingArguments, set_seed

from . import featurize
from .dropout_masks import pcg64_bernoulli
from .heads import EncoderWithHead
from .machine import asks_bf16, native_bf16
from .hparams import DROPOUT_RNGS, EVAL_PRECISIONS, PRECISIONS, TrainConfig, resolve_learning_rate  # noqa: F401  (re-exported)
from .models import ModelSpec, get_model
from .tasks import TaskSpec, get_task


@dataclass
class PhaseResult:
    model: Any
    tokenizer: Any
    spec: ModelSpec
    task: TaskSpec
    log_history: list[dict]
    stats: dict[str, float] = field(default_factory=dict)
    vocab_map: Any = None      # old id -> new id (np.ndarray, -1 = dropped) when trimmed


# ------------------------------------------------------------------ precision

def check_precision(value: str, field_name: str = "precision", allowed: tuple[str, ...] = PRECISIONS) -> str:
    """``value`` if this machine can run it, else a ValueError naming the field, the value and the fix.

    bf16 runs on CUDA GPUs and on CPUs with native bf16 (AVX512-BF16 or AMX). Elsewhere torch
    emulates it, about 20x slower than fp32, so it is refused rather than run silently slow.
    int8 (dynamic quantization of the linear layers) runs on the CPU only."""
    if value not in allowed:
        raise ValueError(f"{field_name}={value!r}: expected one of {', '.join(allowed)}")
    cuda = torch.cuda.is_available()
    if asks_bf16(value):
        ok, why = native_bf16()
        if not ok:
            raise ValueError(
                f"{field_name}={value!r} needs native bf16, but {why}: torch would emulate bf16 about 20x "
                f"slower than fp32. Set {field_name}: fp32 in the profile (or --set ...{field_name}=fp32), "
                f"or run on a CPU with AVX512-BF16/AMX or a GPU.")
    if value == "int8" and cuda:
        raise ValueError(f"{field_name}='int8' (dynamic quantization) runs on the CPU only; this node sees a "
                         f"CUDA GPU: use {field_name}: bf16 there")
    return value


def check_dropout_rng(value: str) -> str:
    """``value`` if this machine can draw dropout masks with it, else a ValueError naming the fix.
    ``pcg64`` replaces torch's CPU Bernoulli kernel (:mod:`~xlt_helpers.dropout_masks`); a GPU's masks never
    reach that kernel, so on a GPU the run would claim masks it did not draw: refused."""
    if value not in DROPOUT_RNGS:
        raise ValueError(f"dropout_rng={value!r}: expected one of {', '.join(DROPOUT_RNGS)}")
    if value == "pcg64" and torch.cuda.is_available():
        raise ValueError("dropout_rng='pcg64' draws the CPU's dropout masks (a CPU speed lever); this node trains "
                         "on a CUDA GPU, whose masks come from torch's Philox generator, fast already: set "
                         "dropout_rng: torch in the profile (or --set ...dropout_rng=torch)")
    return value


@contextlib.contextmanager
def frozen_gc():
    """Every object alive now moved out of the garbage collector's reach for the block (``gc.freeze``),
    then back. accelerate runs a full ``gc.collect()`` as ``Trainer.train()`` starts, which walks every
    object of the process: 0.24 s with the bench's 420,000 objects (2026-12-01), a fixed cost per phase
    that frozen objects skip. Objects made inside the block are collected as usual."""
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()


# ------------------------------------------------------------------ helpers

def peak_rss_mb() -> float:
    """Peak resident memory of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def word_embedding_modules(model) -> list[torch.nn.Embedding]:
    """The word-embedding tables of an encoder body, EncoderDecoderModel or MT5, one per distinct weight
    (MT5's encoder and decoder hold their own Embedding modules around the one shared table)."""
    mods = []
    for m in (model, getattr(model, "encoder", None), getattr(model, "decoder", None)):
        if m is not None and hasattr(m, "get_input_embeddings"):
            e = m.get_input_embeddings()
            if isinstance(e, torch.nn.Embedding) and all(e.weight is not x.weight for x in mods):
                mods.append(e)
    return mods


def freeze_word_embeddings(model) -> int:
    """Freeze word embeddings; returns the number of frozen parameters."""
    n = 0
    for e in word_embedding_modules(model):
        e.weight.requires_grad_(False)
        n += e.weight.numel()
    return n


class Collator:
    """Dynamic padding for every kind, counting the non-padding tokens it emits (for tokens/s)."""

    def __init__(self, pad_id: int, label_pad: int = -100):
        self.pad_id, self.label_pad, self.tokens = pad_id, label_pad, 0

    def _pad(self, seqs: list, value: int) -> torch.Tensor:
        if isinstance(seqs[0][0], list):  # multiple choice: [B, C, L]
            L = max(len(s) for ex in seqs for s in ex)
            return torch.tensor([[s + [value] * (L - len(s)) for s in ex] for ex in seqs])
        L = max(len(s) for s in seqs)
        return torch.tensor([s + [value] * (L - len(s)) for s in seqs])

    def __call__(self, feats: list[dict]) -> dict[str, torch.Tensor]:
        out = {"input_ids": self._pad([f["input_ids"] for f in feats], self.pad_id),
               "attention_mask": self._pad([f["attention_mask"] for f in feats], 0)}
        self.tokens += int(out["attention_mask"].sum())
        for k in ("labels", "start_positions", "end_positions", "decoder_input_ids"):
            if k in feats[0]:
                v = [f[k] for f in feats]
                out[k] = self._pad(v, self.label_pad) if isinstance(v[0], list) else torch.tensor(v)
        return out


def _with_length(ds: Dataset) -> Dataset:
    def ln(ids):
        return max(len(s) for s in ids) * len(ids) if ids and isinstance(ids[0], list) else len(ids)
    return ds.map(lambda b: {"length": [ln(x) for x in b["input_ids"]]}, batched=True, desc="lengths")


# ------------------------------------------------------------ model building

def build_model(spec: ModelSpec, task: TaskSpec, *, init_from: str | Path | None = None,
                keep_ids: list[int] | None = None, tokenizer=None):
    """(model, tokenizer, vocab_map, sizes) for ``spec`` with a fresh ``task`` head.

    ``init_from`` is a body saved by :func:`save_body` (phase 1), loaded over the pretrained
    weights in the full vocabulary space before trimming to ``keep_ids``."""
    from . import backbones
    from .vocab import trim_vocab

    tok = tokenizer if tokenizer is not None else backbones.load_tokenizer(spec)
    # Warm-started encoder-decoders start generated-target tasks (QA, tagging) from another
    # cross-attention than ranked ones (models.ModelSpec.cross_attention_gain_for: why).
    body = (backbones.load_encoder(spec) if spec.family == "encoder"
            else backbones.load_seq2seq(spec, generated_targets=task.generated_targets))
    sizes = backbones.param_counts(body)
    if init_from:
        load_body(body, init_from)
    vocab_map = None
    if keep_ids is not None:
        full_vocab = body.get_input_embeddings().weight.shape[0]
        body, tok = trim_vocab(body, tok, keep_ids)
        vocab_map = np.full(full_vocab, -1, dtype=np.int64)
        vocab_map[np.asarray(keep_ids)] = np.arange(len(keep_ids))
    if spec.family == "encoder":
        model = EncoderWithHead(body, task.kind, max(len(task.labels), 1), spec.pooling)
    else:
        model = body
    return model, tok, vocab_map, sizes


def save_body(model, out_dir: str | Path, vocab_map: np.ndarray | None = None) -> Path:
    """Save the body (not the head) as safetensors in the full vocabulary's id space.

    Rows of trimmed embedding tables are saved with their original ids (``__kept_ids__``), so
    a phase-2 node can scatter them back into the pretrained table and trim to its own vocabulary."""
    body = model.body if isinstance(model, EncoderWithHead) else model
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().clone() for k, v in body.state_dict().items()}
    if vocab_map is not None:
        kept = np.nonzero(vocab_map >= 0)[0]
        state["__kept_ids__"] = torch.from_numpy(kept)
    tmp = out / "body.safetensors.tmp"
    save_file(state, str(tmp), metadata={"format": "pt", "trimmed": str(vocab_map is not None)})
    tmp.replace(out / "body.safetensors")
    return out / "body.safetensors"


def load_body(body, ckpt_dir: str | Path) -> None:
    """Load a body saved by :func:`save_body` into a freshly built *untrimmed* body."""
    path = Path(ckpt_dir) / "body.safetensors"
    if not path.exists():
        raise FileNotFoundError(f"no phase-1 body at {path}: run the intermediate node first (xlt run) "
                                f"or pass init_from='' to start from the pretrained model")
    try:
        state = load_file(str(path))
    except SafetensorError as e:   # bare, it names no file
        raise ValueError(f"{path}: not a readable safetensors checkpoint ({e}); the phase-1 node that wrote it "
                         f"did not finish writing it or it was damaged since. Re-run that node: `xlt run` "
                         f"(`--verify` checks every file's sha256) moves a damaged node aside and runs it "
                         f"again") from None
    kept = state.pop("__kept_ids__", None)
    own = body.state_dict()
    for k, v in state.items():
        if k not in own:
            raise KeyError(f"{path}: tensor {k!r} does not belong to this model ({type(body).__name__}); "
                           f"was the checkpoint made with another model?")
        if kept is not None and v.shape[0] == len(kept) and own[k].shape[0] != v.shape[0]:
            full = own[k].clone()
            full[kept] = v
            v = full
        own[k] = v
    body.load_state_dict(own)


# ---------------------------------------------------------------- training

def encode_train(spec: ModelSpec, task: TaskSpec, ds: Dataset, tok, cfg: TrainConfig) -> Dataset:
    if spec.family == "encoder-decoder":
        return featurize.encode_seq2seq(task, ds, tok, cfg.max_length)
    if task.kind == "classification":
        return featurize.encode_classification(ds, tok, cfg.max_length)
    if task.kind == "multiple-choice":
        return featurize.encode_multiple_choice(ds, tok, cfg.max_length)
    if task.kind == "token-tagging":
        return featurize.encode_tagging(ds, tok, cfg.max_length)
    from .qa import prepare_train_features
    return ds.map(lambda b: prepare_train_features(b, tok, cfg.max_length, cfg.doc_stride), batched=True,
                  remove_columns=ds.column_names, desc="QA windows")


def train_phase(model_name: str, task_name: str, train_ds: Dataset, cfg: TrainConfig, out_dir: str | Path, *,
                init_from: str | Path | None = None, vocab_texts: list[str] | None = None,
                trainer_args: dict[str, Any] | None = None, callbacks: list | None = None,
                trainer_cls: type | None = None) -> PhaseResult:
    """Train ``model_name`` on ``train_ds`` of ``task_name`` with a fresh head.

    ``vocab_texts``: every text the node will see (train and evaluation, all languages); the
    vocabulary is trimmed to their tokens when ``cfg.trim_vocab``. ``trainer_args`` (extra
    ``TrainingArguments``, e.g. ``torch_compile``), ``callbacks`` and ``trainer_cls`` (a subclass of
    the Trainer the family uses, e.g. one that profiles ``train()``; default ``Seq2SeqTrainer`` for
    encoder-decoders, ``Trainer`` otherwise) are for measurements only (``xlt bench``): a grid node
    never passes them, so everything that shapes a result is in ``cfg``."""
    spec, task = get_model(model_name), get_task(task_name)
    check_precision(cfg.precision)
    check_precision(cfg.eval_precision, "eval_precision", EVAL_PRECISIONS)
    check_dropout_rng(cfg.dropout_rng)
    args_cls, family_trainer = ((Seq2SeqTrainingArguments, Seq2SeqTrainer) if spec.family == "encoder-decoder"
                                else (TrainingArguments, Trainer))
    if trainer_cls is not None and not issubclass(trainer_cls, family_trainer):
        raise TypeError(f"train_phase: trainer_cls={trainer_cls.__name__} does not subclass {family_trainer.__name__}, "
                        f"the Trainer a {spec.family} model ({model_name}) needs; subclass it, or pass none")
    set_seed(cfg.seed)
    from . import backbones
    full_tok = backbones.load_tokenizer(spec)
    keep = None
    if cfg.trim_vocab and vocab_texts is not None:
        from .vocab import covering_ids
        extra = [*task.label_targets(), *featurize.LETTERS, featurize.NO_ANSWER, *task.labels]
        keep = covering_ids(full_tok, [*vocab_texts, *extra])  # targets (label words, letters, tags) stay sayable
    set_seed(cfg.seed)
    model, tok, vocab_map, sizes = build_model(spec, task, init_from=init_from, keep_ids=keep, tokenizer=full_tok)
    frozen = freeze_word_embeddings(model) if cfg.freeze_word_embeddings else 0
    feats = _with_length(encode_train(spec, task, train_ds, tok, cfg))
    collate = Collator(tok.pad_token_id)
    kwargs: dict[str, Any] = dict(
        output_dir=str(Path(out_dir) / "trainer"), per_device_train_batch_size=cfg.batch_size,
        num_train_epochs=cfg.epochs, max_steps=-1 if cfg.max_steps is None else cfg.max_steps,
        learning_rate=resolve_learning_rate(cfg.learning_rate, spec.name),
        warmup_steps=cfg.warmup_ratio, lr_scheduler_type="linear", weight_decay=cfg.weight_decay,
        gradient_accumulation_steps=cfg.gradient_accumulation_steps,
        # transformers 5 names it activation checkpointing (gradient_checkpointing is its deprecated alias);
        # non-reentrant, so gradients reach the layers although the word embeddings are frozen
        activation_checkpointing=cfg.gradient_checkpointing,
        activation_checkpointing_kwargs={"use_reentrant": False} if cfg.gradient_checkpointing else None,
        train_sampling_strategy="group_by_length", length_column_name="length", remove_unused_columns=False,
        save_strategy="no", report_to=[], logging_steps=max(1, math.ceil(len(feats) / cfg.effective_batch_size / 20)),
        seed=cfg.seed, data_seed=cfg.seed, dataloader_num_workers=0, use_cpu=not torch.cuda.is_available(),
        bf16=cfg.precision == "bf16", torch_compile=cfg.torch_compile,
        label_names=["start_positions", "end_positions"] if task.kind == "extractive-QA" and spec.family == "encoder" else ["labels"],
    )
    args = args_cls(**{**kwargs, **(trainer_args or {})})   # a measurement's trainer_args win (e.g. its sampler)
    trainer = (trainer_cls or family_trainer)(model=model, args=args, train_dataset=feats, data_collator=collate, callbacks=callbacks)
    masks = pcg64_bernoulli(cfg.seed) if cfg.dropout_rng == "pcg64" else contextlib.nullcontext()
    t0 = time.perf_counter()
    with frozen_gc(), masks:
        trainer.train()
    wall = time.perf_counter() - t0
    n_params = sum(p.numel() for p in model.parameters())
    stats = {"train_wall_s": wall, "train_tokens": collate.tokens, "tokens_per_s": collate.tokens / wall,
             "train_examples": len(train_ds), "train_features": len(feats), "steps": trainer.state.global_step,
             "peak_rss_mb": peak_rss_mb(), "frozen_params": frozen, "params_trained": n_params - frozen,
             "vocab_size": int(model.config.vocab_size if spec.family == "encoder" else len(tok)),
             **{f"params_{k}": v for k, v in sizes.items()}}
    return PhaseResult(model, tok, spec, task, trainer.state.log_history, stats, vocab_map)
