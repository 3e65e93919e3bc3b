"""Training and evaluation end to end with the tiny random models: every family × every task kind.

These pin the mechanics (features, heads, Trainer, evaluation, checkpoints), not the numbers:
tiny random models learn nothing in 3 steps. The real-model floor is checked by hand (README).
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from xlt_helpers import machine
from xlt_helpers.data import load_task
from xlt_helpers.evaluate import evaluate
from xlt_helpers import featurize
from xlt_helpers.pipeline import run_intermediate, run_target
from xlt_helpers.tasks import get_task
from xlt_helpers.train import TrainConfig, build_model, load_body, save_body, train_phase

pytestmark = pytest.mark.shared_data

CFG = dict(max_steps=3, batch_size=4, max_length=96, doc_stride=32, eval_batch_size=8)
KINDS = {"classification": "xnli", "multiple-choice": "commonsenseqa", "extractive-QA": "mlqa",
         "token-tagging": "udpos"}


@pytest.mark.parametrize("model", ["tiny-xlmr", "tiny-mt5"])
@pytest.mark.parametrize("kind", list(KINDS))
def test_each_family_and_kind_trains_and_evaluates(model, kind, tmp_path, shared_data):
    task = KINDS[kind]
    spec = get_task(task)
    train = load_task(task, "train", "en", n=12, seed=0)
    lang = "de" if "de" in spec.langs_for("dev") else "en"
    dev = load_task(task, "dev", lang, n=6, seed=0)
    cfg = TrainConfig(**CFG)
    texts = featurize.texts_of(spec, train) + featurize.texts_of(spec, dev)
    res = train_phase(model, task, train, cfg, tmp_path, vocab_texts=texts)
    assert res.stats["steps"] == 3 and res.stats["train_tokens"] > 0
    assert any("loss" in h for h in res.log_history)
    from xlt_helpers.pipeline import null_prior
    null = null_prior(spec, train, dev)
    rows, scores = evaluate(res, dev, lang, cfg, null)
    metric = "f1" if kind == "extractive-QA" else "accuracy"
    assert 0.0 <= scores[metric] <= 100.0
    ids = {r["example_id"] for r in rows}
    assert ids == set(dev["id"][:]), "every evaluation example gets a per-example row"
    for m, score in scores.items():   # one 0..100 scale: the rows average to the score (words, for tagging)
        values = [r["value"] for r in rows if r["metric"] == m]
        assert all(0.0 <= v <= 100.0 for v in values)
        if kind != "token-tagging":
            assert sum(values) / len(values) == pytest.approx(score)
    # V-usable information where it is cheap: one label distribution per example (or per word)
    cheap = kind in ("classification", "multiple-choice") or (kind == "token-tagging" and model == "tiny-xlmr")
    assert (null is not None) == (kind != "extractive-QA")
    with_pvi = [r for r in rows if "pvi" in r]
    if cheap:
        assert len(with_pvi) == len(rows) and all(r["logp_gold"] <= 0 and np.isfinite(r["pvi"]) for r in rows)
    else:
        assert not with_pvi
    assert res.stats["vocab_size"] < 250_002, "vocabulary was trimmed"


def _body_state(model):
    body = model.body if hasattr(model, "body") else model
    return {k: v.clone() for k, v in body.state_dict().items()}


def test_phase1_to_phase2_keeps_body_and_replaces_head(tmp_path, shared_data):
    """The phase-2 model starts from the phase-1 body (all body tensors equal, embeddings scattered back
    into the full vocabulary) with a freshly initialised head."""
    train = load_task("sst2", "train", "en", n=16, seed=0)
    cfg = TrainConfig(**CFG)
    res = train_phase("tiny-xlmr", "sst2", train, cfg, tmp_path / "p1", vocab_texts=featurize.texts_of(get_task("sst2"), train))
    save_body(res.model, tmp_path / "ckpt", res.vocab_map)
    trained = _body_state(res.model)

    fresh, _, _, _ = build_model(res.spec, get_task("xnli"))
    loaded, _, _, _ = build_model(res.spec, get_task("xnli"), init_from=tmp_path / "ckpt")
    kept = np.nonzero(res.vocab_map >= 0)[0]
    for k, v in trained.items():
        w = loaded.body.state_dict()[k]
        if v.shape != w.shape:  # trimmed embedding table: rows scattered back at their original ids
            assert torch.equal(w[torch.from_numpy(kept)], v)
        else:
            assert torch.equal(w, v), k
    changed = [k for k, v in trained.items() if v.shape == fresh.body.state_dict()[k].shape
               and not torch.equal(v, fresh.body.state_dict()[k])]
    assert changed, "phase 1 changed some body weights (otherwise the hand-off test proves nothing)"
    assert loaded.head.out_features == 3 and res.model.head.out_features == 2, "the head is task-specific and fresh"


def test_load_body_refuses_a_foreign_checkpoint(tmp_path, shared_data):
    from safetensors.torch import save_file
    (tmp_path / "ck").mkdir()
    save_file({"not.a.tensor.of.this.model": torch.zeros(2)}, str(tmp_path / "ck" / "body.safetensors"))
    model, *_ = build_model(__import__("xlt_helpers.models", fromlist=["x"]).get_model("tiny-xlmr"), get_task("xnli"))
    with pytest.raises(KeyError, match="does not belong"):
        load_body(model.body, tmp_path / "ck")


def test_same_seed_same_metrics_and_pipeline_files(tmp_path, shared_data):
    kw = dict(model="tiny-xlmr", target="xnli", intermediate="none", seed=3, train_n=16, eval_n=8,
              eval_langs=["en", "sw"], **CFG)
    a = run_target(out_dir=str(tmp_path / "a"), **kw)
    b = run_target(out_dir=str(tmp_path / "b"), **kw)
    assert a["scores"] == b["scores"]
    la = [h["loss"] for h in a["log_history"] if "loss" in h]
    lb = [h["loss"] for h in b["log_history"] if "loss" in h]
    assert la == lb, "CPU training with the same seed is bit-reproducible"
    assert (tmp_path / "a" / "metrics.json").exists() and (tmp_path / "a" / "predictions.jsonl.gz").exists()


def test_intermediate_node_writes_checkpoint_and_dev_score(tmp_path, shared_data):
    m = run_intermediate(model="tiny-mt5", task="sst2", seed=0, out_dir=str(tmp_path), train_n=12, dev_n=6, **CFG)
    assert (tmp_path / "checkpoint" / "body.safetensors").exists()
    assert m["metric"] == "accuracy" and m["chance"] == pytest.approx(50.0)
    assert np.isfinite(m["v_information_bits"]) and "prior" in m["v_information_null"]
    assert not list(tmp_path.glob("checkpoint/*.bin")), "safetensors only, never pickle"


def test_target_with_intermediate_requires_checkpoint(tmp_path, shared_data):
    with pytest.raises(ValueError, match="init_from"):
        run_target(model="tiny-xlmr", target="xnli", intermediate="sst2", seed=0, out_dir=str(tmp_path))


# ------------------------------------------------------------------ precision (issue 15)
def test_bf16_is_refused_on_a_cpu_without_native_bf16(monkeypatch):
    from xlt_helpers import train
    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"sse4_2", "avx2", "avx512f"})
    with pytest.raises(ValueError, match=r"precision='bf16'.*avx512_bf16, amx_bf16.*precision: fp32"):
        train.check_precision("bf16")
    with pytest.raises(ValueError, match=r"eval_precision='bf16'"):
        train.check_precision("bf16", "eval_precision", train.EVAL_PRECISIONS)
    with pytest.raises(ValueError, match=r"eval_precision='bf16-fp32head' needs native bf16"):
        train.check_precision("bf16-fp32head", "eval_precision", train.EVAL_PRECISIONS)
    assert machine.bf16_refusal({"eval_precision": "bf16-fp32head", "precision": "fp32"}).startswith(
        "eval_precision: bf16-fp32head needs native bf16, but this CPU has none")
    assert machine.bf16_refusal({"eval_precision": "int8", "precision": "fp32"}) is None
    assert train.check_precision("fp32") == "fp32"
    assert train.check_precision("int8", "eval_precision", train.EVAL_PRECISIONS) == "int8"
    with pytest.raises(ValueError, match=r"precision='int8': expected one of fp32, bf16"):
        train.check_precision("int8")
    monkeypatch.setattr(machine, "cpu_flags", lambda: {"avx2", "amx_bf16"})
    assert train.check_precision("bf16") == "bf16"


def test_train_phase_checks_precision_before_loading_anything(monkeypatch, tmp_path):
    from xlt_helpers import train
    monkeypatch.setattr(train.torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(machine, "cpu_flags", lambda: set())
    with pytest.raises(ValueError, match="precision='bf16' needs native bf16"):
        train_phase("tiny-xlmr", "xnli", None, TrainConfig(precision="bf16"), tmp_path)


def test_cpu_flags_reads_this_machine():
    flags = machine.cpu_flags()
    assert isinstance(flags, set) and (not flags or "fpu" in flags or "sse2" in flags or "neon" in flags or "fp" in flags)


def _bf16_native() -> bool:
    return machine.native_bf16()[0]


@pytest.mark.parametrize("precision", ["bf16", "bf16-fp32head", "int8"])
def test_eval_precisions_agree_with_fp32_on_a_tiny_model(precision, tmp_path, shared_data):
    """A tiny trained classifier scored at fp32 and at ``precision``: same rows, near-equal logits,
    the same predictions for all but a rare near-tie."""
    if precision.startswith("bf16") and not _bf16_native():
        pytest.skip("this CPU has no native bf16 (avx512_bf16/amx_bf16)")
    from xlt_helpers.evaluate import inference_model, predict_encoder
    task = get_task("xnli")
    train = load_task("xnli", "train", "en", n=16, seed=0)
    dev = load_task("xnli", "dev", "de", n=40, seed=0)
    cfg = TrainConfig(**CFG)
    res = train_phase("tiny-xlmr", "xnli", train, cfg, tmp_path,
                      vocab_texts=featurize.texts_of(task, train) + featurize.texts_of(task, dev))
    feats = featurize.encode_classification(dev, res.tokenizer, cfg.max_length)
    a = np.stack(predict_encoder(res.model, feats, res.tokenizer.pad_token_id, 8)["logits"])
    b = np.stack(predict_encoder(res.model, feats, res.tokenizer.pad_token_id, 8, precision=precision)["logits"])
    assert 0 < np.abs(a - b).max() < 0.1 * max(1.0, np.abs(a).max()), "the other arithmetic is really used"
    assert (a.argmax(-1) == b.argmax(-1)).mean() >= 0.9
    q = inference_model(res.model, precision)
    assert q is not res.model and inference_model(res.model, precision) is q, "one copy per precision, cached"
    assert inference_model(res.model, "fp32") is res.model
    assert all(p.dtype == torch.float32 for p in res.model.parameters()), "the trained model is untouched"
    rows, scores = evaluate(res, dev, "de", TrainConfig(**CFG, eval_precision=precision))
    assert len(rows) == len(dev) and 0 <= scores["accuracy"] <= 100
    if precision.startswith("bf16"):
        layers = [m for m in q.body.modules() if isinstance(m, torch.nn.Linear)]
        assert layers and all(m.weight.dtype == torch.bfloat16 for m in layers), "the body's linear layers in bf16"
        head_dtype = q.head.layer.weight.dtype if precision == "bf16-fp32head" else q.head.weight.dtype
        assert head_dtype == (torch.float32 if precision == "bf16-fp32head" else torch.bfloat16)


def test_fp32_head_is_the_fp32_layer_on_the_fp32_hidden_state():
    """``bf16-fp32head``'s output layer under bf16 autocast gives exactly what the fp32 layer gives on the
    same input (autocast would round input, weights and logits to bf16), and names the layer it keeps."""
    from transformers import BertConfig, EncoderDecoderConfig, EncoderDecoderModel, MT5Config, MT5ForConditionalGeneration
    from xlt_helpers.evaluate import Fp32Output, output_layer_path
    torch.manual_seed(0)
    lin = torch.nn.Linear(8, 3)
    x = torch.randn(4, 8)
    with torch.autocast(device_type="cpu", dtype=torch.bfloat16):
        kept, rounded = Fp32Output(lin)(x), lin(x)
    assert kept.dtype == torch.float32 and torch.equal(kept, lin(x)) and rounded.dtype == torch.bfloat16

    small = dict(vocab_size=20, hidden_size=8, num_hidden_layers=1, num_attention_heads=2, intermediate_size=16)
    enc, dec = BertConfig(**small), BertConfig(**small, is_decoder=True, add_cross_attention=True)
    bert2bert = EncoderDecoderModel(config=EncoderDecoderConfig.from_encoder_decoder_configs(enc, dec))
    assert output_layer_path(bert2bert) == "decoder.cls.predictions.decoder"          # e5ed's layout
    mt5 = MT5ForConditionalGeneration(MT5Config(vocab_size=20, d_model=8, d_kv=4, d_ff=16, num_layers=1, num_heads=2))
    assert output_layer_path(mt5) == "lm_head"
    with pytest.raises(ValueError, match="no linear 'head' and no linear output embeddings.*eval_precision: bf16"):
        output_layer_path(torch.nn.Sequential(lin))


def test_device_description_names_the_cpu_model_or_the_gpu():
    import torch

    from xlt_helpers.pipeline import cpu_model_name, device_description
    d = device_description()
    if torch.cuda.is_available():
        assert d == f"GPU: {torch.cuda.get_device_name(0)}"
    else:
        assert d.startswith(f"CPU: {cpu_model_name()}, ") and d.endswith(" threads") and cpu_model_name()


@pytest.mark.parametrize("model", ["tiny-xlmr", "tiny-mt5"])
def test_gradient_accumulation_and_checkpointing_reach_the_trainer(model, tmp_path, shared_data):
    """2 micro-batches of 4 per optimizer step: 12 examples, 1 epoch -> 3 micro-batches -> 2 steps; with
    checkpointing the losses are the same as without (recomputation, not a different model), and the
    body's layers were trained (gradients reach them although the word embeddings are frozen)."""
    train = load_task("xnli", "train", "en", n=12, seed=0)
    texts = featurize.texts_of(get_task("xnli"), train)
    base = dict(epochs=1, batch_size=4, max_length=64, gradient_accumulation_steps=2)
    plain = train_phase(model, "xnli", train, TrainConfig(**base), tmp_path / "a", vocab_texts=texts)
    ckpt = train_phase(model, "xnli", train, TrainConfig(**base, gradient_checkpointing=True), tmp_path / "b",
                       vocab_texts=texts)
    assert plain.stats["steps"] == ckpt.stats["steps"] == 2
    losses = [[h["loss"] for h in r.log_history if "loss" in h] for r in (plain, ckpt)]
    assert losses[0] and np.allclose(losses[0], losses[1], rtol=1e-5)
    fresh, *_ = build_model(plain.spec, get_task("xnli"))
    fresh_state = (fresh.body if hasattr(fresh, "body") else fresh).state_dict()
    trained = (ckpt.model.body if hasattr(ckpt.model, "body") else ckpt.model).state_dict()
    moved = [k for k, v in trained.items() if "layer" in k and v.shape == fresh_state[k].shape
             and not torch.equal(v, fresh_state[k])]
    assert moved, "checkpointed layers received gradients"


def test_label_words_are_part_of_the_task_spec():
    """An encoder-decoder says a label's word from the TaskSpec (lm-evaluation-harness's doc_to_choice):
    PAWS-X's labels "0"/"1" become "no"/"yes"; tasks whose label names are words keep them."""
    from xlt_helpers import featurize
    from xlt_helpers.tasks import TASKS

    pawsx, xnli = TASKS["pawsx"], TASKS["xnli"]
    assert pawsx.label_targets() == ("no", "yes") and TASKS["qqp"].label_targets() == ("no", "yes")
    assert xnli.label_targets() == xnli.labels == ("entailment", "neutral", "contradiction")
    ex = {"text_a": "A cat.", "text_b": "A dog.", "label": 1}
    assert featurize.to_text(pawsx, ex) == ("pawsx premise: A cat. hypothesis: A dog.", "yes")
    assert featurize.candidates(pawsx, ex) == ["no", "yes"]


def test_tagging_targets_anchor_each_tag_to_its_word():
    """Text-to-text tagging writes "word TAG ..." (each step needs the source) and reads it back per piece."""
    udpos = get_task("udpos")
    ex = {"tokens": ["I", "ran", "."], "tags": [udpos.labels.index(t) for t in ("PRON", "VERB", "PUNCT")]}
    assert featurize.to_text(udpos, ex) == ("udpos tag: I ran .", "I PRON ran VERB . PUNCT")
    labels = ("NOUN", "PROPN", "X", "VERB")
    assert featurize.parse_tagged("Hà Nội PROPN", labels) == [("Hà", "PROPN"), ("Nội", "PROPN")]
    assert featurize.parse_tagged("X X go VERB", labels) == [("X", "X"), ("go", "VERB")]   # the word "X"
    assert featurize.parse_tagged("cat NOU dog NOUN", labels) == [("cat", "NOUN"), ("NOU", "NOUN"), ("dog", "NOUN")]
    assert featurize.parse_tagged("cat NOUN dog", labels) == [("cat", "NOUN"), ("dog", None)]  # cut short
    assert featurize.parse_tagged("", labels) == []
    with pytest.raises(ValueError, match="2 words vs 1 tags"):
        featurize.tagged_text(["a", "b"], ["X"])


def _trainer_sees(attr: str, cfg: TrainConfig, tmp_path, **kwargs):
    """The ``TrainingArguments`` field ``attr`` as the Trainer of ``train_phase`` sees it where training starts
    (a probe Trainer stops there: nothing is trained)."""
    from transformers import Trainer

    class Stop(Exception):
        pass

    class Probe(Trainer):
        def train(self, *a, **k):
            raise Stop(getattr(self.args, attr))

    train = load_task("xnli", "train", "en", n=4, seed=0)
    with pytest.raises(Stop) as seen:
        train_phase("tiny-xlmr", "xnli", train, cfg, tmp_path, trainer_cls=Probe, **kwargs)
    return seen.value.args[0]


@pytest.mark.parametrize("flag", [False, True])
def test_torch_compile_reaches_the_trainer(flag, tmp_path, shared_data):
    """TrainConfig.torch_compile is what the Trainer is told (its arguments, read where training starts);
    compiling itself is timed by the bench (section 2b), minutes that a unit test should not spend."""
    cfg = TrainConfig(max_steps=1, batch_size=2, max_length=32, torch_compile=flag)
    assert _trainer_sees("torch_compile", cfg, tmp_path) is flag


def test_trainer_args_override_the_defaults(tmp_path, shared_data):
    """A measurement's ``trainer_args`` win over train_phase's own arguments (the bench trains the node's
    batches in order with ``train_sampling_strategy="sequential"``); a grid node passes none and gets
    length grouping."""
    cfg = TrainConfig(max_steps=1, batch_size=2, max_length=32)
    assert _trainer_sees("train_sampling_strategy", cfg, tmp_path) == "group_by_length"
    assert _trainer_sees("train_sampling_strategy", cfg, tmp_path,
                         trainer_args={"train_sampling_strategy": "sequential"}) == "sequential"
