"""Turn a :class:`~xlt_helpers.models.ModelSpec` into a tokenizer and a model body.

One loader per family, three sources behind each (``hub``, ``e5``, ``tiny``),
so training code never branches on where weights come from:

* ``hub``: ``from_pretrained(hub_id)`` (full-scale runs on a GPU machine).
* ``e5``: multilingual-e5-small from the hub when it can be reached, else the
  offline checkpoint converted by :mod:`xlt_helpers.e5_offline`; encoders keep
  the first ``encoder_layers`` layers; encoder-decoders are warm-started BERT2BERT
  models (Rothe et al. 2020).
* ``tiny``: random 2-layer models with the XLM-R vocabulary, seeded, for tests.
* ``random``: a published architecture (:func:`xlt_helpers.models.architecture_config`) at random
  initialisation, seeded, with the offline XLM-R tokenizer: a CPU test trains the real xlmr-base and
  mt5-small shapes through the real path without the hub (mT5's own sentencepiece vocabulary is not
  offline; XLM-R's 250,002 ids fit inside mT5's 250,112-row table, and the special ids follow XLM-R).

Encoders are returned as *bodies* without BERT's pooler: every head in this
study pools for itself (``spec.pooling``), and e5's file has no pooler weights.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import torch
from transformers import (
    AutoModel,
    AutoTokenizer,
    BertModel,
    EncoderDecoderModel,
    MT5Config,
    MT5ForConditionalGeneration,
    PreTrainedModel,
    PreTrainedTokenizerFast,
    XLMRobertaConfig,
    XLMRobertaModel,
)
from transformers.utils import logging as hf_logging

from .e5_offline import (
    XLMR_BOS,
    XLMR_EOS,
    XLMR_PAD,
    build_xlmr_tokenizer,
    e5_checkpoint_dir,
    xlmr_vocab_size,
)
from .hub import hub_reachable
from .models import ModelSpec

TINY_SEED = 1234          # tiny models are random but identical from run to run


@contextlib.contextmanager
def _quiet_loading() -> Iterator[None]:
    """Silence the expected 'unused/newly initialised weights' reports of truncation and warm-starting."""
    before, bar = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(before)
        if bar:
            hf_logging.enable_progress_bar()


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """Seed torch's RNG for a block without disturbing the caller's RNG stream."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        yield


# --------------------------------------------------------------------------- configs
def tiny_xlmr_config() -> XLMRobertaConfig:
    """A 2-layer, hidden-32 XLM-R with the real XLM-R vocabulary (so tokenised data is shared)."""
    return XLMRobertaConfig(
        vocab_size=xlmr_vocab_size(), hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=64, max_position_embeddings=514, type_vocab_size=1,
        pad_token_id=XLMR_PAD, bos_token_id=XLMR_BOS, eos_token_id=XLMR_EOS,
    )


def tiny_mt5_config() -> MT5Config:
    """A 2+2-layer, d_model-32 mT5 over the XLM-R vocabulary; decoding starts from ``<pad>`` as in T5.

    (transformers 5.x's ``MT5Config`` always ties ``lm_head`` to the input table.)
    """
    return MT5Config(
        vocab_size=xlmr_vocab_size(), d_model=32, d_kv=16, d_ff=64, num_layers=2, num_decoder_layers=2,
        num_heads=2, feed_forward_proj="gated-gelu",
        pad_token_id=XLMR_PAD, eos_token_id=XLMR_EOS, decoder_start_token_id=XLMR_PAD,
    )


# --------------------------------------------------------------------------- tokenizers
def load_tokenizer(spec: ModelSpec) -> PreTrainedTokenizerFast:
    """The tokenizer of ``spec``.

    e5 and tiny models use the offline XLM-R tokenizer file whatever the
    network state: it *is* e5's tokenizer, and using one file keeps token ids
    identical between the hub and the offline checkpoint.
    """
    if spec.source == "hub":
        return AutoTokenizer.from_pretrained(spec.hub_id)
    if spec.source in ("e5", "tiny", "random"):
        return build_xlmr_tokenizer()
    raise ValueError(f"model {spec.name!r} has unknown source {spec.source!r}; expected hub, e5, tiny or random")


# --------------------------------------------------------------------------- models
def _e5_source(spec: ModelSpec) -> str:
    return spec.hub_id if (spec.hub_id and hub_reachable()) else str(e5_checkpoint_dir())


def _layer_kwargs(spec: ModelSpec, key: str = "num_hidden_layers") -> dict:
    return {} if spec.encoder_layers is None else {key: spec.encoder_layers}


def load_encoder(spec: ModelSpec, *, vocab_keep: Sequence[int] | None = None) -> PreTrainedModel:
    """The encoder body of ``spec`` (no pooler), its first ``spec.encoder_layers`` layers.

    Truncation passes ``num_hidden_layers`` to ``from_pretrained``, so dropped
    layers are never materialised. ``vocab_keep`` trims the embedding right
    after loading (see :func:`xlt_helpers.vocab.trim_model`); trim the tokenizer
    with the same ids (:func:`xlt_helpers.vocab.trim_tokenizer`).
    """
    if spec.family != "encoder":
        raise ValueError(f"model {spec.name!r} is a {spec.family} model; load it with load_seq2seq")
    with _quiet_loading():
        if spec.source == "hub":
            model = AutoModel.from_pretrained(spec.hub_id, add_pooling_layer=False, **_layer_kwargs(spec))
        elif spec.source == "e5":
            model = BertModel.from_pretrained(_e5_source(spec), add_pooling_layer=False, **_layer_kwargs(spec))
        elif spec.source == "tiny":
            with _seeded(TINY_SEED):
                model = XLMRobertaModel(tiny_xlmr_config(), add_pooling_layer=False)
        elif spec.source == "random":
            with _seeded(TINY_SEED):
                model = AutoModel.from_config(_random_init_config(spec), add_pooling_layer=False)
        else:
            raise ValueError(f"model {spec.name!r} has unknown source {spec.source!r}; expected hub, e5, tiny or random")
    return _maybe_trim(model, vocab_keep)


def load_seq2seq(spec: ModelSpec, *, vocab_keep: Sequence[int] | None = None,
                 generated_targets: bool = False) -> PreTrainedModel:
    """The text-to-text model of ``spec``, ready for ``forward(labels=...)`` and ``generate()``.

    ``e5ed-L{k}`` is BERT2BERT (Rothe et al. 2020): encoder = e5's first k
    layers; decoder = a ``BertLMHeadModel`` from the same k layers with a
    randomly initialised LM-head transform, output embeddings tied to the
    decoder's input embeddings, and cross-attention set by the spec's
    ``cross_attention_gain_for(generated_targets)`` (:func:`_init_cross_attention`):
    pass ``generated_targets=True`` for tasks whose targets are generated
    (QA answers, tag sequences). Generation starts from ``<s>`` and stops at ``</s>``.
    """
    if spec.family != "encoder-decoder":
        raise ValueError(f"model {spec.name!r} is a {spec.family} model; load it with load_encoder")
    with _quiet_loading():
        if spec.source == "hub":
            model = MT5ForConditionalGeneration.from_pretrained(spec.hub_id)
        elif spec.source == "tiny":
            with _seeded(TINY_SEED):
                model = MT5ForConditionalGeneration(tiny_mt5_config())
        elif spec.source == "e5":
            model = _warm_started_bert2bert(spec, spec.cross_attention_gain_for(generated_targets))
        elif spec.source == "random":
            with _seeded(TINY_SEED):
                model = MT5ForConditionalGeneration(_random_init_config(spec))
        else:
            raise ValueError(f"model {spec.name!r} has unknown source {spec.source!r}; expected hub, e5, tiny or random")
    return _maybe_trim(model, vocab_keep)


def _random_init_config(spec: ModelSpec):
    """The published architecture of ``spec.name`` with XLM-R's special ids (the tokenizer in use)."""
    from .models import architecture_config

    config = architecture_config(spec.name)
    config.pad_token_id, config.eos_token_id, config.bos_token_id = XLMR_PAD, XLMR_EOS, XLMR_BOS
    if spec.family == "encoder-decoder":
        config.decoder_start_token_id = XLMR_PAD          # T5 starts decoding from <pad>
    return config


def _warm_started_bert2bert(spec: ModelSpec, cross_attention_gain: float | None) -> EncoderDecoderModel:
    src = _e5_source(spec)
    enc_layers = spec.encoder_layers
    dec_layers = spec.decoder_layers if spec.decoder_layers is not None else spec.encoder_layers
    enc_kw = {} if enc_layers is None else {"encoder_num_hidden_layers": enc_layers}
    dec_kw = {} if dec_layers is None else {"decoder_num_hidden_layers": dec_layers}
    with _seeded(TINY_SEED):      # the new cross-attention weights are the same on every run
        model = EncoderDecoderModel.from_encoder_decoder_pretrained(
            src, src, encoder_add_pooling_layer=False, **enc_kw, **dec_kw)
    bos, pad, eos = XLMR_BOS, XLMR_PAD, XLMR_EOS
    for cfg in (model.config, model.generation_config):
        cfg.decoder_start_token_id, cfg.pad_token_id, cfg.eos_token_id, cfg.bos_token_id = bos, pad, eos, bos
    model.config.vocab_size = model.config.decoder.vocab_size
    model.decoder.config.tie_word_embeddings = True
    out = model.decoder.get_output_embeddings()
    if out.weight is not model.decoder.get_input_embeddings().weight:
        out.weight = model.decoder.get_input_embeddings().weight
    if cross_attention_gain is not None:
        _init_cross_attention(model, cross_attention_gain)
    return model


def _init_cross_attention(model: EncoderDecoderModel, gain: float) -> None:
    """Warm-start every decoder layer's cross-attention from its own self-attention.

    Why: with transformers' random cross-attention (std 0.02) the decoder's
    first state hardly depends on the input (0.4% of its norm varies between
    XNLI examples) and a small budget never leaves the label prior. Keys,
    values, output projection and LayerNorm are copied; the query is zeroed,
    so attention starts uniform over the source, i.e. the masked mean pooling
    e5 was trained for; the output projection is scaled by ``gain`` so that
    this summary is not drowned by the residual stream. The query still gets
    gradients and learns where to look.
    """
    with torch.no_grad():
        for layer in model.decoder.bert.encoder.layer:
            self_att, cross = layer.attention, layer.crossattention
            cross.self.key.load_state_dict(self_att.self.key.state_dict())
            cross.self.value.load_state_dict(self_att.self.value.state_dict())
            cross.output.load_state_dict(self_att.output.state_dict())
            cross.self.query.weight.zero_()
            cross.self.query.bias.zero_()
            cross.output.dense.weight.mul_(gain)
            cross.output.dense.bias.mul_(gain)


def _maybe_trim(model: PreTrainedModel, vocab_keep: Sequence[int] | None) -> PreTrainedModel:
    if vocab_keep is None:
        return model
    from .vocab import trim_model

    return trim_model(model, vocab_keep)


def param_counts(model: torch.nn.Module) -> dict[str, int]:
    """``{"total", "embedding", "non_embedding"}``, each shared parameter counted once.

    "embedding" is every lookup table (token, position, type, relative
    position) plus an *untied* output projection; "non_embedding" is the rest,
    the number scaling laws use (Kaplan et al. 2020), which vocabulary
    trimming leaves unchanged.
    """
    emb_ids: set[int] = set()
    for module in model.modules():
        if isinstance(module, torch.nn.Embedding):
            emb_ids.add(id(module.weight))
    out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    if out is not None:
        emb_ids.update(id(p) for p in out.parameters())
    params = list(model.parameters())          # unique parameters (tied ones appear once)
    total = sum(p.numel() for p in params)
    embedding = sum(p.numel() for p in params if id(p) in emb_ids)
    return {"total": total, "embedding": embedding, "non_embedding": total - embedding}
