"""``dialogtune data ...``: check, fix, convert, split, sample, inspect, export-logs.

Each command only parses its options and calls one function of ``dialogtune.data``; the
work (and its tests) lives there. New commands are appended at the end of this file as
one ``@data_app.command`` function each.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from .common import TOOLS_HELP

data_app = typer.Typer(no_args_is_help=True, help="Check, clean, convert and split domain data.")


def _outputs(*paths: Optional[Path], folder: bool = False) -> None:
    """Check every output before any work: missing parent folders are created (as for
    every other output of the CLI) and a folder given for a file is a one-line error."""
    from ..data.files import prepare_output

    for path in paths:
        if path is not None:
            prepare_output(path, folder)


def _lines(lines: list, limit: int = 10) -> str:
    shown = ", ".join(str(n) for n in lines[:limit])
    return shown + (f", … ({len(lines)} in all)" if len(lines) > limit else "")


@data_app.command("check")
def check(
    train: Path = typer.Argument(..., help="Intent CSV/JSONL, NLU data (JSONL with slots, "
                                 "Rasa YAML, CoNLL) or chat/ShareGPT/Alpaca JSONL."),
    test: Optional[Path] = typer.Option(None, "--test", help="Test file, for leakage."),
    kind: str = typer.Option("auto", "--kind",
                             help="auto | intent | dialogue | nlu (nlu checks the slot "
                                  "spans of dialogue turns too)."),
    output: Optional[Path] = typer.Option(None, "--output", help="JSON report to write."),
    html: Optional[Path] = typer.Option(None, "--html", help="HTML report to write."),
    model: Optional[str] = typer.Option(None, "--model",
                                        help="Tokenizer for lengths (minilm / smollm2 default)."),
    max_length: Optional[int] = typer.Option(None, "--max-length",
                                             help="Token limit (default: the model's)."),
    near: float = typer.Option(0.8, "--near", help="Near-duplicate Jaccard threshold."),
    min_count: int = typer.Option(10, "--min-count", help="Fewest examples an intent needs."),
    text_column: Optional[str] = typer.Option(None, "--text-column"),
    label_column: Optional[str] = typer.Option(None, "--label-column"),
    tools: Optional[str] = typer.Option(None, "--tools", help="Dialogues: " + TOOLS_HELP),
) -> None:
    """Find duplicates, conflicts, leakage, personal data, imbalance, length, slot and
    tool-call problems."""
    from ..data.quality.check import CheckOptions, check_files
    from ..data.quality.report import print_summary, write_html, write_json

    _outputs(output, html)
    options = CheckOptions(model, max_length, near, min_count, text_column, label_column, kind,
                           tools)
    report = check_files(train, test, options)
    print_summary(report)
    if output:
        write_json(report, output)
        typer.echo(f"wrote {output}")
    if html:
        write_html(report, html)
        typer.echo(f"wrote {html}")


@data_app.command("fix")
def fix(
    train: Path = typer.Argument(..., help="The file to clean (never edited in place)."),
    output: Path = typer.Option(..., "--output", help="The cleaned copy to write."),
    dedupe: bool = typer.Option(False, "--dedupe", help="Drop exact duplicates (keep first)."),
    drop_conflicts: bool = typer.Option(False, "--drop-conflicts",
                                        help="Drop every copy of a text with 2+ labels."),
    redact_pii: bool = typer.Option(False, "--redact-pii",
                                    help="Replace e-mails, phones, cards, IBANs."),
    text_column: Optional[str] = typer.Option(None, "--text-column"),
    label_column: Optional[str] = typer.Option(None, "--label-column"),
) -> None:
    """Write a cleaned copy in the same format and list what changed, by line."""
    from ..data.transform.fix import FixOptions, fix_file

    _outputs(output)
    changes = fix_file(train, output, FixOptions(dedupe, drop_conflicts, redact_pii),
                       text_column, label_column)
    labels = {"unreadable": "dropped unreadable rows", "empty": "dropped empty utterances",
              "duplicates": "dropped exact duplicates", "conflicts": "dropped conflicting texts"}
    for key, label in labels.items():
        if key in changes:
            found = changes[key]
            typer.echo(f"{label}: {len(found)}" + (f" (lines {_lines(found)})" if found else ""))
    for kind, found in changes.get("redacted", {}).items():
        typer.echo(f"redacted {kind}: {len(found)} record(s) (lines {_lines(found)})")
    typer.echo(f"wrote {changes['kept']} record(s) to {output}")


@data_app.command("convert")
def convert(
    source: Path = typer.Argument(..., help="Intent CSV/JSONL, Rasa NLU YAML, NLU JSONL, "
                                  "CoNLL, or dialogues."),
    to: str = typer.Option(..., "--to", help="csv, jsonl, chat, sharegpt, alpaca, openai; "
                           "NLU: nlu-jsonl, rasa, conll, dialogue."),
    output: Path = typer.Option(..., "--output", help="File to write."),
) -> None:
    """Convert between data formats, saying what a lossy conversion drops."""
    from ..data.transform.convert import convert_file

    _outputs(output)
    written, notes = convert_file(source, to, output)
    for note in notes:
        typer.echo(f"note: {note}")
    typer.echo(f"wrote {written} record(s) to {output} ({to})")


@data_app.command("split")
def split(
    source: Path = typer.Argument(..., help="Intent or dialogue data to split."),
    test: float = typer.Option(0.2, "--test", help="Fraction held out for testing."),
    seed: int = typer.Option(42, "--seed"),
    output_dir: Path = typer.Option(..., "--output-dir", help="Folder for train/test files."),
    group_by: Optional[str] = typer.Option(None, "--group-by",
                                           help="Conversation id field (dialogues)."),
) -> None:
    """Stratified by intent, or grouped by dialogue so none straddles the split."""
    from ..data.transform.split import split_file

    _outputs(output_dir, folder=True)
    result = split_file(source, test, seed, output_dir, group_by)
    typer.echo(f"wrote {result['train']} train record(s) to {result['paths']['train']} and "
               f"{result['test']} test record(s) to {result['paths']['test']}")


@data_app.command("sample")
def sample(
    source: Path = typer.Argument(..., help="Intent data."),
    shots: int = typer.Option(..., "--shots", help="Examples per intent (K)."),
    output: Path = typer.Option(..., "--output", help="File to write."),
    seed: int = typer.Option(42, "--seed"),
) -> None:
    """A K-shot subset: K examples per intent, drawn with a seed."""
    from ..data.transform.split import sample_file

    _outputs(output)
    result = sample_file(source, shots, seed, output)
    if result["short_labels"]:
        typer.echo(f"note: {len(result['short_labels'])} intent(s) have fewer than {shots} "
                   f"examples and are kept whole: {', '.join(result['short_labels'][:10])}")
    typer.echo(f"wrote {result['written']} record(s), {result['labels']} intent(s), to {output}")


@data_app.command("export-logs")
def export_logs(
    db: str = typer.Argument(..., help="The server's --log-db SQLite file."),
    output: str = typer.Option(..., "--output", help="File to write (.jsonl or .csv)."),
    fmt: str = typer.Option("chat", "--format", help="chat (JSONL messages) | intent (CSV) | nlu (JSONL text, intent, slots) | preference (JSONL pairs and KTO rows)."),
    reviewed_only: bool = typer.Option(
        False, "--reviewed-only",
        help="Only exchanges a person rated up or corrected (the safe choice for retraining)."),
) -> None:
    """Logged conversations → training data: corrections applied, thumbs-down dropped."""
    from ..data.transform.log_export import export_logs as write_export

    count = write_export(db, output, fmt, reviewed_only)
    typer.echo(f"wrote {count} {fmt} examples to {output}")
    if not reviewed_only:
        typer.echo("note: unreviewed replies are included; --reviewed-only keeps only "
                   "exchanges rated up or corrected")


@data_app.command("inspect")
def inspect(
    data: Path = typer.Argument(..., help="Dialogue JSONL (chat, ShareGPT or Alpaca)."),
    model: str = typer.Option("smollm2", "--model", help="Model whose chat template to use."),
    index: int = typer.Option(0, "--index", help="Which dialogue (0 = the first)."),
    data_format: str = typer.Option("auto", "--format", help="chat | sharegpt | alpaca"),
    max_length: Optional[int] = typer.Option(
        None, "--max-length", help="Training token limit (default: the chat task's)."),
    tools: Optional[str] = typer.Option(None, "--tools", help=TOOLS_HELP),
) -> None:
    """Show one dialogue as training sees it: trained tokens highlighted, token counts."""
    from ..data.encode.inspect import inspect_dialogue, print_inspection
    from ..models.loading import load_tokenizer, resolve_source
    from ..tasks import get_task

    max_length = max_length or get_task("chat").defaults["data"]["max_length"]
    tokenizer = load_tokenizer(resolve_source(model))
    print_inspection(inspect_dialogue(tokenizer, str(data), index, data_format, max_length,
                                      tools))


@data_app.command("make-preferences")
def make_preferences(
    data: Path = typer.Argument(..., help="Dialogue JSONL (chat, ShareGPT or Alpaca)."),
    output: Path = typer.Option(..., "--output", help="Preference JSONL to write."),
    from_run: Optional[str] = typer.Option(
        None, "--from", help="A chat run (or model): its own reply is the rejected one where it "
                             "differs. Default: the reference with a fact corrupted."),
    seed: int = typer.Option(0, "--seed", help="Which value is corrupted, and into what."),
    tools: Optional[str] = typer.Option(None, "--tools", help=TOOLS_HELP),
) -> None:
    """Preference pairs from dialogues: chosen = the reference reply, rejected = a run's
    reply or the reference with a number, name, time or date swapped."""
    from ..data.transform.preferences import make_preferences as make, predictor_reply

    _outputs(output)
    reply = None
    if from_run:
        from ..inference.chat import ChatPredictor

        reply = predictor_reply(ChatPredictor.load(from_run))
    made = make(data, output, reply, seed, tools)
    skipped = ", ".join(f"{n} {why}" for why, n in made.skipped.items()) or "none"
    typer.echo(f"wrote {made.rows} pairs from {made.turns} reply turns to {output} "
               f"(skipped: {skipped})")
