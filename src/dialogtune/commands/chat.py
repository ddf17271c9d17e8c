"""Chat verbs: ``dialogtune chat``, ``generate`` and ``export``."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from ..errors import DialogtuneError

HELP = "Commands: /reset clears the conversation, /exit quits."
TRUST_HELP = "Run Python code shipped with the model (a run's config alone never allows it)."
PICKLE_HELP = "Load .bin/.pt (pickle) weights, which can run code when loaded."


def load_policy(trust_remote_code: bool, allow_pickle: bool):
    """The command line's ``LoadPolicy``: the only thing that may allow code on load."""
    from ..models.loading import LoadPolicy

    return LoadPolicy(trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)


def chat(
    run: str = typer.Argument(..., help="A chat run directory or a model alias/folder."),
    system: Optional[str] = typer.Option(None, "--system", help="System message."),
    max_new_tokens: int = typer.Option(128, "--max-new-tokens"),
    temperature: float = typer.Option(0.0, "--temperature", help="0 = greedy."),
    top_p: float = typer.Option(0.9, "--top-p"),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Talk to a model in the terminal: streamed replies, multi-turn memory."""
    from ..inference.chat import ChatPredictor

    predictor = ChatPredictor.load(run, load_policy(trust_remote_code, allow_pickle))
    typer.echo(f"dialogtune chat with {predictor.name}. {HELP}")
    start = [{"role": "system", "content": system}] if system else []
    history = list(start)
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            break
        if text in ("/exit", "/quit"):
            break
        if text == "/reset":
            history = list(start)
            typer.echo("(conversation cleared)")
            continue
        if not text:
            continue
        history.append({"role": "user", "content": text})
        typer.echo("bot> ", nl=False)
        pieces = []
        for piece in predictor.stream(history, max_new_tokens, temperature, top_p):
            pieces.append(piece)
            typer.echo(piece, nl=False)
        typer.echo("")
        history.append({"role": "assistant", "content": "".join(pieces).strip()})


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
) -> None:
    """Reply to each record's conversation; writes it back with the reply appended."""
    from ..inference.chat import ChatPredictor
    from ..data.formats import read_dialogues
    from ..data.formats.dialogue import dialogue_to_chat_json
    from ..data.records import Message

    dialogues = read_dialogues(data, data_format)
    predictor = ChatPredictor.load(run, load_policy(trust_remote_code, allow_pickle))
    lines = []
    for dialogue in dialogues:
        if dialogue.messages[-1].role == "assistant":  # answer what precedes the last reply
            dialogue.messages = dialogue.messages[:-1]
        context = [{"role": m.role, "content": m.content} for m in dialogue.messages]
        reply = predictor.chat(context, max_new_tokens, temperature, seed=seed)
        dialogue.messages.append(Message("assistant", reply))
        record = dialogue_to_chat_json(dialogue)
        record["reply"] = reply
        lines.append(json.dumps(record, ensure_ascii=False))
    text = "\n".join(lines) + "\n"
    if output is None:
        typer.echo(text, nl=False)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {len(lines)} replies to {output}")


def export(
    run: Path = typer.Argument(..., help="A trained chat run directory."),
    output: Path = typer.Option(..., "--output", help="Folder (or .gguf file) to write."),
    merge: bool = typer.Option(False, "--merge", help="Fold adapters into a plain model."),
    gguf: bool = typer.Option(False, "--gguf", help="Write a GGUF file (llama.cpp)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Export a run as a Hugging Face folder, a peft adapter folder, or GGUF."""
    from ..export.hf import export_run

    if not (run / "config.yaml").exists():
        raise DialogtuneError(f"{run}: not a dialogtune run (no config.yaml)")
    info = export_run(run, output, merge=merge, gguf=gguf,
                      policy=load_policy(trust_remote_code, allow_pickle))
    typer.echo(json.dumps(info, indent=2))


def register(app: typer.Typer) -> None:
    """Add the chat verbs to the main app."""
    app.command("chat")(chat)
    app.command("generate")(generate)
    app.command("export")(export)
