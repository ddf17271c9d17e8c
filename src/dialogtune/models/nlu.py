"""The joint NLU model: one encoder, an intent head on the pooled sequence and a slot
head on every token, trained with one summed loss (JointBERT's recipe).

Both heads live in one module named ``classifier``: every strategy already treats
``classifier`` as the head (trained in full, never adapted by LoRA/IA3, kept trainable
by peft's sequence-classification wrapper), so all of them apply to this model as they
apply to ``IntentClassifier``, as a ``classifier`` model kind. Prompt tuning puts
virtual tokens in front of the text, so slot logits are read from the right
(``token_logits``). Built on an ``AutoModel`` encoder without ``from_pretrained`` of its
own, so tests and strategies construct it from any encoder.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.encode.slots import Alignment, SlotLabelMap, SlotPrediction, decode_spans
from ..data.encode.slots import encode_texts
from .loading import add_vocabulary, load_encoder, load_tokenizer, pool_hidden


class NluOutput(NamedTuple):
    intent_logits: torch.Tensor  # [batch, intents]
    slot_logits: torch.Tensor    # [batch, tokens (+ virtual tokens in front), slot labels]


class JointHeads(nn.Module):
    """The intent head (pooled vector) and the slot head (each token), one dropout."""

    def __init__(self, hidden_size: int, num_intents: int, num_slot_labels: int,
                 dropout: float = 0.1):
        super().__init__()
        self.dropout = nn.Dropout(dropout)
        self.intent = nn.Linear(hidden_size, num_intents)
        self.slots = nn.Linear(hidden_size, num_slot_labels)

    def forward(self, pooled: torch.Tensor, hidden: torch.Tensor) -> NluOutput:
        return NluOutput(self.intent(self.dropout(pooled)), self.slots(self.dropout(hidden)))


class JointNluModel(nn.Module):
    """Encoder + pooling (as ``IntentClassifier``) + ``JointHeads``."""

    def __init__(self, encoder: nn.Module, num_intents: int, num_slot_labels: int,
                 pooling: str = "mean", dropout: float = 0.1):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # peft reads sizes from here
        self.pooling = pooling
        self.classifier = JointHeads(encoder.config.hidden_size, num_intents, num_slot_labels,
                                     dropout)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None,
                token_type_ids=None, **_ignored) -> NluOutput:
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)
        hidden = out.last_hidden_state
        return self.classifier(pool_hidden(hidden, attention_mask, self.pooling), hidden)


def token_logits(slot_logits: torch.Tensor, length: int) -> torch.Tensor:
    """The slot logits of the last ``length`` positions: the real tokens, after any
    virtual tokens a prompt strategy put in front."""
    return slot_logits[:, slot_logits.shape[1] - length:]


def nlu_loss(label_smoothing: float = 0.0, slot_weight: float = 1.0):
    """Intent cross-entropy (with the config's label smoothing) + ``slot_weight`` × token
    cross-entropy over the labelled tokens. Slots get no smoothing: most tokens are O,
    and smoothing them would push probability onto slot labels of plain words."""
    def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        intents, slots = batch.pop("labels"), batch.pop("slot_labels")
        out = model(**batch)
        logits = token_logits(out.slot_logits, slots.shape[1])
        slot_loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), slots.reshape(-1),
                                    ignore_index=-100)
        intent_loss = F.cross_entropy(out.intent_logits, intents,
                                      label_smoothing=label_smoothing)
        return intent_loss + slot_weight * slot_loss
    return loss


def load_nlu_model(name: str, intents: list[str], slot_labels: SlotLabelMap,
                   pooling: str = "mean", dropout: float = 0.1, trust_remote_code: bool = False,
                   allow_pickle: bool = False, add_tokens: list[str] = ()
                   ) -> tuple[JointNluModel, object, str]:
    """The joint model on a pretrained encoder; the intent map goes into its config,
    ``add_tokens`` into its vocabulary (``loading.add_vocabulary``)."""
    encoder, source = load_encoder(name, trust_remote_code, allow_pickle)
    encoder.config.id2label = dict(enumerate(intents))
    encoder.config.label2id = {label: i for i, label in enumerate(intents)}
    tokenizer = add_vocabulary(encoder, load_tokenizer(source, trust_remote_code), add_tokens)
    model = JointNluModel(encoder, len(intents), len(slot_labels), pooling, dropout)
    return model, tokenizer, source


@torch.no_grad()
def nlu_probabilities(model, tokenizer, texts: list[str], max_length: int,
                      contexts: list[str | None] | None = None, batch_size: int = 32
                      ) -> tuple[np.ndarray, list[np.ndarray], list[Alignment]]:
    """Intent probabilities ``[texts, intents]``, each text's token slot probabilities
    ``[tokens, labels]`` and its Alignment (for ``decode_spans``)."""
    ids, alignments = encode_texts(tokenizer, texts, max_length, contexts)
    was_training, pad_id = model.training, tokenizer.pad_token_id or 0
    model.eval()
    intent_rows, slot_rows = [], []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        width = max(len(x) for x in chunk)
        input_ids = torch.tensor([x + [pad_id] * (width - len(x)) for x in chunk])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk])
        out = model(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device))
        intent_rows.append(out.intent_logits.float().softmax(-1).cpu().numpy())
        probs = token_logits(out.slot_logits, width).float().softmax(-1).cpu().numpy()
        slot_rows += [probs[i, :len(x)] for i, x in enumerate(chunk)]
    model.train(was_training)
    return np.concatenate(intent_rows), slot_rows, alignments


def predict_slots(model, tokenizer, texts: list[str], labels: SlotLabelMap, max_length: int,
                  contexts: list[str | None] | None = None, constrained: bool = True
                  ) -> tuple[np.ndarray, list[list[SlotPrediction]]]:
    """Intent probabilities and the decoded slots of each text (offsets into it)."""
    intents, slot_probs, alignments = nlu_probabilities(model, tokenizer, texts, max_length,
                                                        contexts)
    return intents, [decode_spans(t, p, a, labels, constrained)
                     for t, p, a in zip(texts, slot_probs, alignments)]
