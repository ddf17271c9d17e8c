"""What several verbs share: the options that allow code on load, and the policy they make."""

from __future__ import annotations

TRUST_HELP = "Run Python code shipped with the model (a run's config alone never allows it)."
PICKLE_HELP = "Load .bin/.pt (pickle) weights, which can run code when loaded."
BACKEND_HELP = ("Intent and NLU runs: 'torch', or 'onnx' to read RUN's ONNX export (RUN is "
                "the export folder, or a run holding one in RUN/onnx).")
PRECISION_HELP = ("Chat models' weights: 'auto' (bf16 where this machine's bf16 matmuls are at "
                  "least 2x float32's, as on CPUs with AMX; float32 elsewhere), 'fp32' or "
                  "'bf16'.")
PRECISIONS = ("auto", "fp32", "bf16")


def checked_precision(value: str) -> str:
    """``--precision`` checked when parsed, before any model is loaded."""
    import typer

    if value not in PRECISIONS:
        raise typer.BadParameter(f"{value!r}: expected one of {', '.join(PRECISIONS)}")
    return value


TOOLS_HELP = ("JSON file of tools (an OpenAI 'tools' list or function objects) for the "
              "dialogues that have none of their own.")


def load_policy(trust_remote_code: bool, allow_pickle: bool):
    """The command line's ``LoadPolicy``: the only thing that may allow code on load."""
    from ..models.loading import LoadPolicy

    return LoadPolicy(trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
