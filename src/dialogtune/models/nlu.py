"""The joint NLU model: one encoder, an intent head on the pooled sequence and a slot
head on every token, trained with one summed loss (JointBERT's recipe).

Both heads live in one module named ``classifier``: every strategy already treats
``classifier`` as the head (trained in full, never adapted by LoRA/IA3, kept trainable
by peft's sequence-classification wrapper), so all of them apply to this model as they
apply to ``IntentClassifier``, as a ``classifier`` model kind. Prompt tuning puts
virtual tokens in front of the text, so slot logits are read from the right
(``token_logits``). With ``slot_decoder="crf"`` the slot head's logits are a CRF's
emissions (``slot_crf.BioCrf``, inside ``classifier`` too, so every strategy trains and
saves it). The heads compute the slot loss themselves, given the labels through
``forward``: a strategy's wrapper passes them on, and its trained copy of the head (peft's
``modules_to_save``) is the one that scores them. Built on an ``AutoModel`` encoder
without ``from_pretrained`` of its own, so tests and strategies construct it from any
encoder.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..data.encode.slots import IGNORE, Alignment, SlotLabelMap, SlotPrediction, decode_spans
from ..data.encode.slots import encode_texts
from .devices import on_model_device
from .loading import add_vocabulary, load_encoder, load_tokenizer, pool_hidden
from .slot_crf import BioCrf

SLOT_DECODERS = ("softmax", "crf")


class NluOutput(NamedTuple):
    intent_logits: torch.Tensor  # [batch, intents]
    slot_logits: torch.Tensor    # [batch, tokens (+ virtual tokens in front), slot labels]
    slot_loss: torch.Tensor | None = None  # when the slot labels were given


class JointHeads(nn.Module):
    """The intent head (pooled vector) and the slot head (each token), one dropout; with
    ``decoder="crf"`` a CRF over the slot logits (``crf``, else None)."""

    def __init__(self, hidden_size: int, num_intents: int, slot_labels: SlotLabelMap,
                 dropout: float = 0.1, decoder: str = "softmax"):
        super().__init__()
        if decoder not in SLOT_DECODERS:
            raise ValueError(f"slot decoder {decoder!r}: expected one of {SLOT_DECODERS}")
        self.dropout = nn.Dropout(dropout)
        self.intent = nn.Linear(hidden_size, num_intents)
        self.slots = nn.Linear(hidden_size, len(slot_labels))
        self.crf = BioCrf(slot_labels) if decoder == "crf" else None

    def forward(self, pooled: torch.Tensor, hidden: torch.Tensor,
                slot_labels: torch.Tensor | None = None) -> NluOutput:
        out = NluOutput(self.intent(self.dropout(pooled)), self.slots(self.dropout(hidden)))
        if slot_labels is None:
            return out
        return out._replace(slot_loss=self.slot_loss(out.slot_logits, slot_labels))

    def slot_loss(self, slot_logits: torch.Tensor, slot_labels: torch.Tensor) -> torch.Tensor:
        """Token cross-entropy over the labelled tokens, or the CRF's negative
        log-likelihood of their sequence (the same per-position scale)."""
        logits = token_logits(slot_logits, slot_labels.shape[1])
        if self.crf is not None:
            return self.crf.loss(logits, slot_labels)
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), slot_labels.reshape(-1),
                               ignore_index=IGNORE)


class JointNluModel(nn.Module):
    """Encoder + pooling (as ``IntentClassifier``) + ``JointHeads``."""

    def __init__(self, encoder: nn.Module, num_intents: int, slot_labels: SlotLabelMap,
                 pooling: str = "mean", dropout: float = 0.1, slot_decoder: str = "softmax"):
        super().__init__()
        self.encoder = encoder
        self.config = encoder.config  # peft reads sizes from here
        self.pooling = pooling
        self.classifier = JointHeads(encoder.config.hidden_size, num_intents, slot_labels,
                                     dropout, slot_decoder)

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    def get_input_embeddings(self) -> nn.Module:
        return self.encoder.get_input_embeddings()

    def forward(self, input_ids=None, attention_mask=None, inputs_embeds=None,
                token_type_ids=None, slot_labels=None, **_ignored) -> NluOutput:
        """Both heads' logits; with ``slot_labels`` (of the real tokens) the slot loss."""
        out = self.encoder(input_ids=input_ids, attention_mask=attention_mask,
                           inputs_embeds=inputs_embeds, token_type_ids=token_type_ids)
        hidden = out.last_hidden_state
        return self.classifier(pool_hidden(hidden, attention_mask, self.pooling), hidden,
                               slot_labels)


def token_logits(slot_logits: torch.Tensor, length: int) -> torch.Tensor:
    """The slot logits of the last ``length`` positions: the real tokens, after any
    virtual tokens a prompt strategy put in front."""
    return slot_logits[:, slot_logits.shape[1] - length:]


def nlu_loss(label_smoothing: float = 0.0, slot_weight: float = 1.0):
    """Intent cross-entropy (with the config's label smoothing) + ``slot_weight`` × the
    slot head's loss over the labelled tokens (``JointHeads.slot_loss``). Slots get no
    smoothing: most tokens are O, and smoothing them would push probability onto slot
    labels of plain words."""
    def loss(model, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        intents = batch.pop("labels")
        out = model(**batch)  # batch["slot_labels"]: the head computes its slot loss
        intent_loss = F.cross_entropy(out.intent_logits, intents,
                                      label_smoothing=label_smoothing)
        return intent_loss + slot_weight * out.slot_loss
    return loss


def load_nlu_model(name: str, intents: list[str], slot_labels: SlotLabelMap,
                   pooling: str = "mean", dropout: float = 0.1, trust_remote_code: bool = False,
                   allow_pickle: bool = False, add_tokens: list[str] = (),
                   slot_decoder: str = "softmax") -> tuple[JointNluModel, object, str]:
    """The joint model on a pretrained encoder; the intent map goes into its config,
    ``add_tokens`` into its vocabulary (``loading.add_vocabulary``)."""
    encoder, source = load_encoder(name, trust_remote_code, allow_pickle)
    encoder.config.id2label = dict(enumerate(intents))
    encoder.config.label2id = {label: i for i, label in enumerate(intents)}
    tokenizer = add_vocabulary(encoder, load_tokenizer(source, trust_remote_code), add_tokens)
    model = JointNluModel(encoder, len(intents), slot_labels, pooling, dropout, slot_decoder)
    return model, tokenizer, source


def slot_crf(model: nn.Module) -> BioCrf | None:
    """The CRF of a joint model, or None (softmax head). peft's wrappers hand attribute
    reads on to the trained copy of ``classifier``."""
    return getattr(model.classifier, "crf", None)


class NluRead(NamedTuple):
    intents: np.ndarray             # intent probabilities [texts, intents]
    slot_probs: list[np.ndarray]    # per text: token slot probabilities [tokens, labels]
    alignments: list[Alignment]     # per text: for decode_spans
    paths: list[list[int]] | None   # per text: the CRF's label path over its units


@torch.no_grad()
def read_nlu(model, tokenizer, texts: list[str], max_length: int,
             contexts: list[str | None] | None = None, batch_size: int = 32,
             decode: bool = True) -> NluRead:
    """One forward pass over ``texts`` in batches; a CRF model also decodes each text's
    label path (unless ``decode`` is off: intents only)."""
    ids, alignments = encode_texts(tokenizer, texts, max_length, contexts)
    crf = slot_crf(model) if decode else None
    was_training, pad_id = model.training, tokenizer.pad_token_id or 0
    model.eval()
    intent_rows, slot_rows, paths = [], [], []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start:start + batch_size]
        width = max(len(x) for x in chunk)
        input_ids = torch.tensor([x + [pad_id] * (width - len(x)) for x in chunk])
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in chunk])
        out = model(**on_model_device({"input_ids": input_ids, "attention_mask": mask}, model))
        intent_rows.append(out.intent_logits.float().softmax(-1).cpu().numpy())
        logits = token_logits(out.slot_logits, width).float()
        probs = logits.softmax(-1).cpu().numpy()
        slot_rows += [probs[i, :len(x)] for i, x in enumerate(chunk)]
        if crf is not None:
            paths += crf.decode(logits, [a.unit_starts
                                         for a in alignments[start:start + batch_size]])
    model.train(was_training)
    return NluRead(np.concatenate(intent_rows), slot_rows, alignments,
                   paths if crf is not None else None)


def nlu_probabilities(model, tokenizer, texts: list[str], max_length: int,
                      contexts: list[str | None] | None = None, batch_size: int = 32
                      ) -> tuple[np.ndarray, list[np.ndarray], list[Alignment]]:
    """Intent probabilities ``[texts, intents]``, each text's token slot probabilities
    ``[tokens, labels]`` and its Alignment (for ``decode_spans``)."""
    read = read_nlu(model, tokenizer, texts, max_length, contexts, batch_size, decode=False)
    return read.intents, read.slot_probs, read.alignments


def predict_slots(model, tokenizer, texts: list[str], labels: SlotLabelMap, max_length: int,
                  contexts: list[str | None] | None = None, constrained: bool = True
                  ) -> tuple[np.ndarray, list[list[SlotPrediction]]]:
    """Intent probabilities and the decoded slots of each text (offsets into it). A CRF
    model decodes with its own Viterbi (always valid BIO; ``constrained`` is not read);
    a span's confidence is then its units' lowest softmax probability of the emissions."""
    read = read_nlu(model, tokenizer, texts, max_length, contexts)
    paths = read.paths or [None] * len(texts)
    return read.intents, [decode_spans(t, p, a, labels, constrained, path)
                          for t, p, a, path in zip(texts, read.slot_probs, read.alignments,
                                                   paths)]
