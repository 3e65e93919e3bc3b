"""Dropout masks from PCG64 (TrainConfig.dropout_rng = "pcg64"): the probability they keep, that every dropout
path on the CPU draws from them inside the block and from torch outside it, and that a phase trains with them."""
import gc

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from xlt_helpers.data import load_task
from xlt_helpers.dropout_masks import LEVELS, bernoulli_mask, one_threshold, pcg64_bernoulli
from xlt_helpers.train import TrainConfig, check_dropout_rng, frozen_gc, train_phase


def test_one_threshold_rounds_p_to_sixteen_bits():
    # 0.9 * 65536 = 58982.4 -> 58982: dropout p = 0.1 keeps with probability 0.899994
    assert LEVELS == 65536
    assert one_threshold(0.9) == 58982
    assert (one_threshold(0.0), one_threshold(0.5), one_threshold(1.0)) == (0, 32768, 65536)
    with pytest.raises(ValueError, match="p=1.5"):
        one_threshold(1.5)


def test_bernoulli_mask_keeps_its_shape_and_probability():
    rng = np.random.Generator(np.random.PCG64(0))
    m = bernoulli_mask((200, 500), 0.9, rng)
    assert m.shape == (200, 500) and m.dtype == bool
    assert abs(m.mean() - 58982 / 65536) < 0.003           # 100,000 draws: sd 0.00095
    assert not bernoulli_mask((7,), 0.0, rng).any() and bernoulli_mask((7,), 1.0, rng).all()


def test_every_cpu_dropout_draws_from_pcg64_inside_the_block_and_from_torch_outside():
    """torch's generator does not move inside the block (F.dropout, nn.Dropout and the attention dropout of
    scaled_dot_product_attention all reach bernoulli_), the masks are the seeded PCG64 stream, and after the
    block torch's kernel draws again."""
    x = torch.ones(4000)
    q = k = v = torch.randn(2, 3, 5, 8)
    torch.manual_seed(1)
    state = torch.get_rng_state()
    with pcg64_bernoulli(seed=7):
        y = F.dropout(x, 0.1, training=True)
        torch.nn.Dropout(0.5).train()(x)
        F.scaled_dot_product_attention(q, k, v, dropout_p=0.5)
        assert torch.equal(torch.get_rng_state(), state)
    expected = bernoulli_mask((4000,), 0.9, np.random.Generator(np.random.PCG64(7)))
    assert torch.equal(y, torch.from_numpy(expected).float() / 0.9)
    F.dropout(x, 0.1, training=True)
    assert not torch.equal(torch.get_rng_state(), state)


def test_pcg64_block_refuses_nesting_and_foreign_generators():
    with pcg64_bernoulli(seed=0):
        with pytest.raises(RuntimeError, match="already active"):
            with pcg64_bernoulli(seed=1):
                pass
        with pytest.raises(RuntimeError, match="explicit torch.Generator"):
            torch.empty(3).bernoulli_(0.5, generator=torch.Generator())
    with pcg64_bernoulli(seed=0):                           # released after the first block
        pass


def test_check_dropout_rng_names_the_value_and_refuses_pcg64_on_a_gpu(monkeypatch):
    assert check_dropout_rng("pcg64") == "pcg64"
    with pytest.raises(ValueError, match="dropout_rng='philox'"):
        check_dropout_rng("philox")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    with pytest.raises(ValueError, match="dropout_rng: torch"):
        check_dropout_rng("pcg64")


def test_frozen_gc_freezes_inside_and_restores():
    before = gc.get_freeze_count()
    with frozen_gc():
        assert gc.get_freeze_count() > before
    assert gc.get_freeze_count() == before


def _losses(res):
    return [h["loss"] for h in res.log_history if "loss" in h]


def test_a_phase_trains_with_pcg64_masks_reproducibly(tmp_path, shared_data):
    """Same seed, same losses with pcg64 masks; other losses than with torch's masks (other draws); and the
    Trainer runs with the garbage collector frozen (train.frozen_gc)."""
    from transformers import Trainer

    frozen = []

    class Seen(Trainer):
        def train(self, *a, **k):
            frozen.append(gc.get_freeze_count())
            return super().train(*a, **k)

    train = load_task("xnli", "train", "en", n=16, seed=0)
    runs = {}
    for name, rng in (("a", "pcg64"), ("b", "pcg64"), ("torch", "torch")):
        cfg = TrainConfig(max_steps=4, batch_size=4, max_length=32, seed=0, dropout_rng=rng)
        runs[name] = _losses(train_phase("tiny-xlmr", "xnli", train, cfg, tmp_path / name, trainer_cls=Seen,
                                         trainer_args={"logging_steps": 1}))
    assert len(runs["a"]) == 4 and runs["a"] == runs["b"]
    assert runs["a"] != runs["torch"]
    assert all(n > 0 for n in frozen)
