"""Slot decoding on a trained NLU run: BIO-constrained Viterbi vs plain per-token argmax.

Scores the same run's slot predictions on a test file both ways with the scorer
``dialogtune eval`` uses, so the choice of decoder rests on a measurement. Usage:

    python benchmarks/nlu_decoding.py RUN --data ../shared/data/snips/test.jsonl
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from dialogtune.data.records import NluExample, Span
    from dialogtune.evaluate.slots import sentence_accuracy, slot_scores
    from dialogtune.inference.nlu import NluPredictor
    from dialogtune.models.nlu import predict_slots
    from dialogtune.tasks.nlu import read_nlu_records

    torch.set_num_threads(args.threads)
    predictor = NluPredictor.from_run(args.run)
    cfg = predictor.config
    records = read_nlu_records(cfg, str(args.data))
    texts = [r.text for r in records]
    results = {}
    for constrained in (True, False):
        started = time.perf_counter()
        probs, slots = predict_slots(predictor.model, predictor.tokenizer, texts,
                                     predictor.slot_labels, predictor.max_length,
                                     constrained=constrained)
        seconds = time.perf_counter() - started
        frames = [NluExample(t, predictor.labels.labels[int(p.argmax())],
                             tuple(Span(s.slot, s.start, s.end) for s in found))
                  for t, p, found in zip(texts, probs, slots)]
        name = "constrained_viterbi" if constrained else "argmax"
        results[name] = {**slot_scores(records, frames),
                         "sentence_accuracy": sentence_accuracy(records, frames),
                         "seconds": round(seconds, 2)}
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
