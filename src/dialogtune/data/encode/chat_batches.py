"""Encoded dialogues (or document blocks) → training batches for causal LMs.

Two layouts, one BatchSource:

- ``pack``: the step's sequences are concatenated into ONE row with ``position_ids`` that
  restart at 0 for each sequence and no attention mask. transformers detects the restarts
  (``find_packed_sequence_indices``) and builds a block-diagonal causal mask, so no token
  attends across a boundary, and no compute goes to padding. transformers only looks for
  the restarts when there is no KV cache, so the forward must pass ``use_cache=False``
  (``models/lm.py`` does; a test compares packed and lone logits).
- ``pad``: rows right-padded with an attention mask. Prompt-learning strategies need it:
  peft drops ``position_ids`` when it prepends virtual tokens, which would merge packed
  sequences into one.

Labels stay aligned with ``input_ids`` (Hugging Face convention); the loss shifts them.
"""

from __future__ import annotations

import torch

from .batching import BatchSource, pad_batch
from .chat import IGNORE, EncodedDialogue


def pack_sequences(items: list[EncodedDialogue]) -> dict[str, torch.Tensor]:
    """One row: ids and labels concatenated, positions restarting per sequence."""
    ids, labels, positions = [], [], []
    for item in items:
        ids += item.input_ids
        # the first token of a sequence is never a target across a boundary
        labels += [IGNORE] + item.labels[1:]
        positions += range(len(item.input_ids))
    batch = {"input_ids": torch.tensor([ids]), "labels": torch.tensor([labels])}
    if len(items) > 1:  # a lone sequence gets the model's default positions
        batch["position_ids"] = torch.tensor([positions])
    return batch


def pad_sequences(items: list[EncodedDialogue], pad_id: int) -> dict[str, torch.Tensor]:
    """Right-padded rows with an attention mask; padded labels are -100."""
    return pad_batch([i.input_ids for i in items], pad_id,
                     label_sequences=[i.labels for i in items])


def lm_batches(items: list[EncodedDialogue], batch_size: int, pad_id: int, seed: int,
               pack: bool = True, group_by_length: bool = True,
               counter: dict[str, int] | None = None) -> BatchSource:
    """A BatchSource over encoded sequences; ``counter`` tallies tokens fed and trained."""

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        chosen = [items[i] for i in indices]
        if counter is not None:
            counter["tokens"] = counter.get("tokens", 0) + sum(len(i.input_ids) for i in chosen)
            counter["trained"] = counter.get("trained", 0) + sum(i.trained for i in chosen)
        if pack or len(chosen) == 1:
            return pack_sequences(chosen)
        return pad_sequences(chosen, pad_id)

    return BatchSource([len(i.input_ids) for i in items], batch_size, collate, seed,
                       group_by_length)
