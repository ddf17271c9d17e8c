"""Chinese joint NLU on CrossWOZ: what the embedded models get with dialogtune's defaults.

Systems, one after the other in one run (``dialogtune train --task nlu`` on
``nlu_train.jsonl``, 10 % held out to pick the epoch; ``dialogtune eval`` on
``nlu_test.jsonl``, 4,238 user turns, 13 intents):
- ``minilm`` — the default: the English MiniLM, whose vocabulary lacks most Chinese
  characters, given a token per missing character (``model.extend_vocabulary``);
- ``minilm-unknown`` — the same model keeping its unknown token (``--force``): what an
  English encoder gets on Chinese as it stands;
- ``smollm2`` (``--with-smollm2``) — the byte-level SmolLM2-135M with LoRA: no unknown
  tokens, but ~6x the compute per token of MiniLM.

Prints the CPU model and threads beside the figures. Usage (take the benchmark lock):

    flock /tmp/dialogtune-bench.lock python benchmarks/nlu_crosswoz_zh.py --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

from machine import machine
from nlu_snips import REPO, run_dialogtune

DEFAULT_DATA = REPO.parent / "shared" / "data" / "crosswoz_zh"
SYSTEMS = {"minilm": [],
           "minilm-unknown": ["--force", "--set", "model.extend_vocabulary=false"],
           "smollm2": ["--model", "smollm2", "--strategy", "lora"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--systems", nargs="+", default=["minilm", "minilm-unknown"],
                        choices=sorted(SYSTEMS))
    parser.add_argument("--with-smollm2", action="store_true",
                        help="also SmolLM2 (about 70 min an epoch on a 2-core AVX2 machine)")
    parser.add_argument("--json", type=Path, help="write the results here")
    parser.add_argument("extra", nargs="*", help="extra train flags for every system, after --")
    args = parser.parse_args()
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    host = machine(args.threads)
    print("machine:", json.dumps(host), flush=True)
    work = Path(tempfile.mkdtemp(prefix="bench-crosswoz-"))
    systems = args.systems + (["smollm2"] if args.with_smollm2 else [])
    results: dict = {"machine": host, "data": str(args.data_root)}
    for name in dict.fromkeys(systems):
        results[name] = run_dialogtune(args.data_root, work / name, args.threads,
                                       SYSTEMS[name] + args.extra,
                                       "nlu_train.jsonl", "nlu_test.jsonl")
        print(f"{name}:", json.dumps(results[name]), flush=True)
        if args.json:  # after every system: a long run keeps what it finished
            args.json.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
