"""Preference records → token ids with labels on the final assistant turn only, and batches
in which a pair's chosen and rejected replies go through one forward.

Each side is its context plus one reply, encoded by the chat encoder (``chat.py``, tools by
``tools.py``) with every earlier assistant turn at weight 0: the text, the tool format and
the loss mask are exactly chat SFT's, restricted to the judged reply. A batch holds each
pair as one row, its context once and both replies beside it (``preference_rows.py``).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import torch

from ..records import Dialogue, Preference
from .batching import BatchSource
from .chat import EncodedDialogue, encode_dialogue
from .preference_rows import collate_rows, record_rows

log = logging.getLogger("dialogtune")


@dataclass
class EncodedPreference:
    """The encoded sides of one record (an unpaired row has one of them)."""

    chosen: EncodedDialogue | None
    rejected: EncodedDialogue | None

    def sequences(self) -> list[tuple[EncodedDialogue, bool]]:
        """(sequence, is chosen) in batch order: chosen first."""
        return [(s, c) for s, c in ((self.chosen, True), (self.rejected, False)) if s]


def final_turn_only(dialogue: Dialogue) -> Dialogue:
    """``dialogue`` with every assistant turn but the last at weight 0 (context only)."""
    last = max(i for i, m in enumerate(dialogue.messages) if m.role == "assistant")
    messages = [replace(m, weight=0) if m.role == "assistant" and i != last else
                replace(m, weight=None) if i == last else m
                for i, m in enumerate(dialogue.messages)]
    return replace(dialogue, messages=messages)


def encode_side(tokenizer, dialogue: Dialogue | None, max_length: int | None
                ) -> EncodedDialogue | None:
    """One side through the chat encoder, only its final reply trained (None: too long)."""
    if dialogue is None:
        return None
    return encode_dialogue(tokenizer, final_turn_only(dialogue), max_length)[0]


def encode_preferences(tokenizer, records: list[Preference], max_length: int | None = None
                       ) -> tuple[list[EncodedPreference], dict]:
    """Encode a data set; a record whose reply does not fit ``max_length`` is dropped and
    counted (logged, never silent). Returns (encoded, stats for the run summary)."""
    encoded, dropped = [], 0
    for record in records:
        item = EncodedPreference(encode_side(tokenizer, record.chosen, max_length),
                                 encode_side(tokenizer, record.rejected, max_length))
        if (record.chosen and not item.chosen) or (record.rejected and not item.rejected):
            dropped += 1
            continue
        encoded.append(item)
    if dropped:
        log.warning("max_length %s: dropped %d preference record(s) whose reply did not fit",
                    max_length, dropped)
    sequences = [s for item in encoded for s, _ in item.sequences()]
    stats = {"records": len(records), "kept": len(encoded), "dropped": dropped,
             "pairs": sum(1 for i in encoded if i.chosen and i.rejected),
             "desirable": sum(1 for i in encoded if i.chosen),
             "undesirable": sum(1 for i in encoded if i.rejected),
             "tokens": sum(len(s.input_ids) for s in sequences),
             "scored_tokens": sum(s.trained for s in sequences)}
    return encoded, stats


def collate_preferences(items: list[EncodedPreference], pad_id: int, share: bool = True
                        ) -> dict[str, torch.Tensor]:
    """One batch of every side of ``items``: a row per pair sharing its context (``share``,
    off for prompt-learning strategies), else a row per side."""
    rows, chosen, pairs = [], [], []
    for pair, item in enumerate(items):
        sides = []
        for sequence, is_chosen in item.sequences():
            sides.append((sequence, len(chosen)))
            chosen.append(is_chosen)
            pairs.append(pair)
        rows += record_rows(sides, share)
    return collate_rows(rows, chosen, pairs, pad_id)


def preference_batches(items: list[EncodedPreference], batch_size: int, pad_id: int,
                       seed: int, share: bool = True, group_by_length: bool = True,
                       counter: dict[str, int] | None = None) -> BatchSource:
    """A BatchSource over encoded records. ``counter`` tallies ``tokens`` (both sides of
    every record, context included: what a trainer feeding each side whole processes, so
    rates compare with one), ``computed`` (the tokens of the rows, context once) and
    ``trained`` (scored reply tokens)."""

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        chosen = [items[i] for i in indices]
        batch = collate_preferences(chosen, pad_id, share)
        if counter is not None:
            sides = [s for item in chosen for s, _ in item.sequences()]
            counter["tokens"] = counter.get("tokens", 0) + sum(len(s.input_ids) for s in sides)
            counter["trained"] = counter.get("trained", 0) + sum(s.trained for s in sides)
            computed = batch["attention_mask"] if batch["attention_mask"].dim() == 2 else \
                batch["attention_mask"][:, 0].diagonal(dim1=1, dim2=2)
            counter["computed"] = counter.get("computed", 0) + int(computed.sum())
        return batch

    lengths = [sum(len(s.input_ids) for s, _ in item.sequences()) for item in items]
    return BatchSource(lengths, batch_size, collate, seed, group_by_length)
