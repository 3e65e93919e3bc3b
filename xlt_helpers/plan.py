"""Will a profile fit on a GPU? Parameter counts, peak training memory and steps per grid node.

``xlt plan --profile full [--gpu-mem 80]`` prints one row per node (:func:`plan_grid`). Nothing here
loads weights or needs a GPU: the architectures are instantiated on PyTorch's ``meta`` device (shapes
only), from :func:`xlt_helpers.models.architecture_config` for the published models and from the
offline configs for the e5 stand-ins and the tiny test models.

The memory model (bytes, one device, :func:`peak_memory`)
-----------------------------------------------------------
``peak = weights + gradients + optimizer + activations + logits + context``, each term an upper bound
for the worst micro-batch:

* weights: 4 bytes per parameter. Training keeps fp32 weights in both precisions (bf16 is autocast:
  matmuls run in bf16 on the fp32 weights), so bf16 does not shrink this term.
* gradients 4 and AdamW state 8 (``exp_avg``, ``exp_avg_sq``) bytes per *trainable* parameter: the
  word-embedding tables are frozen by default (:func:`xlt_helpers.train.freeze_word_embeddings`), so
  they carry neither (an untied output projection, mT5's ``lm_head``, is trained).
* activations saved for the backward pass, per layer and token, following Korthikanti et al. 2022
  ("Reducing activation recomputation in large transformer models", Section 4.1: ``34 h + 5 a s`` bytes
  with 16-bit activations and a 4h feed-forward), written out for any width so that it holds for mT5's
  gated-GeLU and its attention width ``heads x d_kv`` != ``d_model``. With ``e`` bytes per activation
  (4 fp32, 2 bf16), ``d`` the attention width, ``a`` heads, ``f`` the feed-forward width, ``s`` the
  attended length::

      self-attention  e (h + 4 d + 2 a s) + (h + a s)      inputs, Q K V, context, softmax + its dropout
      feed-forward    e (h + m f) + h                      m = 2 (GeLU in/out), 4 (gated: two
                                                           projections, GeLU, product)
      norms           e * 2 h   (decoder: 3 h)
      cross-attention e (h + 2 d + 2 a s_enc) + (h + a s_enc) per decoder token, plus e * 2 d per
                      encoder token for its keys and values

  The ``1``-byte terms are dropout masks. The score terms (``a s``) assume eager attention, which
  materialises the softmax; a fused (flash / memory-efficient SDPA) kernel stores none of them, so the
  estimate is high by those terms where the model uses one. With **checkpointing** (transformers'
  per-layer ``activation_checkpointing``) a layer keeps only its input, ``e h`` per token, and the
  backward pass rebuilds one layer at a time: ``L e h`` per token plus one full layer.
* the worst micro-batch is ``batch_size`` sequences of ``max_length`` tokens (``group_by_length``
  batches the longest together; for XNLI, whose pairs average ~42 tokens, this is pessimistic);
  multiple choice multiplies the encoder's sequences by the choices; an encoder-decoder's decoder
  reads :func:`decoder_length` tokens.
* logits: heads on the encoder are negligible; an encoder-decoder's LM head makes ``b s_dec V``
  logits, kept in fp32 three times (logits, log-softmax, their gradient).
* context: a fixed :data:`CONTEXT_BYTES` for the CUDA context, cuBLAS workspace and allocator slack
  (a rule of thumb, not a measurement).

Steps = ``ceil(examples / (batch_size x gradient_accumulation_steps)) x epochs`` (or ``max_steps``).
Extractive QA counts questions, not the windows a long context is cut into (a few percent more at
length 384 with stride 128), so its steps are a lower bound.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .models import get_model
from .paths import DataError
from .tasks import TASKS

GIB = 1024 ** 3
CONTEXT_BYTES = 1 * GIB
ACTIVATION_BYTES = {"fp32": 4, "bf16": 2}
WEIGHT_BYTES, GRAD_BYTES, ADAM_BYTES = 4, 4, 8


@dataclass(frozen=True)
class Architecture:
    """The shapes that set a model's training memory, read from its config."""

    family: str                 # encoder | encoder-decoder
    hidden: int                 # d_model
    heads: int
    attention_width: int        # heads x head dim (mT5: heads x d_kv, not d_model)
    ff: int                     # feed-forward width
    gated_ff: bool              # mT5's gated-GeLU: two input projections
    encoder_layers: int
    decoder_layers: int         # 0 for an encoder
    vocab: int
    total_params: int
    non_embedding_params: int
    frozen_params: int          # the word-embedding tables train.freeze_word_embeddings freezes


# ------------------------------------------------------------------ architectures
def _shape_fields(config: Any) -> dict[str, Any]:
    """Width, depth and heads of a BERT/XLM-R or (m)T5 config."""
    if getattr(config, "model_type", "") in ("t5", "mt5"):
        return dict(hidden=config.d_model, heads=config.num_heads, attention_width=config.num_heads * config.d_kv,
                    ff=config.d_ff, gated_ff=bool(getattr(config, "is_gated_act", False)),
                    encoder_layers=config.num_layers, decoder_layers=config.num_decoder_layers,
                    vocab=config.vocab_size)
    return dict(hidden=config.hidden_size, heads=config.num_attention_heads, attention_width=config.hidden_size,
                ff=config.intermediate_size, gated_ff=False, encoder_layers=config.num_hidden_layers,
                decoder_layers=0, vocab=config.vocab_size)


def _meta_model(name: str):
    """(model, encoder config) of a non-hub model on the meta device, built as backbones builds it."""
    import torch
    from transformers import (BertConfig, BertLMHeadModel, BertModel, EncoderDecoderModel,
                              MT5ForConditionalGeneration, XLMRobertaModel)

    from . import backbones
    spec = get_model(name)
    with torch.device("meta"):
        if spec.source == "tiny":
            if spec.family == "encoder":
                cfg = backbones.tiny_xlmr_config()
                return XLMRobertaModel(cfg, add_pooling_layer=False), cfg
            cfg = backbones.tiny_mt5_config()
            return MT5ForConditionalGeneration(cfg), cfg
        if spec.source != "e5":
            raise ValueError(f"model {name!r} has source {spec.source!r}; plan knows hub, e5 and tiny")
        from .e5_offline import e5_checkpoint_dir
        base = BertConfig.from_pretrained(str(e5_checkpoint_dir()))
        enc = BertConfig.from_dict({**base.to_dict(), "num_hidden_layers": spec.encoder_layers or base.num_hidden_layers})
        if spec.family == "encoder":
            return BertModel(enc, add_pooling_layer=False), enc
        dec = BertConfig.from_dict({**base.to_dict(), "num_hidden_layers": spec.decoder_layers or spec.encoder_layers
                                    or base.num_hidden_layers, "is_decoder": True, "add_cross_attention": True})
        model = EncoderDecoderModel(encoder=BertModel(enc, add_pooling_layer=False), decoder=BertLMHeadModel(dec))
        model.decoder.get_output_embeddings().weight = model.decoder.get_input_embeddings().weight  # tied, as loaded
        return model, enc


@lru_cache(maxsize=None)
def architecture(name: str) -> Architecture:
    """The :class:`Architecture` of a registered model, from meta-device instantiation.

    Published models (``source: hub``) use :func:`models.architecture_config` and
    :func:`models.parameter_counts` (their real hyperparameters, no hub access); the e5 stand-ins are
    built from the offline e5 checkpoint's config with their layer counts; tiny models from their configs."""
    from .backbones import param_counts
    from .train import word_embedding_modules

    spec = get_model(name)
    if spec.source == "hub":
        import torch

        from .models import architecture_config, parameter_counts
        config = architecture_config(name)
        total, non_embedding = parameter_counts(name)
        fields = _shape_fields(config)
        with torch.device("meta"):
            if spec.family == "encoder":
                from transformers import XLMRobertaModel
                model = XLMRobertaModel(config, add_pooling_layer=False)
            else:
                from transformers import MT5ForConditionalGeneration
                model = MT5ForConditionalGeneration(config)
    else:
        model, config = _meta_model(name)
        counts = param_counts(model)
        total, non_embedding = counts["total"], counts["non_embedding"]
        fields = _shape_fields(config)
        if spec.source == "e5" and spec.family == "encoder-decoder":   # BERT2BERT: depth from the decoder
            fields["decoder_layers"] = model.config.decoder.num_hidden_layers
    frozen = sum(e.weight.numel() for e in word_embedding_modules(model))
    return Architecture(family=spec.family, total_params=total, non_embedding_params=non_embedding,
                        frozen_params=frozen, **fields)


# ------------------------------------------------------------------ memory
def decoder_length(task: str) -> int:
    """Decoder tokens of a text-to-text target: label words for classification and multiple choice
    (<= 8 tokens), the answer span or tag sequence otherwise (featurize's max_target_length, 64)."""
    return 64 if TASKS[task].kind in ("extractive-QA", "token-tagging") else 8


def _self_attention(a: Architecture, s: int, e: int) -> float:
    h, d = a.hidden, a.attention_width
    return e * (h + 4 * d + 2 * a.heads * s) + (h + a.heads * s)


def _feed_forward(a: Architecture, e: int) -> float:
    return e * (a.hidden + (4 if a.gated_ff else 2) * a.ff) + a.hidden


def encoder_layer_bytes(a: Architecture, s: int, e: int) -> float:
    """Bytes one encoder layer saves per token for the backward pass (module docstring)."""
    return _self_attention(a, s, e) + _feed_forward(a, e) + e * 2 * a.hidden


def decoder_layer_bytes(a: Architecture, s_dec: int, s_enc: int, e: int) -> float:
    """Bytes one decoder layer saves per *decoder* token, its keys/values over the encoder excluded."""
    h, d = a.hidden, a.attention_width
    cross = e * (h + 2 * d + 2 * a.heads * s_enc) + (h + a.heads * s_enc)
    return _self_attention(a, s_dec, e) + cross + _feed_forward(a, e) + e * 3 * h


def activation_bytes(a: Architecture, batch: int, length: int, *, precision: str = "fp32",
                     checkpointing: bool = False, s_dec: int = 0, choices: int = 1) -> float:
    """Activations saved for one micro-batch of ``batch`` x ``choices`` sequences of ``length`` tokens."""
    e = ACTIVATION_BYTES[precision]
    seqs = batch * choices
    enc_tok, dec_tok = seqs * length, (seqs * s_dec if a.decoder_layers else 0)
    enc_layer = encoder_layer_bytes(a, length, e) * enc_tok
    dec_layer = decoder_layer_bytes(a, s_dec, length, e) * dec_tok + e * 2 * a.attention_width * enc_tok \
        if a.decoder_layers else 0.0
    if not checkpointing:
        return a.encoder_layers * enc_layer + a.decoder_layers * dec_layer
    kept = e * a.hidden * (a.encoder_layers * enc_tok + a.decoder_layers * dec_tok)
    return kept + max(enc_layer, dec_layer)


@dataclass(frozen=True)
class MemoryEstimate:
    weights: float
    gradients: float
    optimizer: float
    activations: float
    activations_checkpointed: float
    logits: float
    context: float = CONTEXT_BYTES

    def peak(self, checkpointing: bool) -> float:
        act = self.activations_checkpointed if checkpointing else self.activations
        return self.weights + self.gradients + self.optimizer + act + self.logits + self.context


def peak_memory(a: Architecture, batch: int, length: int, *, precision: str = "fp32", s_dec: int = 0,
                choices: int = 1, freeze_word_embeddings: bool = True) -> MemoryEstimate:
    """The terms of the module docstring's formula for one node's micro-batch."""
    trainable = a.total_params - (a.frozen_params if freeze_word_embeddings else 0)
    kw = dict(precision=precision, s_dec=s_dec, choices=choices)
    logits = 3 * 4 * batch * s_dec * a.vocab if a.decoder_layers else 0.0
    return MemoryEstimate(weights=WEIGHT_BYTES * a.total_params, gradients=GRAD_BYTES * trainable,
                          optimizer=ADAM_BYTES * trainable,
                          activations=activation_bytes(a, batch, length, checkpointing=False, **kw),
                          activations_checkpointed=activation_bytes(a, batch, length, checkpointing=True, **kw),
                          logits=logits)


def train_steps(examples: int, batch: int, accumulation: int, epochs: float, max_steps: int | None) -> int:
    """Optimizer steps: ``max_steps`` when set, else ``ceil(examples / effective batch) x epochs``
    (rounded up, as the Trainer does)."""
    if max_steps:
        return int(max_steps)
    return math.ceil(math.ceil(examples / (batch * accumulation)) * epochs)


# ------------------------------------------------------------------ the grid
@lru_cache(maxsize=None)
def train_examples(task: str, n: int | None) -> int:
    """Training examples a node sees: ``n`` when the profile caps it, else the whole English training
    split as :func:`xlt_helpers.data.load_task` reads it (local file, or the hub when only there)."""
    if n is not None:
        return n
    from .data import load_task
    return len(load_task(task, "train", "en"))


@dataclass(frozen=True)
class NodePlan:
    id: str
    model: str
    phase: str
    task: str
    total_params: int
    non_embedding_params: int
    batch: int
    accumulation: int
    length: int
    precision: str
    checkpointing: bool
    memory: MemoryEstimate
    steps: int | None            # None when the training split could not be counted
    train_tokens: int | None     # steps x effective batch x length: an upper bound (padding to max_length)

    @property
    def peak(self) -> float:
        return self.memory.peak(self.checkpointing)

    def fits(self, gpu_bytes: float) -> bool:
        return self.peak <= gpu_bytes


def plan_node(node, count: Callable[[str, int | None], int] = train_examples) -> NodePlan:
    """The plan of one :class:`xlt_helpers.grid.Node` (``count`` gives its training examples)."""
    p = node.params
    task = p["task"] if node.phase == "intermediate" else p["target"]
    a = architecture(p["model"])
    spec = TASKS[task]
    choices = (spec.n_choices or 1) if spec.kind == "multiple-choice" and a.family == "encoder" else 1
    precision = p.get("precision", "fp32")
    s_dec = decoder_length(task) if a.family == "encoder-decoder" else 0
    mem = peak_memory(a, p["batch_size"], p["max_length"], precision=precision, s_dec=s_dec, choices=choices)
    accum = p.get("gradient_accumulation_steps", 1)
    try:
        steps = train_steps(count(task, p.get("train_n")), p["batch_size"], accum, p["epochs"], p.get("max_steps"))
    except DataError:   # a hub-only split without the hub: "?" rather than a guess
        steps = None
    tokens = None if steps is None else steps * p["batch_size"] * accum * p["max_length"] * choices
    return NodePlan(node.id, p["model"], node.phase, task, a.total_params, a.non_embedding_params,
                    p["batch_size"], accum, p["max_length"], precision, bool(p.get("gradient_checkpointing")),
                    mem, steps, tokens)


def plan_grid(nodes: Sequence, count: Callable[[str, int | None], int] = train_examples
              ) -> list[tuple[NodePlan, int]]:
    """(plan, how many nodes share it) per distinct training setup, in grid order: seeds, and the
    intermediate task a target node starts from, change neither memory nor steps, so the full
    profile's 576 nodes print as a few dozen rows."""
    out: dict[tuple, list] = {}
    for n in nodes:
        p = n.params
        key = (n.phase, p["model"], p.get("task") or p.get("target"),
               tuple(sorted((k, str(v)) for k, v in p.items() if k not in ("seed", "intermediate"))))
        if key in out:
            out[key][1] += 1
        else:
            out[key] = [plan_node(n, count), 1]
    return [(plan, k) for plan, k in out.values()]


def _gib(x: float) -> str:
    return f"{x / GIB:.1f}"


def format_plan(plans: Sequence[tuple[NodePlan, int]], gpu_gib: float) -> list[list[str]]:
    """Rows for the ``xlt plan`` table (header first), from :func:`plan_grid`."""
    header = ["phase: task", "nodes", "model", "params total / non-emb (M)", "batch x accum x len", "prec", "weights+grad+opt GiB",
              "act GiB (ckpt)", "peak GiB", "steps", f"fits {gpu_gib:g} GiB"]
    rows = [header]
    for p, k in plans:
        m = p.memory
        state = m.weights + m.gradients + m.optimizer
        fits = "yes" if p.fits(gpu_gib * GIB) else ("with ckpt" if m.peak(True) <= gpu_gib * GIB else "NO")
        rows.append([f"{'p1' if p.phase == 'intermediate' else 'p2'}: {p.task}", str(k), p.model, f"{p.total_params / 1e6:.0f} / {p.non_embedding_params / 1e6:.0f}",
                     f"{p.batch} x {p.accumulation} x {p.length}", p.precision + (" ckpt" if p.checkpointing else ""),
                     _gib(state), f"{_gib(m.activations)} ({_gib(m.activations_checkpointed)})", _gib(p.peak),
                     "?" if p.steps is None else str(p.steps), fits])
    return rows


def uncounted_note(plans: Sequence[tuple[NodePlan, int]]) -> str | None:
    """The footer that says why some setups show '?' steps, or None when every split was counted.

    :func:`plan_node` turns a :class:`DataError` into ``steps=None`` rather than a guess. For a hub-only
    training split (no local file in xlt_helpers/tasks.py) that means neither the hub nor the local HF
    cache gave it; for a split with local files, that the files were missing and the hub fallback failed."""
    tasks = sorted({p.task for p, _ in plans if p.steps is None})
    if not tasks:
        return None
    hub_only = [t for t in tasks if TASKS[t].splits["train"].local is None]
    local = [t for t in tasks if t not in hub_only]
    parts = []
    if hub_only:
        parts.append(f"{', '.join(hub_only)}: hub-only (xlt_helpers/tasks.py), and neither the Hugging Face hub nor "
                     f"the local HF cache gave it; run `xlt plan` once with network and the cache serves it afterwards")
    if local:
        parts.append(f"{', '.join(local)}: its local files were not found (XLT_DATA_DIR, or ../shared/data beside "
                     f"the checkout) and the hub fallback failed")
    return f"steps '?': the English training split could not be counted for {'; '.join(parts)}"


def print_plan(profile_name: str, overrides: Sequence[str] = (), gpu_gib: float = 80.0) -> int:
    """``xlt plan``: the table of :func:`format_plan` for a profile; returns how many setups do not fit."""
    import sys

    from rich.console import Console
    from rich.table import Table

    from .grid import build_grid
    from .profiles import load_profile

    profile = load_profile(profile_name, overrides)
    nodes = build_grid(profile)
    plans = plan_grid(nodes)
    rows = format_plan(plans, gpu_gib)
    table = Table(title=f"profile {profile.name}: {len(nodes)} nodes, {len(plans)} distinct training setups; "
                        f"peak GPU memory estimated for one {gpu_gib:g} GiB device (xlt_helpers/plan.py)")
    for i, h in enumerate(rows[0]):
        table.add_column(h, justify="left" if i in (0, 2) else "right")
    for r in rows[1:]:
        table.add_row(*r)
    Console(width=None if sys.stdout.isatty() else 200).print(table)
    too_big = sum(1 for p, _ in plans if not p.fits(gpu_gib * GIB))
    print(f"{too_big} of {len(plans)} setups exceed {gpu_gib:g} GiB as configured"
          + (" (see 'fits': 'with ckpt' = set gradient_checkpointing: true for them; or lower batch_size and "
             "raise gradient_accumulation_steps to keep the effective batch)" if too_big else ""))
    note = uncounted_note(plans)
    if note:
        print(note)
    print("Estimates, not measurements: fp32 weights + fp32 grads + AdamW state of the trainable parameters "
          "(word embeddings frozen) + activations at batch x max_length (eager attention) + 1 GiB context.")
    return too_big
