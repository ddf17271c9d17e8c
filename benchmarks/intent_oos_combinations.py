"""Out-of-scope scores beyond one model's own: temperature, margins, and the top probability
combined with the nearest training utterance in the *untrained* encoder's embedding space.

Runs on a split and run kept by ``intent_oos_banking77.py --keep DIR``. Every score is
standardised on the run's validation split before scores are added, and each is cut where
it rejects 5 % of the in-scope validation turns (the default rule). Prints AUROC, recall at
exactly 5 % test rejection, and the rule's test rejection and recall. Features are cached
in ``DIR/features.npz``.

Usage: ``python benchmarks/intent_oos_combinations.py DIR`` (take the benchmark lock)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score


def pooled_and_logits(model, tokenizer, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Sentence embeddings and logits, through the predictors' own batching."""
    from dialogtune.inference.intent import batched_features, batched_rows

    pooled = batched_features(model, tokenizer, texts, 64)  # also puts the model in eval mode
    return pooled, batched_rows(lambda batch: model(**batch), tokenizer, texts, 64)


def features(keep: Path) -> dict[str, np.ndarray]:
    """Tuned and untrained embeddings of train / validation / test, tuned logits, labels."""
    from dialogtune.config import read_run_config
    from dialogtune.data.formats import read_intents
    from dialogtune.inference.intent import Predictor
    from dialogtune.models.loading import load_intent_model
    from dialogtune.tasks.intent import load_intent_data

    predictor, cfg = Predictor.from_run(keep / "run"), read_run_config(keep / "run")
    split = load_intent_data(cfg)
    sets = {"train": split.train, "val": split.validation,
            "test": read_intents(str(keep / "test.csv"), "text", "category")}
    untrained, _, _ = load_intent_model(cfg.model.name, predictor.labels.labels, cfg.model.pooling,
                                        cfg.model.dropout, add_tokens=cfg.model.add_tokens)
    out = {"is_oos": np.array([r.label not in predictor.labels.index for r in sets["test"]])}
    for name, rows in sets.items():
        texts = [r.text for r in rows]
        out[f"{name}_ft"], out[f"{name}_logits"] = pooled_and_logits(
            predictor.model, predictor.tokenizer, texts)
        out[f"{name}_pre"], _ = pooled_and_logits(untrained, predictor.tokenizer, texts)
    return out


def nearest(train: np.ndarray, x: np.ndarray, k: int = 1) -> np.ndarray:
    """Cosine similarity to the k-th nearest training utterance."""
    a = train / np.linalg.norm(train, axis=1, keepdims=True)
    b = x / np.linalg.norm(x, axis=1, keepdims=True)
    return np.sort(b @ a.T, axis=1)[:, -k]


def top_probability(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    return torch.softmax(torch.tensor(logits) / temperature, -1).max(-1).values.numpy()


def scores(f: dict[str, np.ndarray]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """(validation, test) in-scope scores, higher = more in scope."""
    def z(pair):  # standardised on validation
        val, test = pair
        return (val - val.mean()) / val.std(), (test - val.mean()) / val.std()

    def both(fn):
        return fn("val"), fn("test")

    msp = both(lambda s: top_probability(f[f"{s}_logits"]))
    out = {f"top probability, T={t}": both(lambda s, t=t: top_probability(f[f"{s}_logits"], t))
           for t in (0.5, 1, 2, 4)}
    tuned_nn = both(lambda s: nearest(f["train_ft"], f[f"{s}_ft"]))
    for k in (1, 2, 5):
        untrained_nn = z(both(lambda s, k=k: nearest(f["train_pre"], f[f"{s}_pre"], k)))
        out[f"top probability + untrained {k}-NN"] = tuple(
            a + b for a, b in zip(z(msp), untrained_nn))
    out["top probability + tuned 1-NN"] = tuple(a + b for a, b in zip(z(msp), z(tuned_nn)))
    return out


def main() -> None:
    from dialogtune.evaluate.metrics import recall_at_rejection

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("keep", type=Path)
    args = parser.parse_args()
    cache = args.keep / "features.npz"
    if not cache.exists():
        np.savez(cache, **features(args.keep))
    f = dict(np.load(cache))
    is_oos = f["is_oos"]
    print(f"{'score':<42} AUROC  recall@5%  rule: rejected  recall")
    for name, (val, test) in scores(f).items():
        cut = np.quantile(val, 0.05, method="inverted_cdf")
        print(f"{name:<42} {roc_auc_score(is_oos, -test):.4f} "
              f"{recall_at_rejection(test, is_oos, 0.05):.4f}     "
              f"{(test[~is_oos] < cut).mean():.4f}  {(test[is_oos] < cut).mean():.4f}")


if __name__ == "__main__":
    main()
