"""Which words made a classifier (intent or NLU run) predict its intent.

Two methods, both attributing the *probability* of the target intent (so a word's score
reads "this word adds 0.3 to P(card_lost)"):

- ``ig``: integrated gradients (captum's ``LayerIntegratedGradients``) over the input
  embedding layer, from a baseline where every text token is [PAD] and the special tokens
  ([CLS]/[SEP]) are kept. Token scores sum to P(x) − P(baseline) up to the reported
  convergence ``delta``.
- ``occlusion``: each word (and, for the token view, each token) is deleted from the
  sequence and the drop in the target's probability is its score. Deleting rather than
  replacing by [PAD] (captum's ``FeatureAblation``) is what the faithfulness measure
  (ERASER's comprehensiveness) does, and a mean-pooled encoder still reads an attended [PAD].

Words are the units of ``data.encode.slots`` (a run of letters/digits, or one other
character), mapped back to character spans of the text as given, so accents, emoji and
CJK text keep their original characters. A word's score is the sum of its tokens'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ...data.encode.slots import Alignment, encode_texts

# 50 steps: |convergence delta| on the 144 example test utterances averaged 6e-5 and was at
# most 1.5e-3 of probability (benchmarks/RESULTS.md, "Explanations")
IG_STEPS = 50


@dataclass
class Encoded:
    """One text as the classifier reads it: ids, which ids are text tokens, its words."""

    text: str
    ids: list[int]
    text_positions: list[int]           # indices of the non-special tokens, in order
    alignment: Alignment

    @classmethod
    def of(cls, tokenizer, text: str, max_length: int) -> "Encoded":
        ids, alignments = encode_texts(tokenizer, [text], max_length)
        special = tokenizer.get_special_tokens_mask(ids[0], already_has_special_tokens=True)
        unknown = tokenizer.unk_token_id  # a special token that stands for text
        positions = [i for i, (flag, token) in enumerate(zip(special, ids[0]))
                     if not flag or token == unknown]
        return cls(text, ids[0], positions, alignments[0])

    def word_tokens(self) -> list[list[int]]:
        """Token indices of each word (unit): its first token up to the next unit's."""
        bounds = self.alignment.unit_starts + [max(self.text_positions, default=-1) + 1]
        return [[i for i in range(a, b) if i in self.text_positions]
                for a, b in zip(bounds, bounds[1:])]

    def words(self) -> list[dict]:
        return [{"word": self.text[start:end], "start": start, "end": end}
                for start, end in self.alignment.unit_spans()]

    def without(self, positions: set[int]) -> list[int]:
        return [t for i, t in enumerate(self.ids) if i not in positions]


def intent_logits(output) -> torch.Tensor:
    """The intent logits of a classifier's output (a tensor, or the NLU model's pair)."""
    return getattr(output, "intent_logits", output)


def _probabilities(model, input_ids: torch.Tensor, attention_mask: torch.Tensor):
    return torch.softmax(intent_logits(model(input_ids=input_ids,
                                             attention_mask=attention_mask)).float(), dim=-1)


@torch.no_grad()
def probabilities_of(model, rows: list[list[int]], pad_id: int) -> np.ndarray:
    """Intent probabilities of several id sequences, padded into one batch."""
    width = max(len(r) for r in rows)
    ids = torch.tensor([r + [pad_id] * (width - len(r)) for r in rows])
    mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in rows])
    return _probabilities(model, ids.to(model.device), mask.to(model.device)).cpu().numpy()


def integrated_gradients(model, encoded: Encoded, target: int, pad_id: int,
                         steps: int = IG_STEPS) -> tuple[np.ndarray, dict]:
    """Per-token IG scores (0 on special tokens) and the check of completeness:
    ``{"steps", "delta", "probability", "baseline_probability"}``."""
    from captum.attr import LayerIntegratedGradients

    ids = torch.tensor([encoded.ids], device=model.device)
    baseline = ids.clone()
    baseline[0, encoded.text_positions] = pad_id
    mask = torch.ones_like(ids)
    layer = model.get_input_embeddings()
    explainer = LayerIntegratedGradients(_probabilities_forward(model), layer)
    was_training = model.training
    model.eval()
    scores, delta = explainer.attribute(ids, baselines=baseline, target=target,
                                        additional_forward_args=(mask,), n_steps=steps,
                                        internal_batch_size=steps,
                                        return_convergence_delta=True)
    model.train(was_training)
    ends = probabilities_of(model, [encoded.ids, baseline[0].tolist()], pad_id)[:, target]
    check = {"steps": steps, "delta": float(delta.abs().max()),
             "probability": float(ends[0]), "baseline_probability": float(ends[1])}
    return scores.sum(-1)[0].detach().float().cpu().numpy(), check


def _probabilities_forward(model):
    def forward(input_ids, attention_mask):
        return _probabilities(model, input_ids, attention_mask)
    return forward


def deletion_drops(model, encoded: Encoded, target: int, pad_id: int,
                   groups: list[list[int]]) -> np.ndarray:
    """P(target | text) − P(target | text without each group of tokens), one forward."""
    if not groups:
        return np.zeros(0)
    rows = [encoded.ids] + [encoded.without(set(group)) for group in groups]
    probs = probabilities_of(model, rows, pad_id)[:, target]
    return probs[0] - probs[1:]


def occlusion(model, encoded: Encoded, target: int, pad_id: int
              ) -> tuple[np.ndarray, np.ndarray]:
    """(per-token scores, per-word scores): the drop when each is deleted alone."""
    tokens = np.zeros(len(encoded.ids))
    tokens[encoded.text_positions] = deletion_drops(
        model, encoded, target, pad_id, [[i] for i in encoded.text_positions])
    return tokens, deletion_drops(model, encoded, target, pad_id, encoded.word_tokens())


def word_scores(encoded: Encoded, token_scores: np.ndarray) -> np.ndarray:
    """Each word's score: the sum of its tokens'."""
    return np.array([float(token_scores[group].sum()) for group in encoded.word_tokens()])


def attribute(model, encoded: Encoded, target: int, pad_id: int, method: str
              ) -> tuple[np.ndarray, np.ndarray, dict]:
    """(token scores, word scores, method details) by ``ig`` or ``occlusion``."""
    if method == "ig":
        tokens, check = integrated_gradients(model, encoded, target, pad_id)
        return tokens, word_scores(encoded, tokens), check
    tokens, words = occlusion(model, encoded, target, pad_id)
    return tokens, words, {}


def top_word_tokens(encoded: Encoded, scores: np.ndarray, k: int) -> set[int]:
    """The tokens of the ``k`` highest-scoring words (ties: the earlier word)."""
    groups = encoded.word_tokens()
    order = sorted(range(len(groups)), key=lambda w: (-scores[w], w))[:k]
    return {i for w in order for i in groups[w]}


def faithfulness(model, encoded: Encoded, target: int, pad_id: int, scores: np.ndarray,
                 ks: tuple[int, ...] = (1, 2, 3)) -> dict[str, list[float]]:
    """ERASER's measures of word ``scores`` at each k: ``comprehensiveness`` (the drop in
    P(target) when the top-k words are deleted: higher is more faithful) and
    ``sufficiency`` (the drop when only they are kept: lower is more faithful)."""
    everything = set(encoded.text_positions)
    deleted = [sorted(top_word_tokens(encoded, scores, k)) for k in ks]
    kept = [sorted(everything - set(group)) for group in deleted]
    drops = deletion_drops(model, encoded, target, pad_id, deleted + kept)
    return {"comprehensiveness": [float(d) for d in drops[:len(ks)]],
            "sufficiency": [float(d) for d in drops[len(ks):]]}
