"""The files of a run directory, in one place so every module agrees on them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

from ..errors import DialogtuneError


@dataclass(frozen=True)
class RunDir:
    path: Path

    @property
    def config(self) -> Path:
        return self.path / "config.yaml"

    @property
    def label_map(self) -> Path:
        return self.path / "label_map.json"

    @property
    def slot_labels(self) -> Path:
        return self.path / "slot_labels.json"

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    @property
    def log(self) -> Path:
        return self.path / "train_log.jsonl"

    @property
    def curves(self) -> Path:
        return self.path / "training_curves.png"

    @property
    def summary(self) -> Path:
        return self.path / "run.json"

    @property
    def base_config(self) -> Path:
        """The model's own ``config.json`` (id2label / label2id), as save_pretrained writes."""
        return self.path / "config.json"

    @property
    def best(self) -> Path:
        """The trainable weights of the best epoch so far (restored when training ends)."""
        return self.path / "best.safetensors"

    @property
    def checkpoint(self) -> "CheckpointDir":
        return CheckpointDir(self.path / "checkpoint")

    @property
    def onnx(self) -> "ExportDir":
        """Where ``--backend onnx`` looks for an ONNX export inside a run folder."""
        return ExportDir(self.path / "onnx")

    @property
    def eval(self) -> "EvalDir":
        """Where ``dialogtune eval`` writes by default."""
        return EvalDir(self.path / "eval")

    def is_run(self) -> bool:
        return self.config.exists()

    def require_trained(self) -> "RunDir":
        if not self.config.exists():
            raise DialogtuneError(f"{self.path}: not a dialogtune run (no config.yaml)")
        if not self.weights.exists():
            raise DialogtuneError(f"{self.path}: training has not finished (no "
                                  f"{self.weights.name}); resume it with --resume")
        return self

    def read_json(self, path: Path) -> dict:
        return json.loads(path.read_text(encoding="utf-8"))

    def check_fresh(self) -> None:
        """Refuse to overwrite a previous run's results silently."""
        checkpoint = self.checkpoint
        if checkpoint.path.exists() or checkpoint.previous.path.exists() \
                or self.weights.exists():
            raise DialogtuneError(f"{self.path} already holds a run; pass --resume to continue "
                                  "it, or choose another --output")


@dataclass(frozen=True)
class EvalDir:
    """The files an evaluation writes: metrics and, for intents, the confusion matrix."""
    path: Path

    @property
    def metrics(self) -> Path:
        return self.path / "metrics.json"

    def named_metrics(self, name: str) -> Path:
        """``tuned_metrics.json`` / ``base_metrics.json`` of a chat evaluation."""
        return self.path / f"{name}_metrics.json"

    @property
    def confusion_json(self) -> Path:
        return self.path / "confusion_matrix.json"

    @property
    def confusion_png(self) -> Path:
        return self.path / "confusion_matrix.png"


@dataclass(frozen=True)
class ExportDir:
    """An ONNX export (``dialogtune export RUN --format onnx``): the graph, its manifest
    and the CRF's transitions (NLU runs with a CRF); the run files a predictor reads
    (config, label maps, summary, tokenizer) keep their ``RunDir`` names beside them."""
    path: Path

    @property
    def model(self) -> Path:
        return self.path / "model.onnx"

    @property
    def manifest(self) -> Path:
        """Written last: its presence marks a finished export."""
        return self.path / "dialogtune_export.json"

    @property
    def crf(self) -> Path:
        return self.path / "crf.safetensors"

    @property
    def files(self) -> RunDir:
        """The run files copied beside the graph, under their run names."""
        return RunDir(self.path)

    def is_export(self) -> bool:
        return self.manifest.exists() and self.model.exists()


@dataclass(frozen=True)
class CheckpointDir:
    """One checkpoint folder; the manifest, written last, lists the others with checksums."""
    path: Path
    MANIFEST: ClassVar[str] = "manifest.json"
    STATE: ClassVar[str] = "state.json"

    @property
    def weights(self) -> Path:
        return self.path / "model.safetensors"

    @property
    def optimizer(self) -> Path:
        return self.path / "optimizer.safetensors"

    @property
    def state(self) -> Path:
        return self.path / self.STATE

    @property
    def manifest(self) -> Path:
        return self.path / self.MANIFEST

    @property
    def previous(self) -> "CheckpointDir":
        """The checkpoint this one replaced (``checkpoint.old``): the fallback."""
        return CheckpointDir(self.path.with_name(self.path.name + ".old"))
