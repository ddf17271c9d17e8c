"""The preference losses against values worked out by hand (math, not torch), and the
per-sequence log-probabilities of a packed batch against separate forwards."""

from __future__ import annotations

import math

import pytest
import torch

from dialogtune.models.preference import dpo_loss, kto_loss, orpo_loss, simpo_loss

T = lambda *values: torch.tensor(values, dtype=torch.float32)  # noqa: E731


def log_sigmoid(x: float) -> float:
    return -math.log1p(math.exp(-x))


def test_dpo_loss_by_hand():
    # margin = (-1 - -2) - (-3 - -2) = 2; beta 0.5 → -log σ(1)
    assert float(dpo_loss(T(-1.0), T(-3.0), T(-2.0), T(-2.0), 0.5)) == pytest.approx(
        -log_sigmoid(1.0), abs=1e-6)
    # two pairs: margins 2 and -2 at beta 1 → mean of -log σ(2) and -log σ(-2)
    loss = dpo_loss(T(-1.0, -3.0), T(-3.0, -1.0), T(-2.0, -2.0), T(-2.0, -2.0), 1.0)
    assert float(loss) == pytest.approx((-log_sigmoid(2) - log_sigmoid(-2)) / 2, abs=1e-6)


def test_simpo_loss_by_hand():
    # mean log-probs -4/2 = -2 and -9/3 = -3; β 2, γ 1 → -log σ(2·1 − 1)
    loss = simpo_loss(T(-4.0), T(-9.0), T(2.0), T(3.0), beta=2.0, gamma=1.0)
    assert float(loss) == pytest.approx(-log_sigmoid(1.0), abs=1e-6)


def test_orpo_loss_by_hand():
    # means -1 and -2; log odds(y) = y - log(1 - e^y)
    log_odds = (-1 - math.log(1 - math.exp(-1))) - (-2 - math.log(1 - math.exp(-2)))
    expected = 1.0 - 0.1 * log_sigmoid(log_odds)  # chosen NLL per token: 2 / 2
    loss = orpo_loss(T(-2.0), T(-6.0), T(2.0), T(3.0), lam=0.1)
    assert float(loss) == pytest.approx(expected, abs=1e-6)


def test_kto_loss_by_hand_with_its_reference_point():
    # ratios 3, 1 (desirable) and -1 (undesirable): z = mean = 1
    # losses 1-σ(3-1), 1-σ(1-1), 1-σ(1-(-1)) at β 1
    sig = lambda x: 1 / (1 + math.exp(-x))  # noqa: E731
    expected = ((1 - sig(2)) + (1 - sig(0)) + (1 - sig(2))) / 3
    assert float(kto_loss(T(3.0, 1.0), T(-1.0), beta=1.0)) == pytest.approx(expected, abs=1e-6)
    # a negative mean ratio is clamped: z = 0
    expected = ((1 - sig(-1)) + (1 - sig(3))) / 2
    assert float(kto_loss(T(-1.0), T(-3.0), beta=1.0)) == pytest.approx(expected, abs=1e-6)
    # KTO also takes only desirable (or only undesirable) replies
    assert float(kto_loss(T(0.5), T(), beta=1.0)) == pytest.approx(1 - sig(0), abs=1e-6)


def test_losses_fall_as_the_chosen_reply_gains():
    worse = dpo_loss(T(-2.0), T(-2.0), T(-2.0), T(-2.0), 0.1)
    better = dpo_loss(T(-1.0), T(-2.0), T(-2.0), T(-2.0), 0.1)
    assert better < worse
    assert simpo_loss(T(-2.0), T(-4.0), T(2.0), T(2.0), 2.0, 1.0) < simpo_loss(
        T(-4.0), T(-2.0), T(2.0), T(2.0), 2.0, 1.0)


def test_the_sft_term_adds_the_chosen_replies_nll_per_token(monkeypatch):
    from dialogtune.models import preference

    # two pairs: chosen sums -2 (2 tokens) and -4 (6 tokens); rejected -3 and -5
    policy = preference.SequenceScores(T(-2.0, -3.0, -4.0, -5.0), T(2.0, 3.0, 6.0, 4.0),
                                       torch.tensor([True, False, True, False]),
                                       torch.tensor([0, 0, 1, 1]))
    assert float(preference.chosen_nll(policy)) == pytest.approx(6 / 8)  # (2 + 4) / (2 + 6)
    reference = preference.SequenceScores(T(-2.5, -2.5, -4.5, -4.5), policy.lengths,
                                          policy.chosen_mask, policy.pair_ids)
    monkeypatch.setattr(preference, "sequence_logps", lambda model, batch: policy)
    monkeypatch.setattr(preference, "reference_logps", lambda model, batch: reference)
    dpo = preference.METHODS["dpo"]
    plain = float(preference.preference_loss(dpo, 0.1)(None, {}))
    assert plain == pytest.approx(float(dpo_loss(T(-2.0, -4.0), T(-3.0, -5.0), T(-2.5, -4.5),
                                                 T(-2.5, -4.5), 0.1)), abs=1e-6)
    with_sft = float(preference.preference_loss(dpo, 0.1, sft_weight=0.5)(None, {}))
    assert with_sft == pytest.approx(plain + 0.5 * 6 / 8, abs=1e-6)
