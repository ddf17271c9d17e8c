"""Every strategy trains exactly the parameters it promises and leaves the rest bit-identical."""

from __future__ import annotations

import pytest
import torch

from dialogtune.config import StrategyConfig, TrainConfig
from dialogtune.data.encode.intent import LabelMap, intent_batches
from dialogtune.data.records import Utterance
from dialogtune.errors import ConfigError
from dialogtune.models.loading import load_intent_model
from dialogtune.strategies import (CLASSIFIER, apply_strategy, get_strategy, names,
                                   parameter_counts)
from dialogtune.tasks.intent import head_learning_rate, intent_loss
from dialogtune.train import fit

from helpers import INTENT_EXAMPLES

LABELS = sorted(INTENT_EXAMPLES)


pytestmark = pytest.mark.usefixtures("one_thread")


def _lora(name: str) -> bool:
    return ".lora_A." in name or ".lora_B." in name


def _peft_head(name: str) -> bool:
    return "classifier.modules_to_save.default." in name


# Which parameter names each strategy must train (after it is applied, with freeze_top_k=1).
SHOULD_TRAIN = {
    "full": lambda n: True,
    "freeze": lambda n: n.startswith(("encoder.encoder.layer.1.", "classifier.")),
    "lora": lambda n: _lora(n) or _peft_head(n),
    "dora": lambda n: _lora(n) or ".lora_magnitude_vector." in n or _peft_head(n),
    "ia3": lambda n: ".ia3_l." in n or n.endswith(".ia3_l.default") or _peft_head(n),
    "prompt-tuning": lambda n: n.startswith("prompt_encoder.") or _peft_head(n),
    "p-tuning": lambda n: n.startswith("prompt_encoder.") or _peft_head(n),
    "prefix-tuning": lambda n: ".kv_prefix." in n or n.startswith("classifier."),
}


def test_every_registered_strategy_has_an_expectation():
    assert set(names()) == set(SHOULD_TRAIN)


def _unused(name: str) -> bool:
    """BERT's pooler runs but the mean-pooled head never reads it: it gets no gradient."""
    return ".pooler." in name


def _batches(tokenizer):
    records = [Utterance(t, label) for label in LABELS for t in INTENT_EXAMPLES[label][:3]]
    return intent_batches(tokenizer, records, LabelMap(LABELS), 32, batch_size=4, seed=0)


@pytest.mark.parametrize("strategy", names())
def test_strategy_trains_exactly_its_parameters(strategy, tiny_bert, tmp_path):
    torch.manual_seed(0)
    model, tokenizer, _ = load_intent_model(tiny_bert, LABELS)
    model = apply_strategy(model, StrategyConfig(name=strategy, freeze_top_k=1,
                                                 num_virtual_tokens=4), CLASSIFIER)
    should_train = SHOULD_TRAIN[strategy]
    params = dict(model.named_parameters())
    expected = {n for n in params if should_train(n)}
    trainable = {n for n, p in params.items() if p.requires_grad}
    assert trainable == expected
    assert any(not _unused(n) and "classifier" not in n for n in expected)  # not only the head
    before = {n: p.detach().clone() for n, p in params.items()}

    cfg = TrainConfig(epochs=1, max_steps=3, batch_size=4, warmup_ratio=0.0,
                      schedule="constant", save_every_steps=0, label_smoothing=0.0)
    lr = get_strategy(strategy).learning_rate(CLASSIFIER)
    result = fit(model, _batches(tokenizer), intent_loss(0.0), None, cfg, tmp_path, lr,
                 head_learning_rate(cfg))
    assert result.steps == 3

    after = dict(model.named_parameters())
    assert set(after) == set(before)
    changed = {n for n in after if not torch.equal(after[n].detach(), before[n])}
    frozen_changed = sorted(changed - expected)
    assert not frozen_changed, f"frozen parameters changed: {frozen_changed[:5]}"
    not_trained = sorted(n for n in expected - changed if not _unused(n))
    assert not not_trained, f"trainable parameters did not change: {not_trained[:5]}"

    with torch.no_grad():
        model.eval()
        batch = _batches(tokenizer).collate([0, 1, 2])
        batch.pop("labels")
        assert model(**batch).shape == (3, len(LABELS))


@pytest.mark.parametrize("strategy", names())
def test_parameter_counts(strategy, tiny_bert):
    model, _, _ = load_intent_model(tiny_bert, LABELS)
    base_total = sum(p.numel() for p in model.parameters())
    model = apply_strategy(model, StrategyConfig(name=strategy, num_virtual_tokens=4), CLASSIFIER)
    trainable, total = parameter_counts(model)
    assert trainable == sum(p.numel() for p in model.parameters() if p.requires_grad)
    assert total >= base_total
    if strategy == "full":
        assert trainable == total == base_total
    else:
        assert 0 < trainable < total


def test_parameter_counts_counts_shared_tensors_once():
    shared = torch.nn.Linear(4, 4)
    model = torch.nn.Sequential(shared, shared)
    assert parameter_counts(model) == (20, 20)
    shared.bias.requires_grad = False
    assert parameter_counts(model) == (16, 20)


def test_strategy_errors(tiny_bert):
    with pytest.raises(ConfigError, match="unknown strategy 'adapters'"):
        get_strategy("adapters")
    model, _, _ = load_intent_model(tiny_bert, LABELS)
    with pytest.raises(ConfigError, match="freeze_top_k must be between 1 and 2"):
        apply_strategy(model, StrategyConfig(name="freeze", freeze_top_k=3), CLASSIFIER)
