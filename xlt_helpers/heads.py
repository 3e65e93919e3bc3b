"""Task heads for the encoder family, on top of any transformers encoder body.

Why not ``AutoModelForSequenceClassification``: its BERT head reads ``[CLS]``
through a randomly initialised pooler, and multilingual-e5 (trained to be
mean-pooled) does not learn through it (issue 3: accuracy 0.335 everywhere).
Here pooling comes from the model spec: ``mean`` (attention-masked mean of the
last hidden states) or ``cls`` (the first token, XLM-R's ``<s>``).

The head is a plain ``nn.Module`` that HF's Trainer drives (it returns
``loss`` and ``logits``); the body is saved on its own so that phase 2 can
start from the phase-1 body with a fresh head.
"""
from __future__ import annotations

from typing import Literal

import torch
from torch import nn
from transformers.modeling_outputs import ModelOutput

Pooling = Literal["mean", "cls"]


def pool(hidden: torch.Tensor, mask: torch.Tensor, how: Pooling) -> torch.Tensor:
    """[B, L, H] -> [B, H]."""
    if how == "cls":
        return hidden[:, 0]
    m = mask.unsqueeze(-1).to(hidden.dtype)
    return (hidden * m).sum(1) / m.sum(1).clamp(min=1.0)


class EncoderWithHead(nn.Module):
    """body + dropout + linear, in the layout of one task kind.

    classification: logits [B, num_labels]; multiple-choice: ids [B, C, L] -> logits [B, C];
    token-tagging: logits [B, L, num_labels] (labels -100 ignored); extractive-QA: start/end logits [B, L].
    """

    def __init__(self, body: nn.Module, kind: str, num_labels: int, pooling: Pooling, dropout: float = 0.1):
        super().__init__()
        self.body, self.kind, self.pooling = body, kind, pooling
        hidden = body.config.hidden_size
        out = {"classification": num_labels, "multiple-choice": 1, "token-tagging": num_labels, "extractive-QA": 2}[kind]
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(hidden, out)
        self.config = body.config  # Trainer reads a few config fields

    def activation_checkpointing_enable(self, activation_checkpointing_kwargs=None, every_n_layers: int = 1,
                                        offload: bool = False) -> None:
        """What the Trainer calls for ``activation_checkpointing=True``: checkpoint the body's layers
        (the head is one linear layer, nothing to save)."""
        self.body.activation_checkpointing_enable(activation_checkpointing_kwargs=activation_checkpointing_kwargs,
                                                  every_n_layers=every_n_layers, offload=offload)

    def forward(self, input_ids, attention_mask, labels=None, start_positions=None, end_positions=None, **_):
        shape = input_ids.shape
        if self.kind == "multiple-choice":
            input_ids, attention_mask = input_ids.view(-1, shape[-1]), attention_mask.view(-1, shape[-1])
        hidden = self.body(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        if self.kind in ("classification", "multiple-choice"):
            logits = self.head(self.dropout(pool(hidden, attention_mask, self.pooling)))
            if self.kind == "multiple-choice":
                logits = logits.view(shape[0], shape[1])
            loss = nn.functional.cross_entropy(logits, labels) if labels is not None else None
            return ModelOutput(loss=loss, logits=logits)
        logits = self.head(self.dropout(hidden))
        if self.kind == "token-tagging":
            loss = (nn.functional.cross_entropy(logits.flatten(0, 1), labels.flatten(), ignore_index=-100)
                    if labels is not None else None)
            return ModelOutput(loss=loss, logits=logits)
        start, end = logits.unbind(-1)
        start = start.masked_fill(attention_mask == 0, -1e4)
        end = end.masked_fill(attention_mask == 0, -1e4)
        loss = None
        if start_positions is not None:
            loss = (nn.functional.cross_entropy(start, start_positions) + nn.functional.cross_entropy(end, end_positions)) / 2
        return ModelOutput(loss=loss, start_logits=start, end_logits=end)
