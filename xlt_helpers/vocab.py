"""Vocabulary trimming: keep only the embedding rows the study's text can reach.

XLM-R's 250k-piece vocabulary is ~82% of e5-small's parameters (96M of 117M)
and most of its memory and optimizer state; the languages of one experiment
use a small fraction of it. Trimming keeps the rows of the pieces that occur
in the data (plus every special token), renumbers them in their original
order, and rebuilds the tokenizer with only those pieces.

Why the tokenizer stays exact on covered text: a unigram tokenizer picks the
highest-scoring segmentation (Viterbi). Deleting pieces only removes candidate
segmentations; if every piece of the original best segmentation is kept, it
is still available and still the best, so the same pieces come out, now under
their new ids. Text with pieces outside ``keep_ids`` may segment differently
(or into ``<unk>``), which is why ``covering_ids`` must see all text the
model will read: train, dev *and* every evaluation language.
"""
from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from itertools import islice
from typing import Any

import torch
from tokenizers import Tokenizer
from transformers import PreTrainedModel, PreTrainedTokenizerFast

_SPECIAL_CONFIG_IDS = ("pad_token_id", "bos_token_id", "eos_token_id", "decoder_start_token_id",
                       "sep_token_id", "cls_token_id", "mask_token_id", "unk_token_id")


def covering_ids(tokenizer: PreTrainedTokenizerFast, texts: Iterable[str], *, batch_size: int = 2048) -> list[int]:
    """Sorted ids of every piece occurring in ``texts``, plus all special ids.

    Pass *all* text the model will see (both sides of pairs, questions,
    contexts, targets, every language), each as a separate string.
    """
    ids: set[int] = set(tokenizer.all_special_ids)
    backend = tokenizer.backend_tokenizer
    it = iter(texts)
    while batch := list(islice(it, batch_size)):
        bad = [t for t in batch if not isinstance(t, str)]
        if bad:
            raise TypeError(f"covering_ids needs strings; got {type(bad[0]).__name__} {bad[0]!r}")
        for enc in backend.encode_batch(batch, add_special_tokens=False):
            ids.update(enc.ids)
    return sorted(ids)


def _normalise_keep(keep_ids: Sequence[int], vocab_size: int, where: str) -> list[int]:
    keep = sorted({int(i) for i in keep_ids})
    if not keep:
        raise ValueError(f"keep_ids is empty ({where}). Fix: build it with covering_ids(tokenizer, texts)")
    if keep[0] < 0 or keep[-1] >= vocab_size:
        bad = keep[0] if keep[0] < 0 else keep[-1]
        raise ValueError(f"keep id {bad} is outside the {where} vocabulary of size {vocab_size}. "
                         f"Fix: take keep_ids from the untrimmed tokenizer of this model")
    return keep


def _remap(old_id: int | None, new_of: dict[int, int], what: str) -> int | None:
    if old_id is None:
        return None
    if old_id not in new_of:
        raise ValueError(f"{what} (id {old_id}) is not in keep_ids. Fix: build keep_ids with covering_ids(), "
                         f"which always includes the special tokens")
    return new_of[old_id]


# --------------------------------------------------------------------------- tokenizer
def trim_tokenizer(tokenizer: PreTrainedTokenizerFast, keep_ids: Sequence[int]) -> PreTrainedTokenizerFast:
    """A tokenizer whose unigram vocabulary holds only ``keep_ids``, in the same order (new id = rank).

    Normaliser, pre-tokeniser and decoder are untouched; added tokens and the
    post-processor's special ids are renumbered. All special ids must be kept.
    """
    early = _normalise_keep(keep_ids, len(tokenizer), "tokenizer")     # cheap checks before the 17 MB JSON
    early_of = dict.fromkeys(early, 0)
    for sid in tokenizer.all_special_ids:
        _remap(sid, early_of, f"special token {tokenizer.convert_ids_to_tokens(sid)!r}")
    spec = json.loads(tokenizer.backend_tokenizer.to_str())
    model = spec["model"]
    if model.get("type") != "Unigram":
        raise ValueError(f"trim_tokenizer handles Unigram tokenizers (XLM-R, mT5); this one is "
                         f"{model.get('type')!r}. Fix: keep the full vocabulary for this model")
    keep = _normalise_keep(keep_ids, len(model["vocab"]), "tokenizer")
    new_of = {old: new for new, old in enumerate(keep)}
    model["vocab"] = [model["vocab"][i] for i in keep]
    if model.get("unk_id") is not None:
        model["unk_id"] = _remap(model["unk_id"], new_of, "the unigram <unk> piece")
    spec["added_tokens"] = [{**t, "id": new_of[t["id"]]} for t in spec.get("added_tokens", []) if t["id"] in new_of]
    if spec.get("post_processor") is not None:
        spec["post_processor"] = _remap_processor(spec["post_processor"], new_of)
    backend = Tokenizer.from_str(json.dumps(spec))
    special = {k: v for k, v in tokenizer.special_tokens_map.items() if isinstance(v, str)}
    extra = [t for t in getattr(tokenizer, "additional_special_tokens", []) or []
             if tokenizer.convert_tokens_to_ids(t) in new_of]
    new = PreTrainedTokenizerFast(
        tokenizer_object=backend, model_max_length=tokenizer.model_max_length,
        padding_side=tokenizer.padding_side, truncation_side=tokenizer.truncation_side,
        **special, **({"additional_special_tokens": extra} if extra else {}),
    )
    return new


def _remap_processor(proc: dict[str, Any], new_of: dict[int, int]) -> dict[str, Any]:
    kind = proc.get("type")
    if kind == "TemplateProcessing":
        for name, tok in proc.get("special_tokens", {}).items():
            tok["ids"] = [_remap(i, new_of, f"post-processor token {name!r}") for i in tok["ids"]]
        return proc
    if kind in ("RobertaProcessing", "BertProcessing"):
        for key in ("sep", "cls"):
            text, old = proc[key]
            proc[key] = [text, _remap(old, new_of, f"post-processor {key} token {text!r}")]
        return proc
    if kind == "Sequence":
        proc["processors"] = [_remap_processor(p, new_of) for p in proc["processors"]]
        return proc
    if kind == "ByteLevel":
        return proc
    raise ValueError(f"cannot renumber a {kind!r} post-processor; extend vocab._remap_processor")


# --------------------------------------------------------------------------- model
def _trimmed_embedding(old: torch.nn.Embedding, keep: torch.Tensor, padding_idx: int | None) -> torch.nn.Embedding:
    new = torch.nn.Embedding(len(keep), old.embedding_dim, padding_idx=padding_idx,
                             device=old.weight.device, dtype=old.weight.dtype)
    with torch.no_grad():
        new.weight.copy_(old.weight[keep])
    new.weight.requires_grad_(old.weight.requires_grad)
    return new


def _trim_lm(model: PreTrainedModel, keep: list[int], new_of: dict[int, int], done: set[int]) -> PreTrainedModel:
    """Trim one model with a single input table (and optionally an output projection).

    All checks run before the first change, so a refused trim leaves the model intact.
    """
    # XLM-R's embeddings use padding_idx twice: to find pads *and* as the position offset
    # (positions start at pad+1), so a renumbered pad would shift every position.
    for module in model.modules():
        pid = getattr(module, "padding_idx", None)
        if isinstance(pid, int) and not isinstance(module, torch.nn.Embedding):
            if _remap(pid, new_of, f"{type(module).__name__}.padding_idx") != pid:
                raise ValueError(f"trimming would renumber <pad> of {type(module).__name__} from {pid} to "
                                 f"{new_of[pid]}, shifting its position ids. Fix: keep every id below {pid}")
    idx = torch.tensor(keep, dtype=torch.long)
    old_in = model.get_input_embeddings()
    old_out = model.get_output_embeddings() if hasattr(model, "get_output_embeddings") else None
    tied = old_out is not None and old_out.weight is old_in.weight
    pad_new = None if old_in.padding_idx is None else _remap(old_in.padding_idx, new_of, "the embedding padding_idx")
    new_in = _trimmed_embedding(old_in, idx.to(old_in.weight.device), pad_new)
    model.set_input_embeddings(new_in)
    if old_out is not None:
        new_out = torch.nn.Linear(old_out.in_features, len(keep), bias=old_out.bias is not None,
                                  device=old_out.weight.device, dtype=old_out.weight.dtype)
        with torch.no_grad():
            if tied:
                new_out.weight = new_in.weight
            else:
                new_out.weight.copy_(old_out.weight[idx])
            if old_out.bias is not None:
                new_out.bias.copy_(old_out.bias[idx])
        model.set_output_embeddings(new_out)
    _remap_config(model, new_of, len(keep), done)
    return model


def _configs(model: PreTrainedModel) -> list:
    return [model.config] + ([model.generation_config] if getattr(model, "generation_config", None) else [])


def _precheck_configs(models: Sequence[PreTrainedModel], new_of: dict[int, int]) -> None:
    """Fail before any change if a configured special id (pad, eos, decoder start...) would be dropped."""
    for m in models:
        for cfg in _configs(m):
            for key in _SPECIAL_CONFIG_IDS:
                old = getattr(cfg, key, None)
                if isinstance(old, int):
                    _remap(old, new_of, f"{type(m).__name__} config.{key}")


def _remap_config(model: PreTrainedModel, new_of: dict[int, int], size: int, done: set[int]) -> None:
    """Renumber special ids in the config and generation config, each object once (they may be shared)."""
    model.config.vocab_size = size
    for cfg in _configs(model):
        if id(cfg) in done:
            continue
        done.add(id(cfg))
        for key in _SPECIAL_CONFIG_IDS:
            old = getattr(cfg, key, None)
            if isinstance(old, int):
                setattr(cfg, key, _remap(old, new_of, f"config.{key}"))


def trim_model(model: PreTrainedModel, keep_ids: Sequence[int]) -> PreTrainedModel:
    """``model`` with embedding (and LM-head) rows restricted to ``keep_ids``, in place; returned for chaining.

    Handles BERT/XLM-R bodies, ``EncoderDecoderModel`` (encoder and decoder
    tables, decoder LM head) and (m)T5 (the shared table and ``lm_head``).
    Tied output projections stay tied; ``config.vocab_size`` and special-token
    ids in the config and generation config are renumbered.
    """
    from transformers import EncoderDecoderModel

    if isinstance(model, EncoderDecoderModel):
        vocab = model.encoder.get_input_embeddings().num_embeddings
        keep = _normalise_keep(keep_ids, vocab, f"{type(model).__name__}")
        new_of = {old: new for new, old in enumerate(keep)}
        _precheck_configs([model, model.encoder, model.decoder], new_of)
        done: set[int] = set()
        _trim_lm(model.encoder, keep, new_of, done)
        _trim_lm(model.decoder, keep, new_of, done)
        _remap_config(model, new_of, len(keep), done)
        model.config.encoder.vocab_size = model.config.decoder.vocab_size = len(keep)
        return model
    vocab = model.get_input_embeddings().num_embeddings
    keep = _normalise_keep(keep_ids, vocab, type(model).__name__)
    new_of = {old: new for new, old in enumerate(keep)}
    _precheck_configs([model], new_of)
    return _trim_lm(model, keep, new_of, set())


def trim_vocab(model: PreTrainedModel, tokenizer: PreTrainedTokenizerFast,
               keep_ids: Sequence[int]) -> tuple[PreTrainedModel, PreTrainedTokenizerFast]:
    """Trim ``model`` (in place) and build the matching tokenizer; the pair maps covered text as before."""
    return trim_model(model, keep_ids), trim_tokenizer(tokenizer, keep_ids)
