"""Batches of encoded preference records: a pair's context once, its two replies beside it.

The chosen and rejected sides of a pair share every token up to their reply (same context,
same template). So a pair becomes ONE row: context, chosen reply, rejected reply, with
position ids that restart the rejected reply where the context ends and an attention mask
in which each reply sees the context and itself, never the other reply. Both replies'
log-probabilities come out exactly as from two separate forwards (a test checks it), for
one pass over the context instead of two: on multi-turn tool dialogues, where the context
(tool list, turns, results) is most of a sequence, that is close to half the compute of
the policy and of the reference pass.

Each scored token is a target ``(row, position, token, sequence)``: the logit at
``position`` predicts ``token``, a reply token of ``sequence`` (0, 1, ... in batch order:
chosen before rejected). The first token of both replies is predicted from the same
position (the context's last token), which is why targets are listed rather than read
from shifted labels. A record whose sides do not share their context tokens, an unpaired
(KTO) row, and every record under a prompt-learning strategy (peft prepends virtual tokens
that a custom mask cannot cover) get one plain row per side and a 2-D padding mask.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from .batching import pad_batch
from .chat import IGNORE, EncodedDialogue

# Batch keys the model never sees: the loss reads them (models/preference.py).
TARGET_KEYS = ("target_rows", "target_positions", "target_tokens", "target_sequences",
               "chosen_mask", "pair_ids")


@dataclass
class Row:
    """One row of a batch: its tokens, positions, segments (0 the context, 1 and 2 the
    replies) and the targets it scores (position, token, sequence)."""

    ids: list[int] = field(default_factory=list)
    positions: list[int] = field(default_factory=list)
    segments: list[int] = field(default_factory=list)
    targets: list[tuple[int, int, int]] = field(default_factory=list)


def context_length(sequence: EncodedDialogue) -> int:
    """Tokens before the scored reply (the first labelled token)."""
    return next(i for i, label in enumerate(sequence.labels) if label != IGNORE)


def build_row(context: list[int], replies: list[tuple[EncodedDialogue, int]]) -> Row:
    """A row of ``context`` followed by each reply (its sequence, its sequence number)."""
    n = len(context)
    row = Row(list(context), list(range(n)), [0] * n)
    for segment, (sequence, number) in enumerate(replies, 1):
        start = len(row.ids)
        tail, labels = sequence.input_ids[n:], sequence.labels[n:]
        row.targets += [(n - 1 if j == 0 else start + j - 1, token, number)
                        for j, (token, label) in enumerate(zip(tail, labels)) if label != IGNORE]
        row.ids += tail
        row.positions += range(n, n + len(tail))
        row.segments += [segment] * len(tail)
    return row


def record_rows(sides: list[tuple[EncodedDialogue, int]], share: bool) -> list[Row]:
    """One shared row for a pair whose sides share their context, else a row per side."""
    if share and len(sides) == 2:
        (first, _), (second, _) = sides
        n = context_length(first)
        if context_length(second) == n and first.input_ids[:n] == second.input_ids[:n]:
            return [build_row(first.input_ids[:n], sides)]
    return [build_row(s.input_ids[:context_length(s)], [(s, number)]) for s, number in sides]


def attention(rows: list[Row], width: int) -> torch.Tensor:
    """(rows, 1, width, width) boolean mask: causal, and a reply never sees the other one;
    padding is seen by nobody (padding queries see the context: no empty softmax row)."""
    segments = torch.full((len(rows), width), -1, dtype=torch.long)
    for r, row in enumerate(rows):
        segments[r, :len(row.segments)] = torch.tensor(row.segments)
    order = torch.arange(width)
    causal = order[None, :] <= order[:, None]
    keys, queries = segments[:, None, :], segments[:, :, None]
    allowed = causal & ((keys == 0) | (keys == queries)) & (keys >= 0)
    return allowed[:, None]


def collate_rows(rows: list[Row], chosen: list[bool], pairs: list[int], pad_id: int
                 ) -> dict[str, torch.Tensor]:
    """The model inputs of ``rows`` (right-padded) and their targets."""
    batch = pad_batch([row.ids for row in rows], pad_id)
    if any(max(row.segments) > 1 for row in rows):  # a shared row: the custom mask
        width = batch["input_ids"].shape[1]
        positions = torch.zeros((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            positions[r, :len(row.positions)] = torch.tensor(row.positions)
        batch.update(attention_mask=attention(rows, width), position_ids=positions)
    targets = [(r, *target) for r, row in enumerate(rows) for target in row.targets]
    columns = list(zip(*targets))
    for key, values in zip(TARGET_KEYS, columns):
        batch[key] = torch.tensor(values, dtype=torch.long)
    batch["chosen_mask"] = torch.tensor(chosen)
    batch["pair_ids"] = torch.tensor(pairs)
    return batch
