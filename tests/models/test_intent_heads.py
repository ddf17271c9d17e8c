"""Intent heads: the cosine head, starting a head at the intents' mean embeddings, the
supervised contrastive term, and runs that use them trained, saved and loaded again."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from dialogtune.cli import main
from dialogtune.config import load_config
from dialogtune.data.encode.batching import BatchSource
from dialogtune.inference.intent import Predictor, batched_features
from dialogtune.models.heads import (COSINE_SCALE, CosineHead, class_means, make_head,
                                     start_at_prototypes, supervised_contrastive_loss)
from dialogtune.models.loading import load_intent_model
from dialogtune.tasks.intent import load_intent_data, start_head_at_prototypes

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cosine_head_scores_the_scaled_cosine_whatever_the_feature_length():
    torch.manual_seed(0)
    head, features = CosineHead(8, 3), torch.randn(5, 8)
    expected = COSINE_SCALE * F.cosine_similarity(features.unsqueeze(1),
                                                  head.weight.unsqueeze(0), dim=-1)
    assert torch.allclose(head(features), expected, atol=1e-5)
    assert torch.allclose(head(7.0 * features), head(features), atol=1e-5)
    with pytest.raises(ValueError, match="unknown intent head 'mlp'"):
        make_head("mlp", 8, 3)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_a_head_started_at_prototypes_predicts_the_nearest_intent_mean(kind):
    torch.manual_seed(1)
    centres = F.normalize(torch.randn(4, 16), dim=-1) * 5
    label_ids = torch.arange(4).repeat_interleave(6)
    features = centres[label_ids] + 0.5 * torch.randn(24, 16)
    head = make_head(kind, 16, 4)
    start_at_prototypes(head, features, label_ids)
    queries = torch.randn(50, 16) * 3
    means = F.normalize(class_means(features, label_ids, 4), dim=-1)
    nearest = (F.normalize(queries, dim=-1) @ means.T).argmax(1)
    assert torch.equal(head(queries).argmax(1), nearest)
    if kind == "linear":
        assert torch.count_nonzero(head.bias) == 0


def test_class_means_average_unit_vectors_and_leave_an_empty_label_at_zero():
    features = torch.tensor([[3.0, 0.0], [0.0, 2.0], [5.0, 0.0]])
    means = class_means(features, torch.tensor([0, 0, 2]), 3)
    assert torch.allclose(means, torch.tensor([[0.5, 0.5], [0.0, 0.0], [1.0, 0.0]]))


def naive_supervised_contrastive(features, labels, temperature):
    """The loss written out per anchor and positive, as in the paper's equation 2."""
    unit = F.normalize(features, dim=-1)
    terms = []
    for i in range(len(unit)):
        others = [a for a in range(len(unit)) if a != i]
        positives = [p for p in others if labels[p] == labels[i]]
        if not positives:
            continue
        denominator = torch.logsumexp(torch.stack([unit[i] @ unit[a] / temperature
                                                   for a in others]), 0)
        terms.append(-torch.stack([unit[i] @ unit[p] / temperature - denominator
                                   for p in positives]).mean())
    return torch.stack(terms).mean()


def test_label_runs_batch_every_item_once_with_runs_of_one_label():
    labels = [i % 5 for i in range(43)]  # 5 labels, 8 or 9 items each
    source = BatchSource([3] * 43, 8, lambda idx: {}, seed=1, labels=labels, per_label=4)
    plans = [source.plan(epoch) for epoch in (0, 1)]
    for plan in plans:
        flat = [i for batch in plan for i in batch]
        assert sorted(flat) == list(range(43))  # every item once, no drops
        assert sorted(len(batch) for batch in plan) == [3] + [8] * 5  # batches stay whole
        same = sum(labels[a] == labels[b] for batch in plan for a, b in zip(batch, batch[1:]))
        assert same >= 43 - 3 * 11  # runs of 4 (a label's last run may be shorter)
    assert plans[0] != plans[1] and source.plan(0) == plans[0]  # per-epoch, reproducible
    random_batches = BatchSource([3] * 43, 8, lambda idx: {}, seed=1).plan(0)
    pairs = sum(labels[a] == labels[b] for batch in random_batches for a, b in zip(batch, batch[1:]))
    assert pairs < same


def test_supervised_contrastive_loss_matches_the_paper_and_prefers_clusters():
    torch.manual_seed(2)
    features, labels = torch.randn(9, 6), torch.tensor([0, 0, 1, 1, 1, 2, 3, 3, 4])
    loss = supervised_contrastive_loss(features, labels, 0.1)
    assert loss.item() == pytest.approx(naive_supervised_contrastive(features, labels, 0.1)
                                        .item(), rel=1e-5)
    clustered = F.one_hot(labels, 6).float() + 0.01 * torch.randn(9, 6)
    assert supervised_contrastive_loss(clustered, labels) < loss
    alone = torch.randn(3, 6, requires_grad=True)
    zero = supervised_contrastive_loss(alone, torch.tensor([0, 1, 2]))
    zero.backward()  # no pair shares a label: nothing to learn, but a graph to step
    assert zero.item() == 0.0 and torch.count_nonzero(alone.grad) == 0


def test_prototype_start_on_a_real_encoder_equals_the_nearest_mean_embedding(
        tiny_bert, intent_csv, tmp_path):
    cfg = load_config(None, [], task="intent", output=str(tmp_path / "run"),
                      **{"data.train": str(intent_csv), "model.name": tiny_bert})
    data = load_intent_data(cfg)
    model, tokenizer, _ = load_intent_model(tiny_bert, data.labels.labels, head="cosine")
    texts = [r.text for r in data.train]
    start_head_at_prototypes(model, tokenizer, data, 32)
    features = torch.from_numpy(batched_features(model, tokenizer, texts, 32))
    label_ids = torch.tensor([data.labels.index[r.label] for r in data.train])
    means = F.normalize(class_means(features, label_ids, len(data.labels.labels)), dim=-1)
    nearest = (F.normalize(features, dim=-1) @ means.T).argmax(1)
    with torch.no_grad():
        logits = model(**tokenizer(texts, padding=True, return_tensors="pt"))
    assert torch.equal(logits.argmax(1), nearest)


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_a_cosine_prototype_contrastive_run_trains_saves_and_loads(
        tiny_bert, intent_csv, tmp_path, capsys, strategy):
    run = tmp_path / "run"
    assert main(["train", "--task", "intent", "--data", str(intent_csv), "--output", str(run),
                 "--model", tiny_bert, "--strategy", strategy, "--epochs", "2",
                 "--set", "train.batch_size=8", "--set", "train.min_steps=0",
                 "--set", "model.head=cosine", "--set", "model.head_init=prototypes",
                 "--set", "train.contrastive_weight=0.5",
                 "--set", "train.examples_per_label=2"]) == 0
    records = [json.loads(line) for line in (run / "train_log.jsonl").open()]
    losses = [r["loss"] for r in records if "step" in r and "loss" in r]
    assert losses and all(np.isfinite(losses))
    predictor = Predictor.from_run(run)
    assert any(isinstance(m, CosineHead) for m in predictor.model.modules())
    cfg = load_config(None, [], task="intent", output=str(tmp_path / "x"),
                      **{"data.train": str(intent_csv), "model.name": tiny_bert})
    validation = load_intent_data(cfg).validation
    probs = predictor.probabilities([r.text for r in validation])
    accuracy = np.mean([predictor.labels.labels[i] == r.label
                        for i, r in zip(probs.argmax(1), validation)])
    metrics = json.loads((run / "metrics.json").read_text())["validation"]
    assert accuracy == pytest.approx(metrics["accuracy"])  # the saved head is the trained one
