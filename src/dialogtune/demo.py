"""``make demo``: the main job on the embedded defaults and the project's example domain.

Trains and evaluates a joint intent + slot model (all-MiniLM-L6-v2, ``--task nlu``) on
``examples/``, then fine-tunes the embedded chat model (SmolLM2-135M-Instruct) with LoRA on
the example dialogues, and prints the metrics, a turn with its slots and where the plots
are. Last, a second LoRA run of that model learns the example tool-calling dialogues and
answers held-out questions by calling a fake support backend and replying from its result
(``demo_tools``).
"""

from __future__ import annotations

import argparse
import logging
import shutil
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
MARKER = ".dialogtune-demo"


def _fresh_output(output: Path) -> None:
    """Start from an empty demo folder; refuse to wipe a folder the demo did not create."""
    if output.exists():
        if not (output / MARKER).exists():
            raise SystemExit(f"{output} exists and was not made by the demo; choose --output")
        shutil.rmtree(output)
    output.mkdir(parents=True)
    (output / MARKER).write_text("made by python -m dialogtune.demo\n")


def run_nlu_demo(output: Path, examples: Path = EXAMPLES, lang: str = "en") -> dict:
    """Train on the example utterances (intents and slots), evaluate on the held-out file,
    show predictions with their slots."""
    from . import evaluate_run, load_config, train_run
    from .inference.intent import load_classifier
    from .runs.layout import RunDir

    run = output / "nlu"
    files = RunDir(run)
    cfg = load_config(None, None, **{"task": "nlu", "output": str(run),
                                     "data.train": str(examples / "nlu_train.jsonl")})
    summary = train_run(cfg)
    metrics = evaluate_run(run, str(examples / "nlu_test.jsonl"), files.eval.metrics)
    print("\n== Understanding: intent + slots (minilm, strategy full) ==")
    print(f"trained {summary['steps']} steps in {summary['train_seconds']:.1f} s "
          f"on {summary['train_examples']} utterances, {summary['labels']} intents")
    for key in ("accuracy", "macro_f1", "slot_f1", "sentence_accuracy",
                "latency_ms_per_utterance"):
        print(f"  test {key:26s} {metrics[key]:.4f}")
    for pair in metrics["top_confused_pairs"][:3]:
        print(f"  confused: {pair['true']} -> {pair['predicted']} ({pair['count']}x)")
    _print_threshold(metrics["out_of_scope"], summary)
    predictor = load_classifier(run)
    _print_predictions(predictor, lang)
    _print_test_turn(predictor, examples / "nlu_test.jsonl")
    print(f"  plots: {files.curves}, {files.eval.confusion_png}")
    print(f"  metrics: {files.eval.metrics}")
    return metrics


def _print_threshold(oos: dict, summary: dict) -> None:
    if oos["threshold"] is not None:
        print(f"  out of scope below {oos['threshold']:.2f} (calibrated on "
              f"{summary['validation_examples']} validation utterances): rejects "
              f"{oos['in_scope_rejected']:.0%} of the in-scope test utterances")


def _print_test_turn(predictor, test_file: Path) -> None:
    """The first held-out turn with two or more slots: the slots found beside the gold ones."""
    from .data.formats.nlu import read_nlu_examples

    turn = next((e for e in read_nlu_examples(test_file) if len(e.slots) >= 2), None)
    if turn is None:
        return
    found = predictor.classify([turn.text], top_k=1)[0]["slots"]
    print(f"  test turn: {turn.text!r} ({turn.intent})")
    print("    expected: " + ", ".join(f"{s.slot}={turn.value(s)!r}" for s in turn.slots))
    print("    found:    " + (", ".join(f"{s['slot']}={s['value']!r}" for s in found) or "-"))


# Three turns per demo language: one with slots, one plain, one off the domain.
SHOWN_TURNS = {"en": ("what's the balance on account LM-30517742?",
                      "my phone got stolen on the bus", "who won the football game last night?"),
               "zh": ("帮我查一下LM-30517742这个账户还欠多少钱", "我的手机在公交车上被偷了",
                      "昨晚的足球比赛谁赢了？")}
LANGUAGES = {"en": EXAMPLES, "zh": EXAMPLES / "zh"}


def _print_predictions(predictor, lang: str = "en") -> None:
    """Three turns: one with slots, one plain, one off the domain."""
    for text in SHOWN_TURNS[lang]:
        result = predictor.classify([text], top_k=1)[0]
        best, flag = result["intents"][0], "  [out of scope]" if result["out_of_scope"] else ""
        print(f"  predict: {text!r} -> {best['intent']} ({best['probability']:.2f}){flag}")
        for slot in result.get("slots", ()):
            print(f"           slot {slot['slot']} = {slot['value']!r} "
                  f"[{slot['start']}:{slot['end']}] ({slot['confidence']:.2f})")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=Path("runs/demo"))
    parser.add_argument("--skip-chat", action="store_true",
                        help="only the NLU part (no chat, no tools)")
    parser.add_argument("--lang", choices=sorted(LANGUAGES), default="en",
                        help="the example domain's language (zh: examples/zh, no tools part)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="dialogtune: %(message)s")
    from .cli import quiet_libraries

    quiet_libraries()
    started = time.perf_counter()
    _fresh_output(args.output)
    examples = LANGUAGES[args.lang]
    run_nlu_demo(args.output, examples, args.lang)
    if not args.skip_chat:
        from .demo_chat import run_chat_demo
        from .demo_tools import run_tools_demo

        run_chat_demo(args.output / "chat", examples)
        if args.lang == "en":  # the tool-calling examples are English only
            run_tools_demo(args.output / "chat")
    print(f"\ndemo finished in {time.perf_counter() - started:.0f} s; results in {args.output}")


if __name__ == "__main__":
    main()
