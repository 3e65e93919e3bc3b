"""The GPU plan: memory terms worked by hand on toy shapes, counts from meta instantiation, steps, the table."""
from __future__ import annotations

import pytest

from xlt_helpers import plan
from xlt_helpers.plan import (CONTEXT_BYTES, Architecture, activation_bytes, architecture, encoder_layer_bytes,
                              peak_memory, train_steps)

ENC = Architecture(family="encoder", hidden=4, heads=2, attention_width=4, ff=8, gated_ff=False, encoder_layers=2,
                   decoder_layers=0, vocab=10, total_params=100, non_embedding_params=60, frozen_params=40)
ED = Architecture(family="encoder-decoder", hidden=4, heads=2, attention_width=4, ff=8, gated_ff=True,
                  encoder_layers=1, decoder_layers=1, vocab=10, total_params=100, non_embedding_params=60,
                  frozen_params=40)


def test_layer_formula_reduces_to_korthikanti_for_a_4h_feed_forward_in_16_bit():
    """34 h + 5 a s bytes per token and layer (Korthikanti et al. 2022): h 8, a 2, s 5 -> 272 + 50 = 322."""
    a = Architecture(family="encoder", hidden=8, heads=2, attention_width=8, ff=32, gated_ff=False, encoder_layers=1,
                     decoder_layers=0, vocab=10, total_params=0, non_embedding_params=0, frozen_params=0)
    assert encoder_layer_bytes(a, 5, 2) == 322


def test_encoder_activations_by_hand():
    # per token and layer, fp32 (e 4), s 3: attention 4 (4 + 16 + 12) + (4 + 6) = 138; feed-forward
    # 4 (4 + 16) + 4 = 84; norms 4 * 8 = 32 -> 254; x 6 tokens (batch 2) x 2 layers = 3,048
    assert activation_bytes(ENC, 2, 3) == 3048
    # checkpointed: layer inputs 4 * 4 * 2 layers * 6 tokens = 192, plus one layer rebuilt (1,524)
    assert activation_bytes(ENC, 2, 3, checkpointing=True) == 1716
    # bf16: e 2 -> attention 2 * 32 + 10 = 74, feed-forward 44, norms 16 = 134 per token and layer
    assert activation_bytes(ENC, 2, 3, precision="bf16") == 134 * 6 * 2
    # multiple choice multiplies the sequences
    assert activation_bytes(ENC, 2, 3, choices=4) == 4 * 3048


def test_encoder_decoder_activations_and_logits_by_hand():
    # encoder token (s 3, gated feed-forward 4 (4 + 32) + 4 = 148): 138 + 148 + 32 = 318, x 3 tokens = 954;
    # decoder token (s_dec 2): self 4 (4 + 16 + 8) + 8 = 120, cross 4 (4 + 8 + 12) + 10 = 106, ff 148,
    # norms 48 -> 422, x 2 = 844; cross keys/values 4 * 8 * 3 encoder tokens = 96. Sum 1,894.
    assert activation_bytes(ED, 1, 3, s_dec=2) == 1894
    m = peak_memory(ED, 1, 3, s_dec=2)
    assert m.logits == 3 * 4 * 1 * 2 * 10                   # fp32 logits, log-softmax, gradient
    assert (m.weights, m.gradients, m.optimizer) == (400, 240, 480)  # 60 trainable: word embeddings frozen
    assert m.peak(False) == 400 + 240 + 480 + 1894 + 240 + CONTEXT_BYTES
    unfrozen = peak_memory(ED, 1, 3, s_dec=2, freeze_word_embeddings=False)
    assert (unfrozen.gradients, unfrozen.optimizer) == (400, 800)


def test_steps_follow_the_trainer():
    assert train_steps(10, 3, 1, 2, None) == 8               # ceil(10 / 3) = 4 per epoch
    assert train_steps(10, 3, 2, 2, None) == 4               # 4 micro-batches -> 2 updates per epoch
    assert train_steps(10, 3, 1, 1.5, None) == 6
    assert train_steps(10, 3, 1, 2, 5) == 5                  # max_steps wins


def test_meta_counts_equal_the_instantiated_model():
    from xlt_helpers import backbones
    from xlt_helpers.models import get_model
    from xlt_helpers.train import word_embedding_modules
    for name, load in (("tiny-xlmr", backbones.load_encoder), ("tiny-mt5", backbones.load_seq2seq)):
        real = load(get_model(name))
        a = architecture(name)
        counts = backbones.param_counts(real)
        assert (a.total_params, a.non_embedding_params) == (counts["total"], counts["non_embedding"])
        assert a.frozen_params == sum(e.weight.numel() for e in word_embedding_modules(real))
    assert architecture("tiny-mt5").gated_ff and architecture("tiny-mt5").decoder_layers == 2
    assert architecture("tiny-xlmr").attention_width == 32


def test_published_architectures_come_from_models():
    xl = architecture("mt5-xl")
    assert (xl.hidden, xl.ff, xl.heads, xl.encoder_layers, xl.decoder_layers) == (2048, 5120, 32, 24, 24)
    assert xl.attention_width == 32 * 64 and xl.gated_ff
    from xlt_helpers.models import parameter_counts
    assert (xl.total_params, xl.non_embedding_params) == parameter_counts("mt5-xl")
    base = architecture("xlmr-base")
    assert base.frozen_params == 250_002 * 768


def test_plan_of_a_grid_collapses_seeds_and_reports_steps():
    from xlt_helpers.grid import build_grid
    from xlt_helpers.profiles import load_profile
    prof = load_profile("smoke", ["seeds=[0, 1]", "target.xnli.max_steps=null", "target.xnli.epochs=2",
                                  "target.xnli.gradient_accumulation_steps=2"])
    plans = plan.plan_grid(build_grid(prof), count=lambda task, n: n)
    by = {(p.phase, p.model, p.task): (p, k) for p, k in plans}
    p, k = by[("target", "tiny-xlmr", "xnli")]
    assert k == 2 * 3                                        # 2 seeds x 3 starting points (none, sst2, udpos)
    assert p.steps == 2 * 4 and p.accumulation == 2          # 64 pairs / (8 x 2) = 4 per epoch, 2 epochs
    rows = plan.format_plan(plans, 80)
    assert rows[0][0] == "phase: task" and len(rows) == len(plans) + 1
    assert all(r[-1] == "yes" for r in rows[1:])             # tiny models fit anywhere
    assert all(r[-1] == "NO" for r in plan.format_plan(plans, 1e-6)[1:])


def test_a_split_that_cannot_be_counted_shows_a_question_mark_and_the_footer_says_why():
    from xlt_helpers.grid import build_grid
    from xlt_helpers.paths import DataError
    from xlt_helpers.profiles import load_profile

    def failing(task):
        def count(t, n):
            if t == task:
                raise DataError(f"{task} train could not be read")
            return n
        return count

    plans = plan.plan_grid(build_grid(load_profile("smoke")), count=failing("sst2"))
    steps = {p.task: p.steps for p, _ in plans}
    assert steps["sst2"] is None and steps["xnli"] is not None
    assert "?" in [r[-2] for r in plan.format_plan(plans, 80) if r[0] == "p1: sst2"]
    note = plan.uncounted_note(plans)   # sst2's train split has a local file: the cause is the data folder, not the hub
    assert note.startswith("steps '?': the English training split could not be counted for sst2: its local files "
                           "were not found")
    assert "hub-only" not in note
    mnli = plan.plan_grid(build_grid(load_profile("smoke", ["intermediate_tasks=[none, mnli]", "seq2seq_intermediate_tasks=[none]"])), count=failing("mnli"))
    assert "for mnli: hub-only (xlt_helpers/tasks.py), and neither the Hugging Face hub" in plan.uncounted_note(mnli)
    assert plan.uncounted_note(plan.plan_grid(build_grid(load_profile("smoke")), count=lambda t, n: n)) is None


def test_e5_stand_ins_counted_as_loaded():
    """The e5 ladders' meta-device counts equal the models backbones actually loads (offline e5 checkpoint)."""
    from xlt_helpers import backbones
    from xlt_helpers.models import get_model
    from xlt_helpers.train import word_embedding_modules
    for name, load in (("e5-L3", backbones.load_encoder), ("e5ed-L3", backbones.load_seq2seq)):
        real = load(get_model(name))
        a = architecture(name)
        counts = backbones.param_counts(real)
        assert (a.total_params, a.non_embedding_params) == (counts["total"], counts["non_embedding"]), name
        assert a.frozen_params == sum(e.weight.numel() for e in word_embedding_modules(real)), name
    assert (architecture("e5ed-L3").encoder_layers, architecture("e5ed-L3").decoder_layers) == (3, 3)
