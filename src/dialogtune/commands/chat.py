"""Chat verbs: ``dialogtune chat`` and ``generate``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import PICKLE_HELP, PRECISION_HELP, TRUST_HELP, checked_precision, load_policy

HELP = "Commands: /reset clears the conversation, /exit quits."


def chat(
    run: str = typer.Argument(..., help="A chat run directory or a model alias/folder."),
    system: Optional[str] = typer.Option(None, "--system", help="System message."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    top_p: float = typer.Option(0.9, "--top-p"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP,
                                   callback=checked_precision),
) -> None:
    """Talk to a model in the terminal: streamed replies, multi-turn memory."""
    from ..inference.dialogue import ChatSession

    session = ChatSession.load(run, load_policy(trust_remote_code, allow_pickle), system=system,
                               max_new_tokens=max_new_tokens, temperature=temperature,
                               top_p=top_p, precision=precision)
    typer.echo(f"dialogtune chat with {session.name}. {HELP}")
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            break
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            session.reset()
            typer.echo("(conversation cleared)")
        elif text:
            typer.echo("bot> ", nl=False)
            for piece in session.send(text):
                typer.echo(piece, nl=False)
            typer.echo("")


def generate(
    run: str = typer.Argument(..., help="A chat run directory or a model alias/folder."),
    data: Path = typer.Option(..., "--data", help="JSONL of chat records (messages etc.)."),
    output: Optional[Path] = typer.Option(None, "--output", help="JSONL to write (stdout)."),
    data_format: str = typer.Option("auto", "--format", help="chat | sharegpt | alpaca"),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    temperature: float = typer.Option(0.0, "--temperature"),
    seed: Optional[int] = typer.Option(None, "--seed"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
    precision: str = typer.Option("auto", "--precision", help=PRECISION_HELP,
                                   callback=checked_precision),
) -> None:
    """Reply to each record's conversation; writes it back with the reply appended."""
    from ..inference.dialogue import generate_replies

    records = generate_replies(run, data, data_format, max_new_tokens, temperature, seed,
                               load_policy(trust_remote_code, allow_pickle), precision)
    text = "".join(json.dumps(record, ensure_ascii=False) + "\n" for record in records)
    if output is None:
        typer.echo(text or "\n", nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text or "\n", encoding="utf-8")
    typer.echo(f"wrote {len(records)} replies to {output}")

