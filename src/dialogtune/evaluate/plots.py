"""Plots people would rather see than read: training curves and confusion matrices (PNG)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: no display on servers and CI
    import matplotlib.pyplot as plt

    return plt


def plot_training_curves(log_path: Path, out_path: Path, metric: str = "accuracy") -> Path | None:
    """Loss per logged step and the validation metric per epoch, from ``train_log.jsonl``."""
    if not log_path.exists():
        return None
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.strip()]
    steps = [(r["step"], r["loss"]) for r in records if "loss" in r]
    evals = [(r["step"], r["eval"]) for r in records if "eval" in r]
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    if steps:
        ax.plot(*zip(*steps), label="training loss", color="tab:blue")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    if evals and any(metric in e for _, e in evals):
        right = ax.twinx()
        points = [(s, e[metric]) for s, e in evals if metric in e]
        right.plot(*zip(*points), "o-", color="tab:orange", label=f"validation {metric}")
        right.set_ylabel(f"validation {metric}")
        right.legend(loc="center right")
    ax.legend(loc="upper right")
    ax.set_title("Training")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110)
    plt.close(fig)
    return out_path


def plot_confusion_matrix(matrix: np.ndarray, labels: list[str], out_path: Path) -> Path:
    """Row-normalised confusion matrix; size and font scale so 77 intents stay legible."""
    plt = _pyplot()
    n = len(labels)
    size = max(6.0, 0.22 * n + 3)
    font = 9 if n <= 20 else max(4.5, 9 - n / 20)
    rows = matrix.sum(axis=1, keepdims=True).clip(min=1)
    fig, ax = plt.subplots(figsize=(size, size))
    image = ax.imshow(matrix / rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=90, fontsize=font)
    ax.set_yticks(range(n), labels, fontsize=font)
    ax.set_xlabel("predicted intent")
    ax.set_ylabel("true intent")
    if n <= 25:
        for i in range(n):
            for j in range(n):
                if matrix[i, j]:
                    ax.text(j, i, int(matrix[i, j]), ha="center", va="center", fontsize=font,
                            color="white" if matrix[i, j] / rows[i, 0] > 0.5 else "black")
    fig.colorbar(image, ax=ax, fraction=0.03, label="share of the true intent")
    ax.set_title("Confusion matrix (rows normalised)")
    fig.tight_layout()
    fig.savefig(out_path, dpi=110 if n <= 40 else 160)  # small labels need pixels
    plt.close(fig)
    return out_path
