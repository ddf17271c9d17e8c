"""Slot decoding on a trained NLU run: BIO-constrained Viterbi vs plain per-token argmax.

Scores the same run's slot predictions on a test file both ways with the scorer
``dialogtune eval`` uses, so the choice of decoder rests on a measurement. A run trained
with a CRF (``model.slot_decoder=crf``) gets a third row, its own Viterbi (``crf``); the
other two then decode the CRF's emissions without its transitions. One forward pass
feeds every row; ``seconds`` is the forward plus that row's decoding. Usage:

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

    from dialogtune.data.encode.slots import decode_spans
    from dialogtune.data.records import NluExample, Span
    from dialogtune.evaluate.slots import sentence_accuracy, slot_scores
    from dialogtune.inference.nlu import NluPredictor
    from dialogtune.models.nlu import read_nlu
    from dialogtune.tasks.nlu import read_nlu_records

    torch.set_num_threads(args.threads)
    predictor = NluPredictor.from_run(args.run)
    records = read_nlu_records(predictor.config, str(args.data))
    texts = [r.text for r in records]
    started = time.perf_counter()
    read = read_nlu(predictor.model, predictor.tokenizer, texts, predictor.max_length)
    forward = time.perf_counter() - started
    rows = {"constrained_viterbi": (True, False), "argmax": (False, False)}
    if read.paths is not None:
        rows = {"crf": (True, True), **rows}
    results = {}
    for name, (constrained, use_path) in rows.items():
        started = time.perf_counter()
        slots = [decode_spans(t, p, a, predictor.slot_labels, constrained,
                              read.paths[i] if use_path else None)
                 for i, (t, p, a) in enumerate(zip(texts, read.slot_probs, read.alignments))]
        seconds = forward + time.perf_counter() - started
        frames = [NluExample(t, predictor.labels.labels[int(p.argmax())],
                             tuple(Span(s.slot, s.start, s.end) for s in found))
                  for t, p, found in zip(texts, read.intents, slots)]
        results[name] = {**slot_scores(records, frames),
                         "sentence_accuracy": sentence_accuracy(records, frames),
                         "seconds": round(seconds, 2)}
        print(name, json.dumps(results[name]), flush=True)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
