"""The full profile's real architectures through the real training path, on CPU, before any GPU sees them.

xlmr-base and mt5-small are built from ``models.architecture_config`` at random initialisation (the
``random`` source of :mod:`xlt_helpers.backbones`: no hub), their vocabulary trimmed to the tokens of a
few examples, and each phase node runs two optimizer steps through :func:`pipeline.run_intermediate` and
:func:`pipeline.run_target`, with gradient accumulation (2 micro-batches per step) and, in phase 2,
gradient checkpointing. A wrong config field, a head that does not fit the architecture or a Trainer
argument the model rejects fails here rather than hours into a GPU job. The scores mean nothing.
"""
from __future__ import annotations

import dataclasses
import time

import pytest

from xlt_helpers.models import MODELS
from xlt_helpers.pipeline import run_intermediate, run_target

pytestmark = [pytest.mark.shared_data, pytest.mark.slow]

# 2 optimizer steps x 2 micro-batches of one 32-token sequence: xlmr-base is ~6 x 85 M x 32 = 16 GFLOP per
# micro-batch, so the compute is seconds; most of the time is building the 250k-row tables before trimming
HP = dict(max_steps=2, batch_size=1, gradient_accumulation_steps=2, max_length=32, doc_stride=16,
          eval_batch_size=4, trim_vocab=True)


@pytest.fixture
def one_thread():
    """One math thread: this test checks configurations, not speed, and on a shared machine OpenMP threads
    spinning against other processes made its training steps ~6x slower (measured: mt5-small phase 1, 59 s
    of training with 2 threads vs 10 s with 1, load average 11 on 2 cores)."""
    import torch
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("model", ["xlmr-base", "mt5-small"])
def test_two_steps_of_each_phase_with_the_real_architecture(model, tmp_path, monkeypatch, shared_data, one_thread):
    monkeypatch.setitem(MODELS, model, dataclasses.replace(MODELS[model], source="random"))
    t0 = time.perf_counter()
    m1 = run_intermediate(model=model, task="sst2", seed=0, out_dir=str(tmp_path / "p1"), train_n=4, dev_n=2, **HP)
    assert m1["train"]["steps"] == 2
    assert m1["train"]["params_non_embedding"] > 20e6, "the real architecture, not a tiny one"
    assert m1["train"]["vocab_size"] < 2000, "vocabulary trimmed to the node's tokens"
    m2 = run_target(model=model, target="xnli", intermediate="sst2", init_from=str(tmp_path / "p1" / "checkpoint"),
                    seed=0, out_dir=str(tmp_path / "p2"), train_n=4, eval_n=2, eval_langs=["en", "de"],
                    gradient_checkpointing=True, **HP)
    assert m2["train"]["steps"] == 2 and m2["config"]["gradient_checkpointing"] is True
    assert set(m2["scores"]) == {"en", "de"}
    losses = [h["loss"] for h in m1["log_history"] + m2["log_history"] if "loss" in h]
    assert losses and all(l == l for l in losses), "finite losses in both phases"
    print(f"{model}: both phases in {time.perf_counter() - t0:.1f} s")
