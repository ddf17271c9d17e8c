"""Exporting a run: a chat run as a Hugging Face / peft folder (``hf``) or a GGUF file
(``gguf``); an intent or NLU run as ONNX (``onnx``).

Nothing is imported at module level (the submodules import torch); import from the
submodule, or call :func:`export_any`.
"""

from __future__ import annotations

from pathlib import Path

FORMATS = ("hf", "gguf", "onnx")


def export_any(run: str | Path, output: str | Path, fmt: str = "hf", merge: bool = False,
               quantize: str | None = None, policy=None) -> dict:
    """``dialogtune export``: write ``output`` in format ``fmt``; returns its description.
    Options that do not go with the format are refused in one line."""
    from ..errors import DialogtuneError

    if fmt not in FORMATS:
        raise DialogtuneError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    if quantize is not None and fmt != "onnx":
        raise DialogtuneError("--quantize goes with --format onnx")
    if fmt == "onnx":
        if merge:
            raise DialogtuneError("--merge applies to chat runs (an ONNX export is always "
                                  "one plain graph)")
        from .onnx import export_onnx

        return export_onnx(run, output, quantize, policy)
    from .hf import export_run

    return export_run(run, output, merge=merge, gguf=fmt == "gguf", policy=policy)
