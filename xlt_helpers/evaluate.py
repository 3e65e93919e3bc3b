"""Evaluation of a trained phase on one (task, language) dataset, for both families.

Every function returns per-example rows (kept for paired bootstrap CIs) and the
corpus score. Encoder batches are sorted by length and run under
``torch.inference_mode``; the encoder-decoder family ranks candidate targets by
likelihood (classification, multiple choice) or generates (QA, tagging).

``TrainConfig.eval_precision`` picks the arithmetic (issue 15): ``fp32`` (the exact path, the
default), ``bf16`` (linear layers in bf16 under autocast, softmax/LayerNorm kept in fp32; native
bf16 only), ``bf16-fp32head`` (the same with the output layer in fp32) or ``int8`` (dynamic int8 quantization of every ``nn.Linear``, CPU only). ``xlt bench`` measures
their speed and their agreement with fp32.
"""
from __future__ import annotations

import contextlib
import copy
import warnings
import weakref
from collections.abc import Mapping
from typing import Any

import numpy as np
import torch
from datasets import Dataset

from . import featurize, metrics
from .metrics import pointwise_v_information
from .hparams import EVAL_PRECISIONS
from .machine import asks_bf16
from .train import Collator, PhaseResult, TrainConfig

_COPIES: "weakref.WeakKeyDictionary[torch.nn.Module, dict[str, torch.nn.Module]]" = weakref.WeakKeyDictionary()


def inference_model(model: torch.nn.Module, precision: str = "fp32") -> torch.nn.Module:
    """The module that evaluates ``model`` at ``precision``: itself for fp32; otherwise a copy, made
    once per model and cached: bf16 = every ``nn.Linear`` cast to bf16 (run under autocast, so
    inputs are cast and LayerNorm/softmax stay fp32; casting the weights once instead of per batch
    measured ~1.3x faster than autocast alone on e5-L12); int8 = every ``nn.Linear`` dynamically
    quantized (weights int8 per tensor, activations quantized per batch). The copy is taken when
    first asked for: evaluate a model after its training is done (as the pipeline does)."""
    if precision == "fp32":
        return model
    copies = _COPIES.setdefault(model, {})
    if precision not in copies:
        if precision in ("bf16", "bf16-fp32head"):
            q = copy.deepcopy(model).eval()
            for mod in q.modules():
                if isinstance(mod, torch.nn.Linear):
                    mod.to(torch.bfloat16)
            if precision == "bf16-fp32head":
                path = output_layer_path(model)
                parent, _, name = path.rpartition(".")
                setattr(q.get_submodule(parent), name, Fp32Output(copy.deepcopy(model.get_submodule(path)).float().eval()))
        elif precision == "int8":
            with warnings.catch_warnings():   # torch.ao.quantization is deprecated in favour of torchao (not installed)
                warnings.simplefilter("ignore")
                q = torch.ao.quantization.quantize_dynamic(copy.deepcopy(model).eval(), {torch.nn.Linear},
                                                           dtype=torch.qint8)
        else:
            raise ValueError(f"eval_precision={precision!r}: expected one of {', '.join(EVAL_PRECISIONS)}")
        copies[precision] = q
    return copies[precision]


class Fp32Output(torch.nn.Module):
    """An output layer run in fp32 outside autocast, on its input cast to fp32.

    Why (``eval_precision: bf16-fp32head``): the body's last LayerNorm hands the head an fp32 hidden
    state; a bf16 head rounds it and the logits to 8 bits of mantissa, and QA's span choice compares sums
    of nearly equal logits. Measured on the bench's trained e5-L12 MLQA node (2026-12-01, AMD EPYC, all
    same-language dev questions): answers equal to fp32's rose from 98.0 / 98.4 / 98.6% (en / de / zh)
    to 99.0 / 98.6 / 99.0%, and the largest |ΔF1| fell from 0.51 to 0.22, for a few percent of bf16's speed on
    encoders (much more on an encoder-decoder, whose output layer is the vocabulary projection of every decoding step)."""

    def __init__(self, layer: torch.nn.Module):
        super().__init__()
        self.layer = layer

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            return self.layer(x.float())


def output_layer_path(model: torch.nn.Module) -> str:
    """Where ``model``'s output layer is (a ``get_submodule`` path): ``head`` for an encoder with a task head,
    else the linear layer transformers' ``get_output_embeddings`` names (``lm_head`` in mT5,
    ``decoder.cls.predictions.decoder`` in a warm-started BERT2BERT such as e5ed)."""
    if isinstance(getattr(model, "head", None), torch.nn.Linear):
        return "head"
    get = getattr(model, "get_output_embeddings", None)
    layer = get() if callable(get) else None
    if isinstance(layer, torch.nn.Linear):
        return next(name for name, mod in model.named_modules() if mod is layer)
    raise ValueError(f"eval_precision=bf16-fp32head: {type(model).__name__} has no linear 'head' and no linear "
                     "output embeddings to keep in fp32; use eval_precision: bf16")


def precision_context(precision: str = "fp32", device: str = "cpu"):
    """bf16 autocast for the bf16 precisions (``bf16``, ``bf16-fp32head``); nothing to do otherwise."""
    if asks_bf16(precision):
        return torch.autocast(device_type=device, dtype=torch.bfloat16)
    return contextlib.nullcontext()


def _sorted_batches(lengths: list[int], batch_size: int, sort: bool = True):
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
    for i in range(0, len(order), batch_size):
        yield order[i:i + batch_size]


@torch.inference_mode()
def predict_encoder(model, feats: Dataset, pad_id: int, batch_size: int, keys=("logits",), *,
                    sort_by_length: bool = True, precision: str = "fp32") -> dict[str, list]:
    """Run the head over ``feats`` in length-sorted batches; outputs in the original order.

    ``sort_by_length=False`` batches in the original order (only to measure what sorting
    saves: ``xlt bench``, issue 6); the outputs are the same either way. ``precision``: see the
    module docstring."""
    model.eval()
    model = inference_model(model, precision)
    device = next(model.parameters(), torch.empty(0)).device.type
    collate = Collator(pad_id)
    ids = feats["input_ids"][:]
    lengths = [max(map(len, x)) if x and isinstance(x[0], list) else len(x) for x in ids]
    out: dict[str, list] = {k: [None] * len(ids) for k in keys}
    masks = feats["attention_mask"][:]
    for idx in _sorted_batches(lengths, batch_size, sort_by_length):
        batch = collate([{"input_ids": ids[i], "attention_mask": masks[i]} for i in idx])
        with precision_context(precision, device):
            res = model(**batch)
        for k in keys:
            arr = res[k].float().numpy()
            for j, i in enumerate(idx):
                out[k][i] = arr[j][: lengths[i]] if (arr.ndim == 3 or k != "logits") else arr[j]
    return out


def evaluate(result: PhaseResult, ds: Dataset, lang: str, cfg: TrainConfig,
             null_logp: np.ndarray | None = None) -> tuple[list[dict], dict[str, float]]:
    """(per-example rows, {metric: score on 0..100}) of ``result`` on ``ds``.

    Every row's ``value`` is on the same 0..100 scale (accuracy 0 or 100 per example, a tagged
    sentence's word accuracy, QA F1/EM: :func:`qa_rows`): for classification, multiple choice and QA the
    mean of the rows is the score; a tagging score counts words, not sentences.

    With ``null_logp`` (the null model's log-probability per label, see
    ``metrics.null_log_prior``), rows of the tasks where V-usable information is cheap — one
    distribution over labels or choices per example, or per word for tagging — also carry
    ``logp_gold`` (natural log) and ``pvi`` (bits; a tagged sentence's mean over its words).
    Extractive QA and generated tags have no such distribution and carry neither."""
    if result.spec.family == "encoder-decoder":
        return _evaluate_seq2seq(result, ds, lang, cfg, null_logp)
    return _evaluate_encoder(result, ds, lang, cfg, null_logp)


def _with_pvi(rows: list[dict], logp_gold: list[np.ndarray], gold: list[np.ndarray],
              null_logp: np.ndarray | None) -> list[dict]:
    """Add ``logp_gold`` / ``pvi`` to each row from its gold label(s) log-probabilities (one array per row)."""
    if null_logp is None:
        return rows
    for row, lp, g in zip(rows, logp_gold, gold):
        if len(lp) == 0:
            continue
        row["logp_gold"] = float(np.mean(lp))
        row["pvi"] = float(np.mean(pointwise_v_information(lp, null_logp[np.asarray(g, dtype=int)])))
    return rows


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


def _evaluate_encoder(r: PhaseResult, ds: Dataset, lang: str, cfg: TrainConfig, null_logp: np.ndarray | None = None):
    kind, tok, bs = r.task.kind, r.tokenizer, cfg.eval_batch_size
    if kind == "classification" or kind == "multiple-choice":
        enc = (featurize.encode_classification if kind == "classification" else featurize.encode_multiple_choice)
        feats = enc(ds, tok, cfg.max_length)
        logits = predict_encoder(r.model, feats, tok.pad_token_id, bs if kind == "classification" else max(1, bs // 4),
                                 precision=cfg.eval_precision)["logits"]
        preds = [int(np.argmax(x)) for x in logits]
        gold = ds["label"][:]
        rows = [{"example_id": i, "lang": lang, "pred": p, "gold": g, "metric": "accuracy", "value": 100.0 * (p == g)}
                for i, p, g in zip(ds["id"][:], preds, gold)]
        lp_gold = [_log_softmax(x)[[g]] for x, g in zip(logits, gold)]
        rows = _with_pvi(rows, lp_gold, [[g] for g in gold], null_logp)
        return rows, {"accuracy": 100.0 * metrics.accuracy(preds, gold)}
    if kind == "token-tagging":
        feats = featurize.encode_tagging(ds, tok, cfg.max_length)
        logits = predict_encoder(r.model, feats, tok.pad_token_id, bs, precision=cfg.eval_precision)["logits"]
        rows, all_p, all_g, lp_gold = [], [], [], []
        for i, lg, lab in zip(ds["id"][:], logits, feats["labels"][:]):
            lab = np.asarray(lab)
            p = np.argmax(lg[: len(lab)], -1)
            keep = lab != -100
            all_p.append(p[keep].tolist()); all_g.append(lab[keep].tolist())
            lp_gold.append(np.take_along_axis(_log_softmax(lg[: len(lab)][keep]), lab[keep][:, None], -1)[:, 0])
            rows.append({"example_id": i, "lang": lang, "metric": "accuracy",
                         "value": 100.0 * float(np.mean(p[keep] == lab[keep])) if keep.any() else 0.0})
        rows = _with_pvi(rows, lp_gold, all_g, null_logp)
        return rows, {"accuracy": 100.0 * metrics.token_accuracy(all_p, all_g)}
    # extractive QA: windows -> start/end logits -> n-best spans -> MLQA metric
    from .qa import postprocess_predictions, prepare_eval_features
    feats = ds.map(lambda b: prepare_eval_features(b, tok, cfg.max_length, cfg.doc_stride), batched=True,
                   remove_columns=ds.column_names, desc="QA windows")
    out = predict_encoder(r.model, feats, tok.pad_token_id, bs, keys=("start_logits", "end_logits"),
                          precision=cfg.eval_precision)
    L = max(len(x) for x in out["start_logits"])
    pad = lambda xs: np.stack([np.pad(x, (0, L - len(x)), constant_values=-1e4) for x in xs])  # noqa: E731
    preds = postprocess_predictions(ds, feats, pad(out["start_logits"]), pad(out["end_logits"]),
                                    max_answer_length=cfg.max_answer_length)
    return qa_rows(preds, {i: a["text"] for i, a in zip(ds["id"][:], ds["answers"][:])}, lang)


def qa_rows(preds: Mapping[str, str], refs: Mapping[str, list[str]], lang: str) -> tuple[list[dict], dict[str, float]]:
    """(per-question rows, corpus ``{"f1", "em"}``) of extractive QA, both on 0..100 like every other
    metric: ``metrics.qa_scores`` keeps the MLQA script's 0..1 per question, and this is the one place
    it is scaled, so the mean of a language's rows is its corpus score. One ``f1`` and one ``em`` row
    per question of ``refs``, in its order."""
    per = metrics.qa_scores(preds, refs, lang)
    rows = [{"example_id": i, "lang": lang, "pred": preds[i], "metric": m, "value": 100.0 * per[i][m]}
            for i in refs for m in ("f1", "em")]
    return rows, metrics.qa_corpus(per)


@torch.inference_mode()
def _evaluate_seq2seq(r: PhaseResult, ds: Dataset, lang: str, cfg: TrainConfig, null_logp: np.ndarray | None = None):
    r.model.eval()
    model, tok, task = inference_model(r.model, cfg.eval_precision), r.tokenizer, r.task
    with precision_context(cfg.eval_precision, next(model.parameters(), torch.empty(0)).device.type):
        return _score_seq2seq(model, tok, task, ds, lang, cfg, null_logp)


def _score_seq2seq(model, tok, task, ds: Dataset, lang: str, cfg: TrainConfig, null_logp: np.ndarray | None):
    rows: list[dict] = []
    exs = ds.to_list()
    srcs = [featurize.to_text(task, e)[0] for e in exs]
    lengths = [len(s) for s in srcs]
    bs = max(1, cfg.eval_batch_size // 4)
    preds: list[Any] = [None] * len(exs)
    cand_lp: list[np.ndarray | None] = [None] * len(exs)   # log-softmax over the candidates' likelihoods
    for idx in _sorted_batches(lengths, bs):
        enc = tok([srcs[i] for i in idx], truncation=True, max_length=cfg.max_length, padding=True, return_tensors="pt")
        cands = featurize.candidates(task, exs[idx[0]])
        if cands is not None:
            enc_out = model.get_encoder()(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            scores = []
            for c in cands:
                lab = torch.tensor(featurize.target_ids(tok, [c] * len(idx)))  # same length: one candidate
                logits = model(encoder_outputs=enc_out, attention_mask=enc["attention_mask"], labels=lab).logits
                lp = torch.log_softmax(logits.float(), -1)
                tgt = lab.clamp(min=0)
                ll = lp.gather(-1, tgt.unsqueeze(-1)).squeeze(-1).masked_fill(lab == -100, 0).sum(-1)
                scores.append(ll)
            stacked = torch.stack(scores, -1)
            best = stacked.argmax(-1).tolist()
            norm = torch.log_softmax(stacked.double(), -1).numpy()
            for j, i in enumerate(idx):
                preds[i] = best[j]
                cand_lp[i] = norm[j]
        else:
            gen = model.generate(**enc, max_new_tokens=(32 if task.kind == "extractive-QA"
                                                        else featurize.max_target_length(task, cfg.max_length)),
                                 num_beams=1, do_sample=False)
            for j, i in enumerate(idx):
                preds[i] = tok.decode(gen[j], skip_special_tokens=True).strip()
    if task.kind in ("classification", "multiple-choice"):
        gold = [e["label"] for e in exs]
        rows = [{"example_id": e["id"], "lang": lang, "pred": p, "gold": g, "metric": "accuracy", "value": 100.0 * (p == g)}
                for e, p, g in zip(exs, preds, gold)]
        rows = _with_pvi(rows, [c[[g]] for c, g in zip(cand_lp, gold)], [[g] for g in gold], null_logp)
        return rows, {"accuracy": 100.0 * metrics.accuracy(preds, gold)}
    if task.kind == "extractive-QA":
        pm = {e["id"]: ("" if p == featurize.NO_ANSWER else p) for e, p in zip(exs, preds)}
        return qa_rows(pm, {e["id"]: e["answers"]["text"] for e in exs}, lang)
    # tagging: parse "word TAG word TAG ..." and align it to the gold words (a skipped word costs only
    # itself); gold words go through the tokenizer as the generated text did (normalisation, <unk>)
    names = {n: i for i, n in enumerate(task.labels)}
    all_p, all_g = [], []
    for e, p in zip(exs, preds):
        words = [tok.decode(tok(w, add_special_tokens=False)["input_ids"], skip_special_tokens=True).split()
                 for w in e["tokens"]]
        tags = metrics.word_tags(featurize.parse_tagged(p, task.labels), words)
        pi = [names.get(t, -1) if t is not None else -1 for t in tags]
        all_p.append(pi); all_g.append(list(e["tags"]))
        rows.append({"example_id": e["id"], "lang": lang, "pred": p, "metric": "accuracy",
                     "value": 100.0 * float(np.mean(np.asarray(pi) == np.asarray(e["tags"]))) if e["tags"] else 0.0})
    return rows, {"accuracy": 100.0 * metrics.token_accuracy(all_p, all_g)}
