"""The files of a run directory, in one place so every module agrees on them."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

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
        if any((self.path / name).exists() for name in ("checkpoint", "checkpoint.old")) \
                or self.weights.exists():
            raise DialogtuneError(f"{self.path} already holds a run; pass --resume to continue "
                                  "it, or choose another --output")
