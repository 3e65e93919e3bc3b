"""Each training path can learn: overfit 16 training examples, then reproduce them.

``test_train.py`` pins mechanics (3 steps of a random model learn nothing). These tests pin
*capability*: through the project's own ``train_phase`` and ``evaluate`` (features, heads, vocabulary
trimming, frozen word embeddings, the Trainer, candidate ranking, generation, QA post-processing), a
model that trains long enough on 16 English examples must reproduce them when evaluated on the same
16. A path that cannot (in the cpu study the text-to-text MLQA path generated only empty strings) is a
bug, not a threshold to lower. Learning rates and epochs here are what memorising takes, not the
study's hyperparameters; seeds are fixed, so each test is deterministic on CPU.
"""
from __future__ import annotations

import time

import pytest

from xlt_helpers import featurize
from xlt_helpers.data import load_task
from xlt_helpers.evaluate import evaluate
from xlt_helpers.tasks import get_task
from xlt_helpers.train import TrainConfig, train_phase

pytestmark = pytest.mark.shared_data

N = 16
#: one task per kind: the study's targets where they exist, else the intermediate task of that kind
KINDS = {"classification": "xnli", "multiple-choice": "commonsenseqa", "token-tagging": "udpos",
         "extractive-QA": "mlqa"}
#: what "reproduced" means, on the metrics' 0..100 scale
FLOOR = {"classification": ("accuracy", 90.0), "multiple-choice": ("accuracy", 90.0),
         "token-tagging": ("accuracy", 90.0), "extractive-QA": ("em", 80.0)}


def sixteen(task: str):
    """16 English training examples of ``task``; for QA the 16 shortest contexts of a seeded 200
    (a short context keeps one window per question and the test fast; the path is the same)."""
    if get_task(task).kind != "extractive-QA":
        return load_task(task, "train", "en", n=N, seed=0)
    pool = load_task(task, "train", "en", n=200, seed=0)
    lengths = [len(c) for c in pool["context"][:]]
    return pool.select(sorted(range(len(pool)), key=lambda i: (lengths[i], i))[:N])


def overfit(model: str, task: str, tmp_path, **hparams) -> tuple[dict[str, float], list[dict], dict]:
    """Train ``model`` on 16 English training examples of ``task``; evaluate on the same 16."""
    train = sixteen(task)
    cfg = TrainConfig(**{"batch_size": 8, "eval_batch_size": 16, "warmup_ratio": 0.0, "seed": 0, **hparams})
    t0 = time.perf_counter()
    res = train_phase(model, task, train, cfg, tmp_path, vocab_texts=featurize.texts_of(get_task(task), train))
    rows, scores = evaluate(res, train, "en", cfg)
    info = {"wall_s": time.perf_counter() - t0, "steps": res.stats["steps"],
            "losses": [h["loss"] for h in res.log_history if "loss" in h]}
    print(f"{model} {task}: {scores} in {info['wall_s']:.1f} s, {info['steps']} steps, "
          f"loss {info['losses'][:1]} -> {info['losses'][-1:]}")
    return scores, rows, info


#: (model, kind) -> what memorising 16 examples takes (learning rate, epochs; batch 8 -> 2 steps an epoch)
TINY = {
    ("tiny-xlmr", "classification"): dict(learning_rate=3e-3, epochs=30),
    ("tiny-xlmr", "multiple-choice"): dict(learning_rate=3e-3, epochs=30),
    ("tiny-xlmr", "token-tagging"): dict(learning_rate=3e-3, epochs=30),
    ("tiny-xlmr", "extractive-QA"): dict(learning_rate=3e-3, epochs=30, doc_stride=64),
    ("tiny-mt5", "classification"): dict(learning_rate=1e-2, epochs=30),
    ("tiny-mt5", "multiple-choice"): dict(learning_rate=1e-2, epochs=50),
    ("tiny-mt5", "extractive-QA"): dict(learning_rate=1e-2, epochs=100),
    # generated "word TAG" targets are the longest a 32-wide model must memorise: with bare tag
    # targets 200 steps gave 26.5, 600 gave 56.7, 1500 gave 95.6; word-anchored, 800 give 60.8 and
    # 1500 give 100.0 (loss 0.43; 303 s on the loaded 2-core machine, hence slow)
    ("tiny-mt5", "token-tagging"): dict(learning_rate=1e-2, epochs=750),
}
SLOW_TINY = {("tiny-mt5", "token-tagging")}


@pytest.mark.parametrize("model,kind", [pytest.param(*mk, marks=pytest.mark.slow) if mk in SLOW_TINY else mk
                                        for mk in TINY])
def test_tiny_models_memorise_16_examples_of_every_kind(model, kind, tmp_path):
    metric, floor = FLOOR[kind]
    scores, rows, info = overfit(model, KINDS[kind], tmp_path, max_length=128, **TINY[model, kind])
    assert scores[metric] >= floor, (scores, info["losses"][-3:], [r.get("pred") for r in rows][:6])


#: the study's CPU stand-ins (pretrained e5 weights: fewer steps, smaller learning rates)
E5 = {
    ("e5-L3", "classification"): dict(learning_rate=1e-3, epochs=10),
    ("e5-L3", "multiple-choice"): dict(learning_rate=1e-3, epochs=10),
    ("e5-L3", "token-tagging"): dict(learning_rate=1e-3, epochs=10),
    ("e5-L3", "extractive-QA"): dict(learning_rate=1e-3, epochs=10, doc_stride=64),
    # ranked label words with the gain-10 cross-attention: lr 1e-3 gave 25% (loss 2.0 after 20 steps)
    ("e5ed-L3", "classification"): dict(learning_rate=3e-4, epochs=15),
    ("e5ed-L3", "multiple-choice"): dict(learning_rate=5e-4, epochs=30),
    ("e5ed-L3", "extractive-QA"): dict(learning_rate=1e-3, epochs=20),
    # bare tag targets ("PRON AUX ...") left the source unread: loss 0.037/token yet accuracy 17.2 (5
    # distinct outputs for 16 sentences); word-anchored ones ("I PRON ...") give 100.0 after 120 steps
    # (loss 0.0028), 48.8 after 60 (loss 0.046)
    ("e5ed-L3", "token-tagging"): dict(learning_rate=1e-3, epochs=60),
}
#: paths that cannot pass yet: a known defect, measured, not a threshold to lower
E5_FAILS: dict[tuple[str, str], str] = {}


@pytest.mark.slow
@pytest.mark.parametrize("model,kind", [pytest.param(*mk, marks=pytest.mark.xfail(
                                            strict=True, raises=AssertionError, reason=E5_FAILS[mk]))
                                        if mk in E5_FAILS else mk for mk in E5])
def test_e5_stand_ins_memorise_16_examples_of_every_kind(model, kind, tmp_path):
    metric, floor = FLOOR[kind]
    scores, rows, info = overfit(model, KINDS[kind], tmp_path, max_length=128, **E5[model, kind])
    assert scores[metric] >= floor, (scores, info["losses"][-3:], [r.get("pred") for r in rows][:6])


def test_tag_targets_are_not_cut_before_the_sentence_ends():
    """Generated tagging repeats each source word and adds its tag (up to 3 pieces): a flat 64-token
    target cut 14.5% of UD-POS English training sentences mid-sentence (featurize.max_target_length)."""
    from datasets import Dataset

    from xlt_helpers.backbones import load_tokenizer
    from xlt_helpers.models import get_model

    spec, tok = get_task("udpos"), load_tokenizer(get_model("e5ed-L3"))
    words = ["and", ","] * 40                     # 80 words: "▁and" + "▁C CON J", "▁ ," + "▁ PUN CT"
    ds = Dataset.from_list([{"id": "x", "lang": "en", "tokens": words, "tags": [4, 12] * 40}])
    labels = featurize.encode_seq2seq(spec, ds, tok, max_length=128)["labels"][0]
    assert tok.decode(labels, skip_special_tokens=True).split() == ["and", "CCONJ", ",", "PUNCT"] * 40
    assert labels[-1] == tok.eos_token_id and len(labels) == 40 * (1 + 3 + 2 + 3) + 1
    assert featurize.max_target_length(spec, 128) == 512 and featurize.max_target_length(get_task("xnli"), 128) == 64
