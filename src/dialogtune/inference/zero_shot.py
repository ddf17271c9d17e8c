"""Intent classification by a chat model with no fine-tuning: the honest baseline.

The intents are listed in the system turn (names made readable, with descriptions when
given); each label is then scored as the assistant's reply by the model's likelihood:
the log-probability of its tokens, end-of-turn included (so "card" does not win over
"card arrival" by being a prefix), minus the same for a content-free message (the
model's bias towards the label). The prompt is run once per utterance and its key/value
cache is shared by every label's continuation in one batched forward.

The predictor has the intent predictors' interface (``labels``, ``probabilities``,
``oos_threshold``), so ``evaluate.intent.evaluate_intent`` scores it with the same metrics
as a trained run.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import torch
import yaml
from tqdm.auto import tqdm

from ..data.encode.chat import IGNORE, assistant_spans, neutralize, tokenize_with_spans
from ..data.encode.intent import LabelMap
from ..errors import DialogtuneError
from ..models.devices import model_device

# Calibrating against a content-free message (domain-conditional PMI, Holtzman et al. 2021;
# contextual calibration, Zhao et al. 2021): measured on the example intents (144 test
# utterances, 18 intents, SmolLM2-135M) accuracy 0.160 against 0.076 for the mean token
# log-probability and 0.090 for the plain sum; "N/A", "" and "[MASK]" gave the same 0.160.
CONTENT_FREE = "N/A"
INSTRUCTION = ("Sort the user's message into exactly one of these intents and answer "
               "with the intent only.")


def readable(label: str) -> str:
    """``card_arrival`` → ``card arrival``: the words a model has seen."""
    return " ".join(label.replace("_", " ").replace("-", " ").split()) or label


class ZeroShotIntentPredictor:
    """Scores every label of ``labels`` as the reply of an untuned chat model."""

    oos_threshold = None  # nothing to calibrate on: out of scope is reported by AUROC etc.

    def __init__(self, model, tokenizer, labels: list[str],
                 descriptions: dict[str, str] | None = None):
        self.model, self.tokenizer = model.eval(), tokenizer
        self.labels = LabelMap(labels)
        names = [readable(label) for label in self.labels.labels]
        # two labels that read the same would be indistinguishable: keep their raw names
        self.names = names if len(set(names)) == len(names) else list(self.labels.labels)
        descriptions = descriptions or {}
        lines = [f"- {name}" + (f": {descriptions[label]}" if descriptions.get(label) else "")
                 for label, name in zip(self.labels.labels, self.names)]
        self.system = INSTRUCTION + "\n" + "\n".join(lines)

    def encode(self, text: str) -> tuple[list[int], list[list[int]]]:
        """(prompt ids, each label's reply ids) as the chat template renders them."""
        prompt, replies = None, []
        for name in self.names:
            messages = neutralize(self.tokenizer, [
                {"role": "system", "content": self.system}, {"role": "user", "content": text},
                {"role": "assistant", "content": name}])
            rendered, spans = assistant_spans(self.tokenizer, messages, [False, False, True])
            ids, labels, _ = tokenize_with_spans(self.tokenizer, rendered, spans)
            start = next(i for i, label in enumerate(labels) if label != IGNORE)
            if prompt is None:
                prompt = ids[:start]
            elif ids[:start] != prompt:
                raise ValueError("the chat template renders the prompt differently per reply")
            replies.append(ids[start:])
        return prompt or [], replies

    @torch.no_grad()
    def reply_log_probs(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        """(summed log-probability of each label's reply tokens after the prompt, their count)."""
        prompt, replies = self.encode(text)
        # logits of the prompt's last position only: the vocabulary projection is ~1/6 of
        # SmolLM2's forward FLOPs at 49k tokens
        device = model_device(self.model)
        out = self.model(input_ids=torch.tensor([prompt], device=device), use_cache=True,
                         logits_to_keep=1)
        first = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        width, count = max(map(len, replies)), len(replies)
        ids = torch.zeros(count, width, dtype=torch.long)
        mask = torch.zeros(count, width, dtype=torch.bool)
        for row, reply in enumerate(replies):
            ids[row, :len(reply)], mask[row, :len(reply)] = torch.tensor(reply), True
        ids, mask = ids.to(device), mask.to(device)
        cache = getattr(out, "cache", None) or out.past_key_values  # renamed in transformers 5
        cache.batch_repeat_interleave(count)
        attention = torch.cat([torch.ones(count, len(prompt), dtype=torch.long, device=device),
                               mask.long()], dim=1)
        positions = torch.arange(len(prompt), len(prompt) + width, device=device).expand(count, -1)
        logits = self.model(input_ids=ids, attention_mask=attention, position_ids=positions,
                            cache=cache, use_cache=True).logits.float()
        following = torch.log_softmax(logits[:, :-1], dim=-1).gather(
            2, ids[:, 1:].unsqueeze(-1)).squeeze(-1)
        total = first[ids[:, 0]] + (following * mask[:, 1:]).sum(dim=1)
        return total.cpu().numpy(), mask.sum(dim=1).cpu().numpy()

    @functools.cached_property
    def prior(self) -> np.ndarray:
        """Each label's log-probability as the reply to a content-free message: the bias
        the model has towards it whatever the user says."""
        return self.reply_log_probs(CONTENT_FREE)[0]

    def scores(self, text: str) -> np.ndarray:
        """log P(label | text) − log P(label | content-free text), summed over its tokens."""
        return self.reply_log_probs(text)[0] - self.prior

    def probabilities(self, texts: list[str]) -> np.ndarray:
        """Softmax over the labels' calibrated scores, one row per text."""
        if not texts:
            return np.zeros((0, len(self.labels)))
        shown = tqdm(texts, desc="zero-shot", unit="utterance", disable=len(texts) < 2)
        scores = np.stack([self.scores(text) for text in shown])
        scores = np.exp(scores - scores.max(axis=1, keepdims=True))
        return scores / scores.sum(axis=1, keepdims=True)


def read_descriptions(path: str | Path | None) -> dict[str, str]:
    """``label: description`` pairs from a YAML or JSON mapping (None: no descriptions)."""
    if path is None:
        return {}
    try:
        loaded = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise DialogtuneError(f"{path}: cannot read label descriptions: {error}") from error
    if not isinstance(loaded, dict) or not all(isinstance(v, str) for v in loaded.values()):
        raise DialogtuneError(f"{path}: label descriptions must map each label to a text")
    return {str(label): text for label, text in loaded.items()}


def evaluate_zero_shot(model_name: str, data: str, output: Path | None = None, policy=None,
                       descriptions: str | None = None) -> dict:
    """``dialogtune eval --zero-shot``: the untuned chat model on labelled utterances, with
    the metrics of a trained intent run (confusion matrix beside ``output``)."""
    from ..checkpoint import write_json_atomic
    from ..data.formats import read_intents
    from ..evaluate.intent import evaluate_intent
    from ..models.lm import load_lm
    from ..models.loading import LoadPolicy

    policy = policy or LoadPolicy()
    records = read_intents(data, require_labels=1)
    model, tokenizer, source = load_lm(model_name, policy.trust_remote_code,
                                       policy.allow_pickle)
    predictor = ZeroShotIntentPredictor(model, tokenizer, sorted({r.label for r in records}),
                                        read_descriptions(descriptions))
    metrics = evaluate_intent(predictor, records, Path(output).parent if output else None)
    metrics.update(zero_shot={"model": model_name, "model_source": source,
                              "labels": len(predictor.labels), "prompt": predictor.system})
    if output:
        write_json_atomic(metrics, Path(output))
    return metrics
