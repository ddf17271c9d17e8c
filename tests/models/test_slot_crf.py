"""``model.slot_decoder=crf``: the CRF over the slot head trains under every strategy, its
loss falls, its decoded paths are always valid BIO, and its saved weights reload to the
same predictions (also under LoRA, where the head is a peft copy)."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from torchcrf import CRF

from dialogtune.checkpoint import load_trainable, save_tensors, trainable_state
from dialogtune.config import StrategyConfig
from dialogtune.data.encode.nlu import nlu_batches
from dialogtune.data.encode.slots import IGNORE, SlotLabelMap
from dialogtune.models.nlu import load_nlu_model, nlu_loss, predict_slots, slot_crf
from dialogtune.models.slot_crf import FORBIDDEN, BioCrf, compact_left
from dialogtune.strategies import apply_strategy, names
from dialogtune.strategies.base import CLASSIFIER

from test_nlu_model import EXAMPLES, INTENTS, SLOTS  # the same four examples
TWO_SLOTS = SlotLabelMap(["from", "to"])  # O B-from I-from B-to I-to


def build(tiny_bert, seed: int = 0):
    torch.manual_seed(seed)
    model, tokenizer, _ = load_nlu_model(tiny_bert, INTENTS.labels, SLOTS,
                                         slot_decoder="crf")
    return model, tokenizer


def first_batch(tokenizer):
    source = nlu_batches(tokenizer, EXAMPLES, INTENTS, SLOTS, 32, 4, 0, group_by_length=False,
                         shuffle=False)
    return source.collate(source.plan(0)[0])


def train(model, tokenizer, steps: int, lr: float = 3e-3) -> list[float]:
    batch, loss_fn = first_batch(tokenizer), nlu_loss(0.0)
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr)
    losses = []
    for _ in range(steps):
        optimizer.zero_grad()
        loss = loss_fn(model, dict(batch))
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses


def valid_bio(path: list[int], labels: SlotLabelMap) -> bool:
    """I-x only right after B-x or I-x."""
    names_ = ["O", *[labels.labels[i] for i in path]]
    return all(not now.startswith("I-") or before in (f"B-{now[2:]}", now)
               for before, now in zip(names_, names_[1:]))


def spans(found) -> list[list[tuple]]:
    return [[(s.slot, s.start, s.end, s.value) for s in row] for row in found]


def test_compact_left_moves_kept_positions_to_the_front():
    values = torch.arange(12).view(3, 4)
    keep = torch.tensor([[False, True, False, True], [True, True, True, False],
                         [False, False, False, False]])
    moved, mask = compact_left(values, keep)
    assert moved.shape == (3, 3)
    assert moved[0, :2].tolist() == [1, 3] and moved[1].tolist() == [4, 5, 6]
    assert mask.tolist() == [[True, True, False], [True, True, True], [True, False, False]]


def test_crf_loss_is_the_nll_of_the_labelled_sequence():
    """Positions labelled IGNORE (special tokens, later pieces, padding) are skipped: the
    loss is torchcrf's on the labelled positions alone, averaged over them."""
    torch.manual_seed(0)
    crf = BioCrf(TWO_SLOTS)
    emissions = torch.randn(2, 6, len(TWO_SLOTS))
    labels = torch.tensor([[IGNORE, 0, IGNORE, 1, 2, IGNORE],
                           [IGNORE, 3, 4, 0, IGNORE, IGNORE]])
    plain = CRF(len(TWO_SLOTS), batch_first=True)
    plain.load_state_dict(crf.crf.state_dict())
    on = torch.ones(1, 3, dtype=torch.bool)
    first = plain(emissions[:1, [1, 3, 4]], torch.tensor([[0, 1, 2]]), on, reduction="sum")
    second = plain(emissions[1:, [1, 2, 3]], torch.tensor([[3, 4, 0]]), on, reduction="sum")
    assert crf.loss(emissions, labels).item() == pytest.approx(-(first + second).item() / 6,
                                                               rel=1e-5)


def test_decoded_paths_are_valid_bio_whatever_the_transitions():
    """Even with the forbidden transitions pushed high (as weight decay or a tampered file
    could), Viterbi returns valid BIO; a plain CRF with the same scores does not."""
    torch.manual_seed(1)
    crf = BioCrf(TWO_SLOTS)
    with torch.no_grad():
        crf.crf.transitions.uniform_(3.0, 5.0)
        crf.crf.start_transitions.uniform_(3.0, 5.0)
    plain = CRF(len(TWO_SLOTS), batch_first=True)
    plain.load_state_dict(crf.crf.state_dict())
    emissions = torch.randn(64, 9, len(TWO_SLOTS)) * 3
    positions = [sorted(np.random.default_rng(i).choice(9, size=1 + i % 8, replace=False)
                        .tolist()) for i in range(64)]
    paths = crf.decode(emissions, positions)
    assert [len(p) for p in paths] == [len(p) for p in positions]
    assert all(valid_bio(p, TWO_SLOTS) for p in paths)
    on = torch.ones(emissions.shape[:2], dtype=torch.bool)
    assert not all(valid_bio(p, TWO_SLOTS) for p in plain.decode(emissions, on))
    assert crf.decode(emissions[:1], [[]]) == [[]]


def test_decoding_is_the_best_valid_path():
    """Viterbi's path scores highest among every valid BIO path (brute force)."""
    torch.manual_seed(2)
    crf = BioCrf(TWO_SLOTS)
    with torch.no_grad():
        crf.crf.transitions.normal_()
        crf.crf.start_transitions.normal_()
        crf.crf.end_transitions.normal_()
    crf.clamp()
    emissions = torch.randn(1, 4, len(TWO_SLOTS))
    [path] = crf.decode(emissions, [[0, 1, 2, 3]])

    def score(tags):
        on = torch.ones(1, 4, dtype=torch.bool)
        return crf.crf(emissions, torch.tensor([tags]), on, reduction="sum").item()

    best = max((list(t) for t in itertools.product(range(len(TWO_SLOTS)), repeat=4)
                if valid_bio(list(t), TWO_SLOTS)), key=score)
    assert path == best


@pytest.mark.parametrize("strategy", names())
def test_every_strategy_trains_the_crf(tiny_bert, one_thread, strategy):
    model, tokenizer = build(tiny_bert)
    model = apply_strategy(model, StrategyConfig(name=strategy, freeze_top_k=1,
                                                 num_virtual_tokens=4), CLASSIFIER)
    loss = nlu_loss(0.1)(model, dict(first_batch(tokenizer)))
    assert torch.isfinite(loss)
    loss.backward()
    crf = slot_crf(model).crf
    for param in (crf.transitions, crf.start_transitions, crf.end_transitions):
        assert param.requires_grad and param.grad is not None and param.grad.abs().sum() > 0
    saved = [n for n in trainable_state(model) if ".crf." in n]
    assert len(saved) == 3, saved


def test_crf_loss_falls_and_forbidden_transitions_stay_forbidden(tiny_bert, one_thread):
    model, tokenizer = build(tiny_bert)
    losses = train(model, tokenizer, 60)
    assert losses[-1] < 0.2 * losses[0]
    crf = slot_crf(model)
    assert (crf.crf.transitions[crf.forbidden] < FORBIDDEN / 2).all()  # decay: no matter
    assert (crf.crf.transitions[~crf.forbidden] > FORBIDDEN / 2).all()
    texts = [e.text for e in EXAMPLES]
    intents, found = predict_slots(model, tokenizer, texts, SLOTS, 32)
    assert [INTENTS.labels[i] for i in np.argmax(intents, -1)] == [e.intent for e in EXAMPLES]
    assert spans(found) == [[(s.slot, s.start, s.end, e.value(s)) for s in e.slots]
                            for e in EXAMPLES]
    assert all(0 < s.confidence <= 1 for row in found for s in row)


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_crf_weights_save_and_reload_to_the_same_spans(tiny_bert, one_thread, tmp_path,
                                                       strategy):
    """What a run saves (the trainable state) restores the CRF: a model built afresh
    (another seed) and loaded predicts the same probabilities and spans."""
    config = StrategyConfig(name=strategy, lora_r=4)
    model, tokenizer = build(tiny_bert)
    model = apply_strategy(model, config, CLASSIFIER)
    train(model, tokenizer, 30, lr=1e-2)
    texts = [e.text for e in EXAMPLES] + ["send money to my friend", "how much do i have"]
    before = predict_slots(model, tokenizer, texts, SLOTS, 32)
    save_tensors(trainable_state(model), tmp_path / "model.safetensors")

    fresh, _ = build(tiny_bert, seed=7)
    fresh = apply_strategy(fresh, config, CLASSIFIER)
    trained, untrained = slot_crf(model).crf.transitions, slot_crf(fresh).crf.transitions
    assert not torch.equal(trained, untrained)
    load_trainable(fresh, tmp_path / "model.safetensors")
    assert torch.equal(slot_crf(fresh).crf.transitions, trained)
    after = predict_slots(fresh, tokenizer, texts, SLOTS, 32)
    np.testing.assert_allclose(after[0], before[0], rtol=1e-5, atol=1e-6)
    assert spans(after[1]) == spans(before[1])
    assert any(row for row in before[1]), "the trained model finds slots"
