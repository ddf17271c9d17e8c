"""Which confidence score separates out-of-scope turns best, on a trained intent run?

Compares the top probability (what dialogtune flags on) with the common alternatives from
the out-of-distribution literature, all from one forward pass of the same model: max logit,
energy (logsumexp of the logits), Mahalanobis distance to the nearest intent mean of the
pooled embeddings (shared covariance, Ledoit-Wolf shrinkage), and cosine similarity to the
1st / 10th nearest training utterance. Prints the AUROC of each (out of scope = positive).

Usage, on the split of ``intent_oos_banking77.py`` (its ``write_split``, then ``dialogtune train``):
``python benchmarks/intent_oos_scores.py RUN TRAIN.csv TEST.csv``
"""

from __future__ import annotations

import argparse
import json

import numpy as np
import torch
from sklearn.covariance import LedoitWolf
from sklearn.metrics import roc_auc_score


def embeddings_and_logits(predictor, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Pooled sentence embeddings (the head's input) and logits, in input order."""
    from dialogtune.data.encode.batching import pad_batch
    from dialogtune.data.encode.intent import encode_texts

    model, captured = predictor.model, {}
    model.eval()
    hook = model.classifier.register_forward_hook(
        lambda _module, inputs, _output: captured.__setitem__("pooled", inputs[0]))
    ids = encode_texts(predictor.tokenizer, texts, predictor.config.data.max_length or 64)
    pooled, logits = [], []
    with torch.no_grad():
        for start in range(0, len(ids), 128):
            batch = pad_batch(ids[start:start + 128], predictor.tokenizer.pad_token_id or 0)
            logits.append(model(**batch).float())
            pooled.append(captured["pooled"].float())
    hook.remove()
    return torch.cat(pooled).numpy(), torch.cat(logits).numpy()


def in_scope_scores(train_x: np.ndarray, train_y: np.ndarray, test_x: np.ndarray,
                    test_logits: np.ndarray) -> dict[str, np.ndarray]:
    """Per test utterance, higher = more in scope, for each score."""
    logits = torch.tensor(test_logits)
    means = np.stack([train_x[train_y == c].mean(0) for c in range(int(train_y.max()) + 1)])
    precision = LedoitWolf().fit(train_x - means[train_y]).precision_
    distances = np.stack([np.einsum("ij,jk,ik->i", test_x - mu, precision, test_x - mu)
                          for mu in means], axis=1)
    unit_train = train_x / np.linalg.norm(train_x, axis=1, keepdims=True)
    unit_test = test_x / np.linalg.norm(test_x, axis=1, keepdims=True)
    nearest = np.sort(unit_test @ unit_train.T, axis=1)
    return {"top probability (dialogtune)": torch.softmax(logits, -1).max(-1).values.numpy(),
            "max logit": logits.max(-1).values.numpy(),
            "energy": torch.logsumexp(logits, -1).numpy(),
            "Mahalanobis": -distances.min(axis=1),
            "1-NN cosine": nearest[:, -1], "10-NN cosine": nearest[:, -10]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("train_csv")
    parser.add_argument("test_csv")
    args = parser.parse_args()
    from dialogtune.data.formats import read_intents
    from dialogtune.inference.intent import Predictor

    predictor = Predictor.from_run(args.run)
    train = read_intents(args.train_csv, "text", "category")
    test = read_intents(args.test_csv, "text", "category")
    train_x, _ = embeddings_and_logits(predictor, [r.text for r in train])
    test_x, test_logits = embeddings_and_logits(predictor, [r.text for r in test])
    train_y = np.array([predictor.labels.index[r.label] for r in train])
    is_oos = np.array([r.label not in predictor.labels.index for r in test])
    scores = in_scope_scores(train_x, train_y, test_x, test_logits)
    auroc = {name: round(float(roc_auc_score(is_oos, -s)), 4) for name, s in scores.items()}
    print(json.dumps(auroc, indent=2))


if __name__ == "__main__":
    main()
