"""How much of each benchmark data set a model cannot represent (its unknown-token share).

Sets the thresholds of ``data/quality/vocabulary.py``: the share of non-space characters
that a model's tokenizer maps to its unknown token, per data set in ``../shared/data``.
Tokenization only: seconds, no lock needed.

Usage: ``python benchmarks/unknown_tokens.py [--models minilm smollm2] [--json out.json]``
"""

from __future__ import annotations

import argparse
import csv
import json
from pathlib import Path

from dialogtune.data.quality.vocabulary import unknown_token_report
from dialogtune.models.loading import load_tokenizer, resolve_source

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # beside the checkout


def texts_of(path: Path) -> list[str]:
    """User texts of a CSV (``text``), NLU JSONL (``text``) or dialogue JSONL (every turn)."""
    if path.suffix == ".csv":
        with path.open(newline="", encoding="utf-8") as handle:
            return [row["text"] for row in csv.DictReader(handle)]
    texts = []
    for line in path.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        texts += [row["text"]] if "text" in row else [m.get("content") or ""
                                                      for m in row.get("messages", [])]
    return [t for t in texts if t]


SETS = {"banking77": "banking77/train.csv", "snips": "snips/train.jsonl",
        "sgd_banks": "sgd_banks/train.jsonl", "sgd_restaurants": "sgd_restaurants/train.jsonl",
        "crosswoz_zh (NLU turns)": "crosswoz_zh/nlu_train.jsonl"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["minilm", "smollm2"])
    parser.add_argument("--data", type=Path, default=DATA, help="the shared data folder")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows = []
    for model in args.models:
        tokenizer = load_tokenizer(resolve_source(model))
        for name, relative in SETS.items():
            if not (args.data / relative).is_file():
                print(f"{name}: {args.data / relative} missing, skipped")
                continue
            texts = texts_of(args.data / relative)
            report = unknown_token_report(tokenizer, texts, list(range(1, len(texts) + 1)))
            rows.append({"model": model, "data": name, **{k: report[k] for k in (
                "share", "texts_affected", "texts_looked_at")},
                "example": report["examples"][0] if report["examples"] else None})
            print(f"{model:8} {name:24} unknown characters {report['share']:7.2%}  "
                  f"texts affected {report['texts_affected']:7.2%}  "
                  f"({report['texts_looked_at']} texts)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False), encoding="utf-8")


if __name__ == "__main__":
    main()
