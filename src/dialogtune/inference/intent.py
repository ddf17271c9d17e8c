"""Load a trained run once and answer requests: used by the CLI, the server and the tests."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..checkpoint import load_trainable
from ..config import RunConfig, read_run_config
from ..data.encode.intent import LabelMap, encode_texts
from ..data.encode.batching import pad_batch
from ..errors import DialogtuneError
from ..models.devices import on_model_device
from ..models.loading import LoadPolicy, load_intent_model
from ..runs.layout import ExportDir, RunDir
from ..strategies import CLASSIFIER, apply_strategy


@torch.no_grad()
def batched_rows(compute, tokenizer, texts: list[str], max_length: int,
                 batch_size: int = 64) -> np.ndarray:
    """``compute(batch)`` for ``texts``, one row per text in input order, batched by length
    to avoid padding work."""
    ids = encode_texts(tokenizer, texts, max_length)
    order = sorted(range(len(ids)), key=lambda i: len(ids[i]))
    out = np.zeros((len(ids), 0), dtype=np.float32)
    rows: dict[int, np.ndarray] = {}
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(order), batch_size):
        chunk = order[start:start + batch_size]
        batch = pad_batch([ids[i] for i in chunk], pad_id)
        rows.update(zip(chunk, compute(batch).float().cpu().numpy()))
    if rows:
        out = np.stack([rows[i] for i in range(len(ids))])
    return out


def batched_probabilities(model: nn.Module, tokenizer, texts: list[str], max_length: int,
                          batch_size: int = 64) -> np.ndarray:
    """Class probabilities for ``texts``."""
    model.eval()
    return batched_rows(lambda batch: torch.softmax(model(**on_model_device(batch, model)).float(),
                                                      dim=-1),
                        tokenizer, texts, max_length, batch_size)


def batched_features(model: nn.Module, tokenizer, texts: list[str], max_length: int,
                     batch_size: int = 64) -> np.ndarray:
    """The intent model's pooled sentence embeddings (its head's input) for ``texts``."""
    model.eval()
    return batched_rows(lambda batch: model(**on_model_device(batch, model), return_features=True)[1],
                        tokenizer, texts, max_length, batch_size)


class Predictor:
    """A trained intent run, ready to classify. Build with :meth:`from_run`."""

    def __init__(self, model: nn.Module, tokenizer, labels: LabelMap, config: RunConfig,
                 oos_threshold: float | None = None):
        self.model, self.tokenizer, self.labels, self.config = model, tokenizer, labels, config
        self.oos_threshold = oos_threshold
        self.model.eval()

    @classmethod
    def from_run(cls, run_dir: str | Path, policy: LoadPolicy | None = None) -> "Predictor":
        """Load a trained run; ``policy`` (the command line's, default: safe) grants remote
        code or pickle weights, never the run's own config."""
        run = RunDir(Path(run_dir)).require_trained()
        cfg = read_run_config(run.path)
        policy = (policy or LoadPolicy()).for_run(cfg, run.path)
        labels = LabelMap.from_json(run.read_json(run.label_map))
        model, tokenizer, _ = load_intent_model(cfg.model.name, labels.labels, cfg.model.pooling,
                                                cfg.model.dropout, policy.trust_remote_code,
                                                policy.allow_pickle, cfg.model.add_tokens,
                                                cfg.model.head)
        model = apply_strategy(model, cfg.strategy, CLASSIFIER)
        load_trainable(model, run.weights)
        summary = run.read_json(run.summary) if run.summary.exists() else {}
        return cls(model, tokenizer, labels, cfg, summary.get("oos_threshold"))

    def probabilities(self, texts: list[str]) -> np.ndarray:
        return batched_probabilities(self.model, self.tokenizer, texts,
                                     self.config.data.max_length or 64)

    def classify(self, texts: list[str], top_k: int = 3) -> list[dict]:
        """Ranked intents per text, with ``out_of_scope`` when confidence is below threshold."""
        started = time.perf_counter()
        probs = self.probabilities(texts)
        elapsed_ms = (time.perf_counter() - started) * 1000 / max(1, len(texts))
        return self.rank(texts, probs, top_k, elapsed_ms)

    def rank(self, texts: list[str], probs: np.ndarray, top_k: int,
             elapsed_ms: float) -> list[dict]:
        """``classify``'s results for already computed probabilities."""
        results = []
        for text, row in zip(texts, probs):
            best = np.argsort(-row)[:top_k]
            ranked = [{"intent": self.labels.labels[i], "probability": float(row[i])}
                      for i in best]
            oos = self.oos_threshold is not None and ranked[0]["probability"] < self.oos_threshold
            results.append({"text": text, "intents": ranked, "out_of_scope": bool(oos),
                            "latency_ms": elapsed_ms})
        return results


def predict_texts(run: str | Path, texts: list[str], file: str | Path | None = None,
                  top_k: int = 3, policy: LoadPolicy | None = None,
                  backend: str = "torch") -> list[dict]:
    """``dialogtune predict``: the top-k intents of each text and of each line of ``file``
    (``backend``: as for :func:`load_classifier`)."""
    from ..data.files import read_text

    items = list(texts or [])
    if file is not None:
        items += [line.strip() for line in read_text(file).splitlines() if line.strip()]
    if not items:
        raise DialogtuneError("nothing to classify: give TEXT arguments or --file")
    return load_classifier(run, policy, backend).classify(items, top_k)


def load_classifier(run: str | Path, policy=None, backend: str = "torch"):
    """The predictor of a trained intent or NLU run (its task's ``load_predictor``): what
    ``predict``, ``eval`` and the server's ``--intent`` load. ``backend="onnx"``: the same
    predictor on the run's ONNX export (``inference.onnx``). Other runs are refused in one
    line."""
    from ..tasks import get_task  # the registry only: inference never imports a task
    from .onnx import check_backend, load_onnx_predictor

    if check_backend(backend) == "onnx":  # it finds the export (RUN, or RUN/onnx) itself
        return load_onnx_predictor(run)
    if ExportDir(Path(run)).is_export():
        raise DialogtuneError(f"{run}: an ONNX export, not a run; read it with --backend onnx")
    task = get_task(read_run_config(RunDir(Path(run)).require_trained().path).task)
    if task.model_kind != CLASSIFIER:
        raise DialogtuneError(f"{run}: a {task.name} run, not an intent or NLU run")
    return task.load_predictor(run, policy)
