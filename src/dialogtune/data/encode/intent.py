"""Intent records → tokenized, length-grouped classification batches."""

from __future__ import annotations

import torch

from ..records import Utterance
from .batching import BatchSource, pad_batch


class LabelMap:
    """A fixed, sorted mapping between intent names and class ids."""

    def __init__(self, labels: list[str]):
        self.labels = list(labels)
        self.index = {label: i for i, label in enumerate(self.labels)}

    @classmethod
    def from_records(cls, records: list[Utterance]) -> "LabelMap":
        return cls(sorted({r.label for r in records}))

    def __len__(self) -> int:
        return len(self.labels)

    def to_json(self) -> dict:
        return {"labels": self.labels, "label2id": self.index}

    @classmethod
    def from_json(cls, data: dict) -> "LabelMap":
        return cls(data["labels"])


def encode_texts(tokenizer, texts: list[str], max_length: int) -> list[list[int]]:
    """Tokenize once, without padding: batches pad to their own longest item."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def intent_batches(tokenizer, records: list[Utterance], label_map: LabelMap, max_length: int,
                   batch_size: int, seed: int, group_by_length: bool = True,
                   shuffle: bool = True, per_label: int = 0) -> BatchSource:
    """A BatchSource yielding ``input_ids``, ``attention_mask`` and ``labels`` tensors;
    ``per_label`` > 1 builds batches from runs of that many utterances of one intent."""
    ids = encode_texts(tokenizer, [r.text for r in records], max_length)
    labels = [label_map.index.get(r.label, -100) for r in records]
    pad_id = tokenizer.pad_token_id or 0

    def collate(indices: list[int]) -> dict[str, torch.Tensor]:
        return pad_batch([ids[i] for i in indices], pad_id,
                         {"labels": torch.tensor([labels[i] for i in indices])})

    return BatchSource([len(x) for x in ids], batch_size, collate, seed, group_by_length, shuffle,
                       labels, per_label)
