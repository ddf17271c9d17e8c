"""Preference-tuning objectives (DPO, ORPO, KTO, SimPO) and the log-probabilities they read.

The losses are pure functions of each sequence's summed completion log-probability (and,
for the length-normalised ones, its completion length): tests check them against values
worked out by hand. The formulas follow the papers as TRL implements them:

- DPO (Rafailov et al. 2023): ``-log σ(β·((πc − refc) − (πr − refr)))``;
- SimPO (Meng et al. 2024): ``-log σ(β·(πc/|c| − πr/|r|) − γ)``, no reference;
- ORPO (Hong et al. 2024): chosen NLL per token ``− λ·log σ(log odds(c) − log odds(r))``
  with ``log odds(y) = ȳ − log(1 − exp(ȳ))`` on mean token log-probs, no reference;
- KTO (Ethayarajh et al. 2024): ``1 − σ(β·(ratio − z))`` for desirable replies and
  ``1 − σ(β·(z − ratio))`` for undesirable ones, ``ratio = π − ref``. The reference point
  ``z`` is estimated here from the batch's own log-ratios (detached, clamped at 0); TRL
  estimates it from completions paired with other prompts, at the cost of two more
  forwards per step.

The reference model is the policy with its adapter switched off (peft's
``disable_adapter``), run under ``no_grad`` on the same batch: no second copy in memory.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from ..data.encode.preference_rows import TARGET_KEYS
from .lm import selected_logits, unwrap


@dataclass
class SequenceScores:
    """Per sequence of a batch: summed completion log-prob, completion length, whether it
    is the chosen (desirable) side, and the record it belongs to."""

    logps: torch.Tensor
    lengths: torch.Tensor
    chosen_mask: torch.Tensor
    pair_ids: torch.Tensor

    @property
    def chosen(self) -> torch.Tensor:
        return self.logps[self.chosen_mask]

    @property
    def rejected(self) -> torch.Tensor:
        return self.logps[~self.chosen_mask]

    def sides(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(values of chosen sequences, of rejected ones), each in record order."""
        return values[self.chosen_mask], values[~self.chosen_mask]


def sequence_logps(model: nn.Module, batch: dict[str, torch.Tensor]) -> SequenceScores:
    """Each sequence's summed log-probability of its scored tokens (the final reply), from
    one forward over the whole batch (a pair's context once, both replies beside it; see
    ``data/encode/preference_rows.py``); the LM head runs only where a target is read."""
    inputs = {k: v for k, v in batch.items() if k not in TARGET_KEYS}
    if inputs["attention_mask"].dim() == 4:
        inputs["attention_mask"] = _model_mask(model, inputs["attention_mask"])
    rows, positions = batch["target_rows"], batch["target_positions"]
    keep = torch.zeros_like(batch["input_ids"], dtype=torch.bool)
    keep[rows, positions] = True
    logits = selected_logits(model, inputs, keep)  # kept positions, in row-major order
    where = keep.flatten().cumsum(0) - 1
    picked = logits[where[rows * keep.shape[1] + positions]]
    token_logps = -F.cross_entropy(picked.float(), batch["target_tokens"], reduction="none")
    owners, count = batch["target_sequences"], int(batch["chosen_mask"].numel())
    logps = token_logps.new_zeros(count).index_add(0, owners, token_logps)
    lengths = torch.bincount(owners, minlength=count).to(token_logps.dtype)
    return SequenceScores(logps, lengths, batch["chosen_mask"].bool(), batch["pair_ids"])


def _model_mask(model: nn.Module, allowed: torch.Tensor) -> torch.Tensor:
    """The boolean 4-D mask as the model's attention reads it: SDPA and flex take it as it
    is; eager attention adds the mask to its scores, so it gets 0 / a large negative."""
    config = getattr(unwrap(model), "config", None)
    if getattr(config, "_attn_implementation", "sdpa") in ("sdpa", "flex_attention"):
        return allowed
    dtype = next(unwrap(model).parameters()).dtype
    return torch.zeros_like(allowed, dtype=dtype).masked_fill(~allowed, torch.finfo(dtype).min)


def shares_context(model: nn.Module) -> bool:
    """Whether a pair may share its context in one row: not when peft prepends virtual
    tokens or a prefix (prompt learning), which a custom mask cannot cover."""
    config = getattr(unwrap(model), "active_peft_config", None)
    return not getattr(config, "is_prompt_learning", False)


def has_reference(model: nn.Module) -> bool:
    """Whether the model's reference can be had by switching its adapter off."""
    return hasattr(unwrap(model), "disable_adapter")


@torch.no_grad()
def reference_logps(model: nn.Module, batch: dict[str, torch.Tensor]) -> SequenceScores:
    """:func:`sequence_logps` of the model with its adapter switched off (the reference).
    Prompt learning: its base model, without the virtual tokens (peft's switched-off
    forward drops them, which the position bookkeeping of ``lm.selected_logits`` must know)."""
    peft = unwrap(model)
    if not shares_context(model):
        return sequence_logps(peft.get_base_model(), batch)
    with peft.disable_adapter():
        return sequence_logps(model, batch)


def dpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """Mean DPO loss over pairs (summed log-probs of policy and reference)."""
    margin = (chosen - ref_chosen) - (rejected - ref_rejected)
    return -F.logsigmoid(beta * margin).mean()


def simpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, chosen_lengths: torch.Tensor,
               rejected_lengths: torch.Tensor, beta: float, gamma: float) -> torch.Tensor:
    """Mean SimPO loss: length-normalised log-probs, a target margin ``gamma``."""
    margin = chosen / chosen_lengths - rejected / rejected_lengths
    return -F.logsigmoid(beta * margin - gamma).mean()


def _log1mexp(x: torch.Tensor) -> torch.Tensor:
    """log(1 − exp(x)) for x < 0, clamped away from 0 where it diverges."""
    return torch.log(-torch.expm1(x.clamp(max=-1e-6)))


def orpo_loss(chosen: torch.Tensor, rejected: torch.Tensor, chosen_lengths: torch.Tensor,
              rejected_lengths: torch.Tensor, lam: float) -> torch.Tensor:
    """ORPO: the chosen replies' NLL per token minus ``lam`` × mean log σ(log odds ratio)."""
    mean_chosen, mean_rejected = chosen / chosen_lengths, rejected / rejected_lengths
    log_odds = (mean_chosen - mean_rejected) - (_log1mexp(mean_chosen) - _log1mexp(mean_rejected))
    nll = -chosen.sum() / chosen_lengths.sum()
    return nll - lam * F.logsigmoid(log_odds).mean()


def kto_loss(desirable_ratios: torch.Tensor, undesirable_ratios: torch.Tensor,
             beta: float, desirable_weight: float = 1.0, undesirable_weight: float = 1.0
             ) -> torch.Tensor:
    """Mean KTO loss over the batch's replies; ratios are policy − reference log-probs."""
    z = torch.cat([desirable_ratios, undesirable_ratios]).mean().detach().clamp(min=0)
    losses = torch.cat([desirable_weight * (1 - torch.sigmoid(beta * (desirable_ratios - z))),
                        undesirable_weight * (1 - torch.sigmoid(beta * (z - undesirable_ratios)))])
    return losses.mean()


@dataclass(frozen=True)
class Method:
    """One preference objective: whether it reads a reference, whether it needs pairs,
    its default β (λ for ORPO), measured or taken from its paper, and the default weight
    of the chosen replies' NLL added to it (``train.sft_weight``; ORPO has its own)."""

    name: str
    uses_reference: bool
    needs_pairs: bool
    beta: float
    sft_weight: float = 0.0


# β 0.1 for DPO and KTO and λ 0.1 for ORPO: their papers' and TRL's defaults. SimPO: β 2.0
# and γ 1.0 (γ/β = 0.5), the middle of the ranges its paper reports for 7-8B models.
# DPO adds the chosen replies' NLL (RPO, weight 1.0) by default. On sgd_banks_tools pairs
# (benchmarks/preference_sgd.py; RESULTS.md) plain DPO raised held-out perplexity by 7.8 %
# and 7.0 % (two DPO seeds, two machines) and the hallucinated-value rate from 0.040 to
# 0.109 and 0.050; with the term, perplexity moved +0.7 % and the rate stayed at 0.040
# (one run). Preference accuracy was 1.0 in all three.
METHODS = {"dpo": Method("dpo", True, True, 0.1, sft_weight=1.0),
           "kto": Method("kto", True, False, 0.1),
           "orpo": Method("orpo", False, True, 0.1), "simpo": Method("simpo", False, True, 2.0)}
SIMPO_GAMMA_RATIO = 0.5


def resolved_method(method: str, beta: float | None, sft_weight: float | None
                    ) -> tuple[Method, float, float]:
    """(the method, its β, its SFT weight) from a run's ``train.method`` / ``beta`` /
    ``sft_weight``, each unset one taking the method's default: what training and
    evaluation both score with."""
    chosen = METHODS[method]
    return (chosen, beta or chosen.beta,
            chosen.sft_weight if sft_weight is None else sft_weight)


def method_loss(method: Method, policy: SequenceScores, reference: SequenceScores | None,
                beta: float) -> torch.Tensor:
    """The batch's loss under ``method`` (``reference`` None for reference-free methods)."""
    if method.name == "kto":
        ratios = policy.logps - reference.logps
        return kto_loss(*policy.sides(ratios), beta)
    chosen, rejected = policy.chosen, policy.rejected
    if method.name == "dpo":
        return dpo_loss(chosen, rejected, reference.chosen, reference.rejected, beta)
    lengths = policy.sides(policy.lengths)
    if method.name == "simpo":
        return simpo_loss(chosen, rejected, *lengths, beta, SIMPO_GAMMA_RATIO * beta)
    return orpo_loss(chosen, rejected, *lengths, beta)


def pair_margins(method: Method, policy: SequenceScores, reference: SequenceScores | None
                 ) -> torch.Tensor:
    """Per pair, how much more the model prefers the chosen reply: the log-ratio margin
    relative to the reference for DPO and KTO, the mean token log-prob margin for the
    reference-free methods (what each optimises)."""
    if method.uses_reference:
        chosen, rejected = policy.sides(policy.logps - reference.logps)
    else:
        chosen, rejected = policy.sides(policy.logps / policy.lengths)
    return chosen - rejected


def chosen_nll(policy: SequenceScores) -> torch.Tensor:
    """Mean negative log-likelihood per token of the replies to prefer (the chosen side of
    pairs, the desirable completions of KTO rows): the SFT term RPO adds to DPO."""
    logps, lengths = policy.sides(policy.logps)[0], policy.sides(policy.lengths)[0]
    return -logps.sum() / lengths.sum().clamp(min=1)


def preference_loss(method: Method, beta: float, sft_weight: float = 0.0):
    """The training loop's loss function (model, batch) → loss for ``method``, plus
    ``sft_weight`` × the chosen replies' NLL per token (RPO, Pang et al. 2024; TRL's
    ``rpo_alpha``): it keeps the chosen reply likely while the margin grows."""
    def loss(model: nn.Module, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        reference = reference_logps(model, batch) if method.uses_reference else None
        policy = sequence_logps(model, batch)
        value = method_loss(method, policy, reference, beta)
        return value + sft_weight * chosen_nll(policy) if sft_weight else value
    return loss

