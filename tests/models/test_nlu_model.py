"""The joint NLU model: every strategy applies to it, both heads train, the loss falls,
and predictions decode to spans of the original text."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dialogtune.config import StrategyConfig
from dialogtune.data.encode.intent import LabelMap
from dialogtune.data.encode.nlu import nlu_batches
from dialogtune.data.encode.slots import SlotLabelMap
from dialogtune.data.records import NluExample, Span
from dialogtune.models.nlu import JointNluModel, load_nlu_model, nlu_loss, predict_slots
from dialogtune.strategies import apply_strategy, names
from dialogtune.strategies.base import CLASSIFIER

EXAMPLES = [NluExample("send money to friend", "transfer", (Span("to", 14, 20),)),
            NluExample("check my balance", "balance"),
            NluExample("transfer money to my account", "transfer", (Span("to", 18, 28),)),
            NluExample("how much money do i have", "balance")]
INTENTS = LabelMap(["balance", "transfer"])
SLOTS = SlotLabelMap(["to"])


def build(tiny_bert):
    torch.manual_seed(0)
    model, tokenizer, _ = load_nlu_model(tiny_bert, INTENTS.labels, SLOTS)
    return model, tokenizer


def first_batch(tokenizer):
    source = nlu_batches(tokenizer, EXAMPLES, INTENTS, SLOTS, 32, 4, 0, group_by_length=False,
                         shuffle=False)
    return source.collate(source.plan(0)[0])


@pytest.mark.parametrize("strategy", names())
def test_every_strategy_trains_both_heads(tiny_bert, one_thread, strategy):
    model, tokenizer = build(tiny_bert)
    model = apply_strategy(model, StrategyConfig(name=strategy, freeze_top_k=1,
                                                 num_virtual_tokens=4), CLASSIFIER)
    batch = first_batch(tokenizer)
    loss = nlu_loss(0.1)(model, dict(batch))
    assert torch.isfinite(loss)
    loss.backward()
    heads = {n: p for n, p in model.named_parameters()
             if ".intent." in n or ".slots." in n or n.startswith(("classifier.intent",
                                                                   "classifier.slots"))}
    trained = [n for n, p in heads.items() if p.requires_grad and p.grad is not None
               and p.grad.abs().sum() > 0]
    assert any("intent" in n for n in trained) and any("slots" in n for n in trained)
    encoder_side = [p for n, p in model.named_parameters() if p.requires_grad
                    and n not in heads]
    assert encoder_side, "the strategy trains something besides the heads"


def test_batches_carry_intent_and_slot_labels(tiny_bert):
    _, tokenizer = build(tiny_bert)
    batch = first_batch(tokenizer)
    assert batch["labels"].tolist() == [1, 0, 1, 0]
    row = batch["slot_labels"][0].tolist()  # [CLS] send money to friend [SEP]
    assert row[:6] == [-100, 0, 0, 0, SLOTS.index["B-to"], -100]


def test_loss_falls_and_predictions_decode_to_text_spans(tiny_bert, one_thread):
    model, tokenizer = build(tiny_bert)
    assert isinstance(model, JointNluModel)
    batch, loss_fn = first_batch(tokenizer), nlu_loss(0.0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(60):
        optimizer.zero_grad()
        loss = loss_fn(model, dict(batch))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.2 * losses[0]
    texts = [e.text for e in EXAMPLES]
    intents, slots = predict_slots(model, tokenizer, texts, SLOTS, 32)
    assert [INTENTS.labels[i] for i in np.argmax(intents, -1)] == [e.intent for e in EXAMPLES]
    assert [[(s.slot, s.start, s.end, s.value) for s in found] for found in slots] == [
        [(s.slot, s.start, s.end, e.value(s)) for s in e.slots] for e in EXAMPLES]
    assert all(0 < s.confidence <= 1 for found in slots for s in found)
