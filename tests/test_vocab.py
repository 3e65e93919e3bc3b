"""Vocabulary trimming changes sizes, never outputs, on covered text."""
from __future__ import annotations

import os

import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from xlt_helpers.backbones import load_encoder, load_seq2seq, load_tokenizer, param_counts  # noqa: E402
from xlt_helpers.models import get_model  # noqa: E402
from xlt_helpers.vocab import covering_ids, trim_model, trim_tokenizer, trim_vocab  # noqa: E402

CORPUS = [
    "query: The cat sits on the mat.", "Die Katze sitzt auf der Matte.", "猫坐在垫子上。",
    "القطة تجلس على الحصيرة.", "बिल्ली चटाई पर बैठी है।", "Paka ameketi juu ya mkeka.",
    "¿Dónde está la estación de tren?", "Ответ: 42 километра.",
]


@pytest.fixture(scope="module")
def tokenizer():
    return load_tokenizer(get_model("tiny-xlmr"))


@pytest.fixture(scope="module")
def keep(tokenizer):
    return covering_ids(tokenizer, CORPUS)


@pytest.fixture(scope="module")
def small_tokenizer(tokenizer, keep):
    return trim_tokenizer(tokenizer, keep)


def test_covering_ids_are_sorted_unique_and_complete(tokenizer, keep):
    assert keep == sorted(set(keep))
    assert set(tokenizer.all_special_ids) <= set(keep)
    for text in CORPUS:
        assert set(tokenizer(text)["input_ids"]) <= set(keep)
    assert len(keep) < 200                                   # a handful of sentences, not 250k pieces
    with pytest.raises(TypeError, match="strings"):
        covering_ids(tokenizer, ["ok", None])


def test_trimmed_tokenizer_round_trips_covered_text(tokenizer, small_tokenizer, keep):
    assert len(small_tokenizer) == len(keep)
    for text in CORPUS:
        old = tokenizer(text)["input_ids"]
        new = small_tokenizer(text)["input_ids"]
        assert [keep[i] for i in new] == old
        assert small_tokenizer.decode(new, skip_special_tokens=True) == tokenizer.decode(old, skip_special_tokens=True)
    for name in ("bos", "eos", "pad", "unk", "mask"):
        old_id, new_id = getattr(tokenizer, f"{name}_token_id"), getattr(small_tokenizer, f"{name}_token_id")
        assert keep[new_id] == old_id
    pair = small_tokenizer("a cat", "eine Katze")["input_ids"]      # pair template still renumbered
    assert pair[0] == small_tokenizer.bos_token_id and pair.count(small_tokenizer.eos_token_id) == 3


def test_uncovered_text_degrades_visibly(small_tokenizer):
    """Text outside keep_ids is not silently mapped to wrong pieces: it falls back to <unk> or smaller pieces."""
    ids = small_tokenizer("Quantenchromodynamik")["input_ids"]
    assert small_tokenizer.unk_token_id in ids


def test_bad_keep_ids_are_explained(tokenizer, keep):
    with pytest.raises(ValueError, match="special token"):
        trim_tokenizer(tokenizer, [i for i in keep if i != tokenizer.mask_token_id])
    with pytest.raises(ValueError, match="outside"):
        trim_tokenizer(tokenizer, keep + [10**7])
    tiny = load_encoder(get_model("tiny-xlmr"))
    vocab = tiny.config.vocab_size
    with pytest.raises(ValueError, match="bos_token_id .*not in keep_ids"):
        trim_model(tiny, [i for i in keep if i != 0])
    assert tiny.config.vocab_size == tiny.get_input_embeddings().num_embeddings == vocab   # refused = untouched


@pytest.mark.parametrize("name", ["tiny-xlmr", "e5-L3"])
def test_trimmed_encoder_gives_identical_hidden_states(name, tokenizer, small_tokenizer, keep):
    full = load_encoder(get_model(name)).eval()
    small = load_encoder(get_model(name), vocab_keep=keep).eval()
    a = tokenizer(CORPUS, padding=True, return_tensors="pt")
    b = small_tokenizer(CORPUS, padding=True, return_tensors="pt")
    with torch.no_grad():
        h_full, h_small = full(**a).last_hidden_state, small(**b).last_hidden_state
    torch.testing.assert_close(h_small, h_full, atol=1e-5, rtol=0)
    assert small.config.vocab_size == len(keep) == small.get_input_embeddings().num_embeddings
    assert param_counts(small)["non_embedding"] == param_counts(full)["non_embedding"]
    assert param_counts(small)["embedding"] < param_counts(full)["embedding"]


@pytest.mark.parametrize("name", ["tiny-mt5", "e5ed-L3"])
def test_trimmed_seq2seq_gives_identical_logits(name, tokenizer, keep):
    full = load_seq2seq(get_model(name)).eval()
    small, small_tok = trim_vocab(load_seq2seq(get_model(name)), tokenizer, keep)
    small.eval()
    a = tokenizer(CORPUS[:4], padding=True, return_tensors="pt")
    b = small_tok(CORPUS[:4], padding=True, return_tensors="pt")
    la = tokenizer(CORPUS[4:], padding=True, return_tensors="pt")["input_ids"]
    lb = small_tok(CORPUS[4:], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        logits_full = full(**a, labels=la).logits
        logits_small = small(**b, labels=lb).logits
    assert logits_small.shape[-1] == len(keep)
    torch.testing.assert_close(logits_small, logits_full[..., keep], atol=1e-5, rtol=0)
    out = small.get_output_embeddings()
    assert out.weight.shape[0] == len(keep)
    if name == "e5ed-L3":
        assert out.weight is small.decoder.get_input_embeddings().weight          # still tied
        assert small.config.decoder.vocab_size == small.config.encoder.vocab_size == len(keep)
    gen = small.generate(**b, max_new_tokens=3, do_sample=False)
    assert int(gen.max()) < len(keep)


def test_trimmed_encoder_decoder_saves_and_reloads(tmp_path, tokenizer, small_tokenizer, keep):
    """Run checkpoints of a trimmed model must reload to the same function (tied weights included)."""
    from transformers import EncoderDecoderModel

    model = load_seq2seq(get_model("e5ed-L3"), vocab_keep=keep).eval()
    model.save_pretrained(tmp_path)
    again = EncoderDecoderModel.from_pretrained(tmp_path).eval()   # (adds an unused random pooler)
    batch = small_tokenizer(CORPUS[:2], padding=True, return_tensors="pt")
    labels = small_tokenizer(CORPUS[2:4], padding=True, return_tensors="pt")["input_ids"]
    with torch.no_grad():
        torch.testing.assert_close(again(**batch, labels=labels).logits, model(**batch, labels=labels).logits)
    assert again.decoder.get_output_embeddings().weight is again.decoder.get_input_embeddings().weight
