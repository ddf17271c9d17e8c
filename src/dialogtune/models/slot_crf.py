"""A linear-chain CRF over the slot head's emissions (``model.slot_decoder=crf``).

The per-token softmax head scores each unit alone and leaves BIO validity to a Viterbi
without trained transitions (``data.encode.slots.constrained_bio_path``). A CRF learns the
transitions too, and trains on the whole label sequence (its negative log-likelihood).
Built on ``pytorch-crf`` (``torchcrf``). Two things its plain use would get wrong here:

- the sequence is the *labelled* positions (the first piece of each unit), not the tokens:
  special tokens, later pieces and padding sit between them, and torchcrf needs each row's
  first timestep on, so labelled positions are moved to the left of each row first
  (``compact_left``);
- BIO validity: transitions BIO forbids (O→I-x, B-x→I-y, I-x→I-y, start→I-x) are held at
  ``FORBIDDEN`` before every use, so training never learns them (their gradient is nil at
  that score) and Viterbi never picks them (a path of all O is always allowed), whatever
  weight decay or a loaded file did to them.
"""

from __future__ import annotations

import torch
from torch import nn
from torchcrf import CRF

from ..data.encode.slots import IGNORE, SlotLabelMap, bio_transitions

# exp(-1e4) is 0 in float32: a forbidden transition adds nothing to the partition function
# and can never win a Viterbi step against an allowed one (emissions are a few units wide).
FORBIDDEN = -1e4


def compact_left(values: torch.Tensor, keep: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Each row's kept positions moved to its front, in order: ``(values [batch, width, ...],
    mask [batch, width])`` where ``width`` is the most any row keeps. Rows keeping none get
    their first position switched on (torchcrf requires it); callers ignore it."""
    order = torch.sort((~keep).to(torch.int8), dim=1, stable=True).indices
    width = max(1, int(keep.sum(1).max()))
    order = order[:, :width]
    mask = keep.gather(1, order)
    mask[:, 0] = True
    index = order.view(*order.shape, *([1] * (values.dim() - 2))).expand(
        -1, -1, *values.shape[2:])
    return values.gather(1, index), mask


class BioCrf(nn.Module):
    """torchcrf's CRF on the slot labels, its BIO-forbidden transitions held at
    ``FORBIDDEN`` (buffers, not saved: they follow from the label map)."""

    def __init__(self, labels: SlotLabelMap):
        super().__init__()
        self.crf = CRF(len(labels), batch_first=True)
        first, allowed = bio_transitions(labels)
        self.register_buffer("forbidden_start", torch.from_numpy(~first), persistent=False)
        self.register_buffer("forbidden", torch.from_numpy(~allowed), persistent=False)
        self.clamp()

    @torch.no_grad()
    def clamp(self) -> None:
        """Hold the forbidden transitions at ``FORBIDDEN`` (in place, outside autograd)."""
        self.crf.start_transitions.masked_fill_(self.forbidden_start, FORBIDDEN)
        self.crf.transitions.masked_fill_(self.forbidden, FORBIDDEN)

    def loss(self, emissions: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Negative log-likelihood of the labelled positions' sequence (labels ``IGNORE``
        elsewhere), averaged over labelled positions: the scale of the softmax head's
        token cross-entropy, so ``slot_weight`` means the same for both."""
        keep = labels != IGNORE
        rows = keep.any(1)
        if not rows.any():
            return emissions.sum() * 0.0
        scores, mask = compact_left(emissions[rows].float(), keep[rows])
        tags, _ = compact_left(labels[rows].clamp(min=0), keep[rows])
        self.clamp()
        return -self.crf(scores, tags, mask, reduction="token_mean")

    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, positions: list[list[int]]) -> list[list[int]]:
        """The best valid BIO label path over each row's ``positions`` (its units' first
        tokens; an empty list gives an empty path)."""
        keep = torch.zeros(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        for row, where in enumerate(positions):
            keep[row, where] = True
        scores, mask = compact_left(emissions.float(), keep)
        self.clamp()
        paths = self.crf.decode(scores, mask)
        return [path if where else [] for path, where in zip(paths, positions)]
