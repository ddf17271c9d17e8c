"""How faithful are ``dialogtune explain``'s word attributions? IG against occlusion.

For each utterance of a test file, the trained intent run explains its predicted intent
with each method; the words each method ranks highest are then deleted (ERASER's
*comprehensiveness*: the drop in the predicted intent's probability, higher = more
faithful) or kept alone (*sufficiency*: the drop when only they remain, lower = more
faithful), at k = 1, 2, 3 words. A seeded random ranking is the floor. Occlusion scores
each word by deleting it alone, so at k = 1 its comprehensiveness is optimal by
construction; k = 2, 3 and sufficiency are the fairer comparison. Also reported: IG's
convergence delta (completeness error) and the seconds per utterance of each method.

Usage: ``python benchmarks/explain_faithfulness.py RUN [--data examples/intents_test.csv]
[--limit N] [--json out.json]``
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from machine import machine  # noqa: E402

from dialogtune.data.formats import read_intents  # noqa: E402
from dialogtune.inference.explain.attribution import (Encoded, attribute,  # noqa: E402
                                                      faithfulness, probabilities_of)
from dialogtune.inference.intent import load_classifier  # noqa: E402

KS = (1, 2, 3)
METHODS = ("ig", "occlusion", "random")


def scores_of(model, encoded: Encoded, target: int, pad_id: int, method: str,
              rng: np.random.Generator) -> tuple[np.ndarray, dict]:
    """(word scores, the method's details: IG's convergence check)."""
    if method == "random":
        return rng.random(len(encoded.word_tokens())), {}
    _, words, details = attribute(model, encoded, target, pad_id, method)
    return words, details


def measure(run: str, texts: list[str], seed: int = 0) -> dict:
    """Per method: mean comprehensiveness and sufficiency at each k, seconds per text."""
    predictor = load_classifier(run)
    model, tokenizer = predictor.model, predictor.tokenizer
    pad_id, max_length = tokenizer.pad_token_id or 0, predictor.config.data.max_length or 64
    rng = np.random.default_rng(seed)
    found = {m: {"comprehensiveness": [], "sufficiency": [], "seconds": []} for m in METHODS}
    deltas, words = [], []
    for number, text in enumerate(texts, 1):
        encoded = Encoded.of(tokenizer, text, max_length)
        target = int(probabilities_of(model, [encoded.ids], pad_id)[0].argmax())
        words.append(len(encoded.word_tokens()))
        for method in METHODS:
            started = time.perf_counter()
            scores, details = scores_of(model, encoded, target, pad_id, method, rng)
            found[method]["seconds"].append(time.perf_counter() - started)
            if "delta" in details:
                deltas.append(details["delta"])
            measured = faithfulness(model, encoded, target, pad_id, scores, KS)
            for key, values in measured.items():
                found[method][key].append(values)
        if number % 20 == 0:
            print(f"{number}/{len(texts)}", file=sys.stderr, flush=True)
    return {"utterances": len(texts), "mean_words": statistics.mean(words), "ks": list(KS),
            "methods": {m: summarize(v) for m, v in found.items()},
            "ig_minus_occlusion": paired(found["ig"], found["occlusion"]),
            "ig_delta": {"mean": statistics.mean(deltas), "max": max(deltas)}}


def paired(first: dict, second: dict) -> dict:
    """Mean per-utterance difference of each AOPC (first − second) and its standard error:
    whether one method is *measurably* more faithful on these utterances."""
    out = {}
    for key in ("comprehensiveness", "sufficiency"):
        diff = np.mean(first[key], axis=1) - np.mean(second[key], axis=1)
        out[key + "_aopc"] = {"mean": round(float(diff.mean()), 4),
                              "standard_error": round(float(diff.std(ddof=1)
                                                            / np.sqrt(len(diff))), 4)}
    return out


def summarize(values: dict) -> dict:
    return {"comprehensiveness": np.mean(values["comprehensiveness"], axis=0).round(4).tolist(),
            "sufficiency": np.mean(values["sufficiency"], axis=0).round(4).tolist(),
            "comprehensiveness_aopc": round(float(np.mean(values["comprehensiveness"])), 4),
            "sufficiency_aopc": round(float(np.mean(values["sufficiency"])), 4),
            "seconds_per_utterance": round(statistics.mean(values["seconds"]), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run")
    parser.add_argument("--data", default="examples/intents_test.csv")
    parser.add_argument("--limit", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    texts = [r.text for r in read_intents(args.data, require_labels=1)][:args.limit]
    threads = torch.get_num_threads()
    results = {"machine": machine(threads), "run": args.run, "data": args.data,
               **measure(args.run, texts)}
    print(json.dumps(results, indent=2))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
