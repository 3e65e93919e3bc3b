"""The published models' architectures and their parameter counts (meta device: no weights, no hub)."""
from __future__ import annotations

import time

import pytest

from xlt_helpers.models import ARCHITECTURES, MODELS, PAPER_TOTALS, architecture_config, parameter_counts

# hand-worked tiny architectures (counts derived in the comments below)
TINY = {
    # XLM-R, V=10, H=4, 1 layer, 2 heads, FF 8, 6 positions, 1 token type:
    # embeddings: word 40 + position 24 + type 4 + LayerNorm 8 = 76
    # layer: q,k,v 3*(16+4)=60, attention out 20 + LN 8, FF in 4*8+8=40, FF out 8*4+4=36 + LN 8 = 172
    # total 248; embedding (lookup tables) 40+24+4 = 68; non-embedding 180
    "tiny-enc": ("xlm-roberta", dict(vocab_size=10, hidden_size=4, num_hidden_layers=1, num_attention_heads=2,
                                     intermediate_size=8, max_position_embeddings=6, type_vocab_size=1,
                                     pad_token_id=1, bos_token_id=0, eos_token_id=2)),
    # mT5, V=10, d_model 4, 2 heads x d_kv 2, d_ff 8 (gated: wi_0, wi_1, wo), 1+1 layers, 32 buckets:
    # shared 40; encoder block: q,k,v,o 4*16=64 + rel. bias 32*2=64 + LN 4, FF 3*32 + LN 4 = 232;
    # encoder final LN 4 -> 236; decoder block: self-attn 64 + rel. bias 64 + LN 4, cross-attn 64 + LN 4,
    # FF 100 = 300; final LN 4 -> 304; untied lm_head 40. Total 40+236+304+40 = 620;
    # embedding = shared 40 + lm_head 40 + two rel. bias tables 128 = 208; non-embedding 412
    "tiny-ed": ("mt5", dict(vocab_size=10, d_model=4, d_kv=2, d_ff=8, num_heads=2, num_layers=1,
                            num_decoder_layers=1, feed_forward_proj="gated-gelu",
                            relative_attention_num_buckets=32, tie_word_embeddings=False)),
}


def test_tiny_counts_by_hand():
    assert parameter_counts("tiny-enc", TINY) == (248, 180)
    assert parameter_counts("tiny-ed", TINY) == (620, 412)


def test_tied_mt5_counts_one_output_matrix():
    tied = {"t": ("mt5", dict(TINY["tiny-ed"][1], tie_word_embeddings=True))}
    assert parameter_counts("t", tied) == (620 - 40, 412)


# (model, our count rounded as the paper rounds, relative tolerance to the paper's printed total)
@pytest.mark.parametrize("name, tol", [
    ("mt5-small", 0.01), ("mt5-base", 0.01), ("mt5-large", 0.03), ("mt5-xl", 0.015), ("mt5-xxl", 0.01),
    # The XLM-R paper's Table 7 prints 270M / 550M; the architecture gives 277.5M / 558.8M (+2.8%, +1.6%)
    # with or without the pooler (0.6M / 1.0M). The paper does not say what it counted; the hub models
    # (FacebookAI/xlm-roberta-*) load with exactly these shapes.
    ("xlmr-base", 0.03), ("xlmr-large", 0.02),
])
def test_totals_match_the_papers(name, tol):
    total, non_emb = parameter_counts(name)
    assert total == pytest.approx(PAPER_TOTALS[name], rel=tol)
    assert 0 < non_emb < total


def test_exact_counts_and_embedding_share():
    counts = {n: parameter_counts(n) for n in ARCHITECTURES}
    assert counts["xlmr-base"] == (277_453_056, 85_056_000)
    assert counts["mt5-small"] == (300_176_768, 44_061_696)
    assert counts["mt5-xxl"] == (12_921_057_280, 10_872_135_680)
    # at the small end most of mT5 is its two 250,112 x 512 vocabulary matrices
    assert 1 - counts["mt5-small"][1] / counts["mt5-small"][0] > 0.85
    # mT5-Small has fewer non-embedding parameters than XLM-R Base although more in total
    assert counts["mt5-small"][0] > counts["xlmr-base"][0] and counts["mt5-small"][1] < counts["xlmr-base"][1]


def test_full_profile_models_share_names_and_configs():
    for name in ("xlmr-base", "xlmr-large", "mt5-small", "mt5-base", "mt5-large", "mt5-xl"):
        assert name in MODELS and MODELS[name].source == "hub"
    cfg = architecture_config("mt5-large")
    assert (cfg.d_model, cfg.d_ff, cfg.num_heads, cfg.num_layers) == (1024, 2816, 16, 24)
    assert architecture_config("xlmr-large").hidden_size == 1024


def test_meta_instantiation_is_fast():
    t = time.perf_counter()
    parameter_counts("mt5-xxl")
    assert time.perf_counter() - t < 20


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(KeyError, match="mt5-xxl"):
        parameter_counts("gpt-5")
