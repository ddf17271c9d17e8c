"""NLU examples → tokenized batches with an intent label and per-token slot labels."""

from __future__ import annotations

import torch

from ..records import NluExample
from .batching import BatchSource, pad_batch
from .intent import LabelMap
from .slots import SlotLabelMap, encode_texts, spans_to_labels


def nlu_batches(tokenizer, examples: list[NluExample], intents: LabelMap, slots: SlotLabelMap,
                max_length: int, batch_size: int, seed: int, group_by_length: bool = True,
                shuffle: bool = True, all_subwords: bool = False,
                use_context: bool = False) -> BatchSource:
    """A BatchSource yielding ``input_ids``, ``attention_mask``, ``labels`` (intent ids,
    -100 for an intent unknown to ``intents``) and ``slot_labels`` (-100 where ignored)."""
    contexts = [e.context for e in examples] if use_context else None
    ids, alignments = encode_texts(tokenizer, [e.text for e in examples], max_length, contexts)
    slot_ids = [spans_to_labels(e.slots, a, slots, all_subwords)
                for e, a in zip(examples, alignments)]
    intent_ids = [intents.index.get(e.intent, -100) for e in examples]
    pad_id = tokenizer.pad_token_id or 0

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        batch = pad_batch([ids[i] for i in indices], pad_id,
                          label_sequences=[slot_ids[i] for i in indices])
        batch["slot_labels"] = batch.pop("labels")
        batch["labels"] = torch.tensor([intent_ids[i] for i in indices])
        return batch

    return BatchSource([len(x) for x in ids], batch_size, collate, seed, group_by_length, shuffle)
