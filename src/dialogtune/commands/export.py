"""``dialogtune export``: a chat run as a Hugging Face / peft folder or GGUF; an intent or
NLU run as ONNX."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from .common import PICKLE_HELP, TRUST_HELP, load_policy


def export(
    run: Path = typer.Argument(..., help="A trained run directory."),
    output: Path = typer.Option(..., "--output", help="Folder (or .gguf file) to write."),
    fmt: str = typer.Option("hf", "--format", help="hf (chat runs: a Hugging Face or peft "
                            "folder), gguf (chat runs), onnx (intent and NLU runs)."),
    quantize: Optional[str] = typer.Option(None, "--quantize", help="With --format onnx: "
                                           "int8 (ONNX Runtime dynamic quantization)."),
    merge: bool = typer.Option(False, "--merge", help="Fold adapters into a plain model."),
    gguf: bool = typer.Option(False, "--gguf", help="Write a GGUF file (= --format gguf)."),
    trust_remote_code: bool = typer.Option(False, "--trust-remote-code", help=TRUST_HELP),
    allow_pickle: bool = typer.Option(False, "--allow-pickle", help=PICKLE_HELP),
) -> None:
    """Export a run: chat runs as a Hugging Face folder, a peft adapter folder or GGUF;
    intent and NLU runs as ONNX (--format onnx [--quantize int8])."""
    from ..export import export_any

    info = export_any(run, output, "gguf" if gguf else fmt, merge=merge, quantize=quantize,
                      policy=load_policy(trust_remote_code, allow_pickle))
    typer.echo(json.dumps(info, indent=2))
