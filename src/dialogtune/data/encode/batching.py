"""Deterministic batch plans shared by all tasks.

A plan is a list of index lists fixed by (seed, epoch), so a resumed run replays exactly
the batches an uninterrupted one would have seen, and DDP ranks split the same plan.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

# Sorting by length inside windows of this many batches removes most padding while
# keeping batches random enough for SGD.
LENGTH_WINDOW_BATCHES = 50


@dataclass
class BatchSource:
    """Items (already tokenized) plus a collate function; yields per-epoch batch plans."""

    lengths: Sequence[int]
    batch_size: int
    collate: Callable[[list[int]], dict[str, torch.Tensor]]
    seed: int = 0
    group_by_length: bool = True
    shuffle: bool = True
    # With ``labels`` and ``per_label`` > 1, batches are built from runs of ``per_label``
    # items of one label, so a batch-level contrastive loss has positives to pull together
    # (with 77 intents a random batch of 32 holds ~6 pairs of one intent).
    labels: Sequence[int] | None = None
    per_label: int = 0

    def plan(self, epoch: int, rank: int = 0, world: int = 1) -> list[list[int]]:
        """The batches this rank trains on in ``epoch`` (equal counts on every rank)."""
        order = list(range(len(self.lengths)))
        rng = random.Random(self.seed * 1_000_003 + epoch)
        by_label = self.labels is not None and self.per_label > 1
        if by_label:
            order = label_runs(self.labels, self.per_label, rng)
        elif self.shuffle:
            rng.shuffle(order)
        if self.group_by_length and not by_label:
            window = self.batch_size * LENGTH_WINDOW_BATCHES
            order = [i for start in range(0, len(order), window)
                     for i in sorted(order[start:start + window], key=lambda j: self.lengths[j])]
        batches = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.shuffle:
            rng.shuffle(batches)
        if world > 1:
            usable = len(batches) - len(batches) % world
            batches = batches[rank:usable:world]
        return batches

    def batches_per_epoch(self, world: int = 1) -> int:
        total = -(-len(self.lengths) // self.batch_size)
        return total - total % world if world > 1 else total


def label_runs(labels: Sequence[int], per_label: int, rng: random.Random) -> list[int]:
    """Every index once, in shuffled runs of up to ``per_label`` indices sharing a label."""
    by_label: dict[int, list[int]] = {}
    for index, label in enumerate(labels):
        by_label.setdefault(label, []).append(index)
    runs = []
    for label in sorted(by_label):
        members = by_label[label]
        rng.shuffle(members)
        runs += [members[i:i + per_label] for i in range(0, len(members), per_label)]
    rng.shuffle(runs)
    return [index for run in runs for index in run]


def pad_batch(sequences: list[list[int]], pad_id: int, extra: dict[str, Any] | None = None,
              label_sequences: list[list[int]] | None = None) -> dict[str, torch.Tensor]:
    """Right-pad token id lists to the batch's longest; labels padded with -100 (ignored)."""
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, :len(seq)] = 1
    batch = {"input_ids": ids, "attention_mask": mask}
    if label_sequences is not None:
        labels = torch.full((len(sequences), width), -100, dtype=torch.long)
        for row, seq in enumerate(label_sequences):
            labels[row, :len(seq)] = torch.tensor(seq, dtype=torch.long)
        batch["labels"] = labels
    batch.update(extra or {})
    return batch
