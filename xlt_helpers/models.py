"""Every model of the study, described once, as data.

Two families stand behind one interface:

* ``encoder`` (XLM-R style): a transformer encoder; task heads sit on a pooled
  vector (classification, multiple choice), on token states (tagging) or on
  start/end logits (extractive QA). **Pooling is part of the spec**: XLM-R was
  pre-trained with ``<s>`` as its sentence slot, multilingual-e5 was trained to
  be mean-pooled; a ``[CLS]`` head on e5 does not learn (issue 3's measurement:
  loss 1.097 -> 1.089, accuracy 0.335 everywhere).
* ``encoder-decoder`` (mT5 style): every task is text-to-text.

On this CPU the real XLM-R / mT5 ladders are replaced by stand-ins made from
the one offline multilingual checkpoint, multilingual-e5-small (a 12-layer,
hidden-384 MiniLM with XLM-R's 250k vocabulary): encoders keep its first k
layers; encoder-decoders are warm-started from it (Rothe et al. 2020).
``stands_for`` says so, and the book prints it next to every result.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from transformers import PretrainedConfig

Family = Literal["encoder", "encoder-decoder"]


@dataclass(frozen=True)
class ModelSpec:
    name: str
    family: Family
    # hub: from_pretrained(hub_id); e5: offline e5 (hub if reachable); tiny: random init; random: the
    # published architecture (architecture_config(name)) at random init, no hub, for tests that check a
    # configuration on CPU before a GPU run (no registered model uses it: a test swaps it in)
    source: Literal["hub", "e5", "tiny", "random"]
    hub_id: str | None
    pooling: Literal["mean", "cls"] = "cls"
    encoder_layers: int | None = None         # keep the first k encoder layers (None = all)
    decoder_layers: int | None = None         # encoder-decoder stand-ins: decoder depth (warm-started)
    stands_for: str = ""                      # what this model stands in for, in words
    learning_rate: float = 1e-5               # default; profiles override
    # Warm-started encoder-decoders only: None = transformers' random cross-attention; a number g =
    # cross-attention copied from the layer's self-attention with a zero query (uniform attention,
    # i.e. the mean pooling e5 was trained for) and its output projection scaled by g (backbones.py).
    # It applies to tasks whose targets are *ranked* (one label word or letter); tasks whose targets
    # are *generated* (extractive QA, tagging) start from the random cross-attention: see
    # cross_attention_gain_for.
    cross_attention_gain: float | None = None
    # Token positions the encoder can read (the longest usable max_length); None = relative position
    # buckets (T5), no table to run past. Checked when a profile is validated, because running past
    # the table fails only inside a node ("index 514 is out of bounds"). From each config, without
    # loading weights: e5-small (a BERT) has max_position_embeddings 512; XLM-R has 514 of which
    # position ids start at padding_idx + 1 = 2, so 512 usable (tests/test_profiles.py checks both).
    max_positions: int | None = 512

    def cross_attention_gain_for(self, generated_targets: bool) -> float | None:
        """The cross-attention recipe of a node: ``cross_attention_gain`` when its targets are ranked,
        None (transformers' random cross-attention) when they are generated token by token.

        Why: under a zero query the copied cross-attention returns the same source summary at every
        decoder position, and the gain of 10 makes it drown the decoder's own token stream. A one-token
        label word does not care (XNLI learns); generation does: the decoder cannot tell how far it has
        got, so it repeats ("1932 1932 1932 ...") and does not learn where ``</s>`` goes. Measured
        (tests/test_learning.py's 16 shortest MLQA training questions, e5ed-L3, 40 steps at lr 1e-3):
        gain 10 -> EM 18.8 with looping answers; gain 3 -> 68.8; gain 1 -> 43.8; random -> 93.8.
        With the study's budget the loop shows as the empty string (the cpu study's MLQA nodes)."""
        return None if generated_targets else self.cross_attention_gain

    def weight_recipe(self, generated_targets: bool = False) -> dict[str, float]:
        """Settings that change the starting weights beyond the name; hashed into run ids
        (grid.run_id) only when set, so adding a recipe re-runs exactly the affected nodes."""
        gain = self.cross_attention_gain_for(generated_targets)
        return {} if gain is None else {"cross_attention_gain": gain}


MODELS: dict[str, ModelSpec] = {}


def _register(spec: ModelSpec) -> ModelSpec:
    MODELS[spec.name] = spec
    return spec


# --- full-scale models (hub; GPU) -------------------------------------------------
for _size in ("base", "large"):
    _register(ModelSpec(f"xlmr-{_size}", "encoder", "hub", f"FacebookAI/xlm-roberta-{_size}", pooling="cls",
                        stands_for=f"XLM-R {_size.title()} itself"))
for _size in ("small", "base", "large", "xl"):
    _register(ModelSpec(f"mt5-{_size}", "encoder-decoder", "hub", f"google/mt5-{_size}", max_positions=None,
                        stands_for=f"mT5 {_size.upper() if _size == 'xl' else _size.title()} itself",
                        learning_rate=1e-4 if _size in ("small", "base") else 1e-5))
_register(ModelSpec("e5-small", "encoder", "e5", "intfloat/multilingual-e5-small", pooling="mean",
                    stands_for="multilingual-e5-small itself (12 layers, hidden 384)", learning_rate=2e-4))

# --- CPU ladders from the offline multilingual-e5-small ------------------------
for _k in (3, 6, 12):
    _register(ModelSpec(f"e5-L{_k}", "encoder", "e5", "intfloat/multilingual-e5-small", pooling="mean",
                        encoder_layers=_k, learning_rate=2e-4,
                        stands_for=f"an XLM-R-style encoder size step: first {_k} of e5-small's 12 layers"))
for _k in (3, 6):
    _register(ModelSpec(f"e5ed-L{_k}", "encoder-decoder", "e5", "intfloat/multilingual-e5-small", pooling="mean",
                        encoder_layers=_k, decoder_layers=_k, learning_rate=2e-4,
                        # measured (e5ed-L3, XNLI-en): transformers' random cross-attention adds ~0.4% of
                        # between-example spread to the decoder's first state, and 4,000 pairs x 2 epochs
                        # stay at chance (33.0); copied + zero query + gain 10: English 51.0 on 200 dev
                        # pairs; gain 30 diverges (a 64-pair memorisation test: loss 0.3 -> 1.4)
                        cross_attention_gain=10.0,
                        stands_for=(f"an mT5-style encoder-decoder size step: {_k}-layer encoder and {_k}-layer "
                                    f"decoder warm-started from e5-small (Rothe et al. 2020)")))

# --- tiny random models for tests and the smoke profile ------------------------
_register(ModelSpec("tiny-xlmr", "encoder", "tiny", None, pooling="cls", learning_rate=1e-3,
                    stands_for="nothing: a 2-layer random XLM-R config for tests"))
_register(ModelSpec("tiny-mt5", "encoder-decoder", "tiny", None, learning_rate=1e-3, max_positions=None,
                    stands_for="nothing: a 2-layer random mT5 config for tests"))


def get_model(name: str) -> ModelSpec:
    """The spec of ``name``; an unknown name lists the valid ones."""
    try:
        return MODELS[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; valid models: {', '.join(sorted(MODELS))}") from None


# --- the published models' architectures (full-scale size axis) ---------------------------------
# The real hyperparameters, as transformers config kwargs, written once. Sources: the hub configs of
# FacebookAI/xlm-roberta-{base,large} and google/mt5-{small,...,xxl} (= the XLM-R paper's Table 7 and
# the t5x mT5 gin files: emb_dim, mlp_dim, num_heads, head_dim, layers, vocab 250,112). Names follow
# MODELS where the `full` profile has the model; mt5-xxl has no MODELS entry (too large to fine-tune
# in the full profile) but is in the mT5 paper's tables.
_XLMR_COMMON = dict(vocab_size=250_002, max_position_embeddings=514, type_vocab_size=1,
                    layer_norm_eps=1e-5, pad_token_id=1, bos_token_id=0, eos_token_id=2)
# tie_word_embeddings=False is the released mT5's fact (hub config; t5x logits_via_embedding=False):
# its output projection (lm_head) is a second vocab x d_model matrix.
_MT5_COMMON = dict(vocab_size=250_112, d_kv=64, feed_forward_proj="gated-gelu", relative_attention_num_buckets=32,
                   relative_attention_max_distance=128, tie_word_embeddings=False, layer_norm_epsilon=1e-6,
                   pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
ARCHITECTURES: dict[str, tuple[str, dict]] = {
    "xlmr-base": ("xlm-roberta", dict(_XLMR_COMMON, hidden_size=768, num_hidden_layers=12,
                                      num_attention_heads=12, intermediate_size=3072)),
    "xlmr-large": ("xlm-roberta", dict(_XLMR_COMMON, hidden_size=1024, num_hidden_layers=24,
                                       num_attention_heads=16, intermediate_size=4096)),
    "mt5-small": ("mt5", dict(_MT5_COMMON, d_model=512, d_ff=1024, num_heads=6, num_layers=8, num_decoder_layers=8)),
    "mt5-base": ("mt5", dict(_MT5_COMMON, d_model=768, d_ff=2048, num_heads=12, num_layers=12,
                             num_decoder_layers=12)),
    "mt5-large": ("mt5", dict(_MT5_COMMON, d_model=1024, d_ff=2816, num_heads=16, num_layers=24,
                              num_decoder_layers=24)),
    "mt5-xl": ("mt5", dict(_MT5_COMMON, d_model=2048, d_ff=5120, num_heads=32, num_layers=24, num_decoder_layers=24)),
    "mt5-xxl": ("mt5", dict(_MT5_COMMON, d_model=4096, d_ff=10240, num_heads=64, num_layers=24,
                            num_decoder_layers=24)),
}
# The papers' own rounded totals (XLM-R: Conneau et al. 2020, Table 7; mT5: Xue et al. 2021, Table 1
# and Section 4), kept beside the counts so the book can show both.
PAPER_TOTALS: dict[str, int] = {
    "xlmr-base": 270_000_000, "xlmr-large": 550_000_000,
    "mt5-small": 300_000_000, "mt5-base": 580_000_000, "mt5-large": 1_200_000_000,
    "mt5-xl": 3_700_000_000, "mt5-xxl": 13_000_000_000,
}


def _architecture(name: str, architectures: dict[str, tuple[str, dict]] | None = None) -> tuple[str, dict]:
    table = ARCHITECTURES if architectures is None else architectures
    try:
        return table[name]
    except KeyError:
        raise KeyError(f"no architecture written for {name!r}; models.ARCHITECTURES has "
                       f"{', '.join(sorted(table))}") from None


def architecture_config(name: str,
                        architectures: dict[str, tuple[str, dict]] | None = None) -> PretrainedConfig:
    """The transformers config of a published model, built from ``ARCHITECTURES`` (no hub access).

    Note: transformers 5.x's ``MT5Config`` forces ``tie_word_embeddings=True`` whatever it is given;
    the released mT5 checkpoints are untied, which :func:`parameter_counts` reads from
    ``ARCHITECTURES`` rather than from the config."""
    from transformers import AutoConfig

    model_type, kwargs = _architecture(name, architectures)
    return AutoConfig.for_model(model_type, **kwargs)


def parameter_counts(name: str, architectures: dict[str, tuple[str, dict]] | None = None) -> tuple[int, int]:
    """``(total, non_embedding)`` parameters of a published model, counted from its architecture
    instantiated on the meta device (shapes only: no weights, no hub; mT5-XXL takes about a second).

    What is counted, and why:

    * XLM-R: the encoder (``XLMRobertaModel``) **without its pooler** and without the MLM head. The
      pooler is not part of the pre-trained model (the released checkpoint has no trained pooler:
      transformers initialises it at random) and the study's heads sit on the encoder states; the
      MLM head's output matrix is tied to the input embedding, so the pre-trained model has just the
      encoder plus a 1-layer MLM transform that fine-tuning discards.
    * mT5: the whole encoder-decoder with its **untied** output projection (``lm_head``), as released
      (``tie_word_embeddings=False``); it is what generates every answer in text-to-text fine-tuning.
      transformers 5.x ties it regardless (see :func:`architecture_config`), so when the instantiated
      model shares ``lm_head`` with the input table, one vocab x d_model matrix is added back.
    * embedding = every lookup table (token, position, token-type, relative-position bias) plus an
      untied output projection: the study's one definition (:func:`backbones.param_counts`, also the
      size axis of the CPU stand-ins). The token matrices are all but ~0.5% of it. Non-embedding =
      total - embedding, the size measure of scaling laws (Kaplan et al. 2020): at the small end most
      parameters are the 250k-token vocabulary, which says little about capacity.
    """
    import torch

    from .backbones import param_counts

    model_type, kwargs = _architecture(name, architectures)
    config = architecture_config(name, architectures)
    with torch.device("meta"):
        if model_type == "xlm-roberta":
            from transformers import XLMRobertaModel
            model = XLMRobertaModel(config, add_pooling_layer=False)
        elif model_type == "mt5":
            from transformers import MT5ForConditionalGeneration
            model = MT5ForConditionalGeneration(config)
        else:
            raise ValueError(f"{name!r}: model type {model_type!r} has no counting rule; "
                             "add one to models.parameter_counts")
    counts = param_counts(model)
    total, embedding = counts["total"], counts["embedding"]
    if model_type == "mt5" and not kwargs.get("tie_word_embeddings", True) \
            and model.lm_head.weight is model.shared.weight:
        extra = model.lm_head.weight.numel()
        total, embedding = total + extra, embedding + extra
    return total, total - embedding
