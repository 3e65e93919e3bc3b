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

HP = dict(max_steps=2, batch_size=2, gradient_accumulation_steps=2, max_length=64, doc_stride=32,
          eval_batch_size=4, trim_vocab=True)


@pytest.mark.parametrize("model", ["xlmr-base", "mt5-small"])
def test_two_steps_of_each_phase_with_the_real_architecture(model, tmp_path, monkeypatch, shared_data):
    monkeypatch.setitem(MODELS, model, dataclasses.replace(MODELS[model], source="random"))
    t0 = time.perf_counter()
    m1 = run_intermediate(model=model, task="sst2", seed=0, out_dir=str(tmp_path / "p1"), train_n=8, dev_n=4, **HP)
    assert m1["train"]["steps"] == 2
    assert m1["train"]["params_non_embedding"] > 20e6, "the real architecture, not a tiny one"
    assert m1["train"]["vocab_size"] < 2000, "vocabulary trimmed to the node's tokens"
    m2 = run_target(model=model, target="xnli", intermediate="sst2", init_from=str(tmp_path / "p1" / "checkpoint"),
                    seed=0, out_dir=str(tmp_path / "p2"), train_n=8, eval_n=2, eval_langs=["en", "de"],
                    gradient_checkpointing=True, **HP)
    assert m2["train"]["steps"] == 2 and m2["config"]["gradient_checkpointing"] is True
    assert set(m2["scores"]) == {"en", "de"}
    losses = [h["loss"] for h in m1["log_history"] + m2["log_history"] if "loss" in h]
    assert losses and all(l == l for l in losses), "finite losses in both phases"
    print(f"{model}: both phases in {time.perf_counter() - t0:.1f} s")
