#!/usr/bin/env bash
# run: DATA=../shared/data bash benchmarks/gpu_check.sh [OUT]
#
# On a machine with a GPU: dialogtune's side of the intent benchmark (BANKING77, the
# default command of benchmarks/intent_banking77.py) and of the chat benchmark (SmolLM2 LoRA
# on sgd_restaurants, as benchmarks/chat_sft_sgd.py runs it), then one line per run with
# the device, the precision chosen, tokens (or examples) per second, MFU and quality.
# Nothing here estimates: without a GPU the script says so and stops (ALLOW_CPU=1 runs it
# anyway, to check the script itself, e.g. with SET="train.max_steps=5" for short runs).
set -euo pipefail
DATA=${DATA:-../shared/data}
OUT=${1:-runs/gpu_check}
PY=${PYTHON:-.venv/bin/python}
SET=${SET:-}
export HF_HUB_OFFLINE=1

if [ "${ALLOW_CPU:-0}" != 1 ] && ! "$PY" -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 1)"; then
    echo "gpu_check: no CUDA device visible to torch; nothing measured" >&2
    exit 2
fi
"$PY" -c "import torch; print('device:', torch.cuda.get_device_name(0) if torch.cuda.is_available()
      else 'CPU (ALLOW_CPU=1)', '| torch', torch.__version__)"
extra=(--set train.save_every_steps=0)
for setting in $SET; do extra+=(--set "$setting"); done
mkdir -p "$OUT"

"$PY" -m dialogtune.cli train --task intent --data "$DATA/banking77/train.csv" \
    --output "$OUT/intent" "${extra[@]}"
"$PY" -m dialogtune.cli eval "$OUT/intent" --data "$DATA/banking77/test.csv" \
    --output "$OUT/intent_metrics.json"

"$PY" -m dialogtune.cli train --task chat --data "$DATA/sgd_restaurants/train.jsonl" \
    --output "$OUT/chat" "${extra[@]}"
"$PY" -m dialogtune.cli eval "$OUT/chat" --data "$DATA/sgd_restaurants/test.jsonl" \
    --output "$OUT/chat_metrics.json"

"$PY" - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
for name, quality in (("intent", ("accuracy", "macro_f1")), ("chat", ("perplexity",))):
    run = json.loads((out / name / "run.json").read_text())
    metrics = json.loads((out / f"{name}_metrics.json").read_text())
    rate = f", {run['tokens_per_second']} tokens/s" if "tokens_per_second" in run else ""
    print(f"{name}: {run['precision']}, {run['steps']} steps in {run['train_seconds']} s{rate}, "
          f"MFU {run.get('mfu')} of a {run.get('peak_gflops')} GFLOP/s peak, "
          + ", ".join(f"{key} {metrics.get(key)}" for key in quality))
PY
