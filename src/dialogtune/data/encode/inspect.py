"""Show what chat training sees: one dialogue through the template, trained tokens marked.

Coloured with rich on a terminal (trained tokens green, the rest dim); plain ``[[...]]``
around trained runs otherwise, so the output stays readable in logs and tests. A
tool-calling dialogue shows its tool list, calls and results as the template renders them
(``encode.tools``): calls are trained like the assistant's words, the tool list and the
results are context only; the counts line says how many of each.
"""

from __future__ import annotations

from dataclasses import dataclass

from ...errors import DataError
from ..formats import read_dialogues
from .chat import IGNORE, encode_dialogue, ensure_chat_template


@dataclass
class Inspection:
    """One encoded dialogue as (text piece, trained) runs plus its token counts."""

    runs: list[tuple[str, bool]]
    tokens: int
    trained: int
    dropped_turns: int
    index: int
    calls: int = 0
    results: int = 0
    tools: int = 0

    def plain(self) -> str:
        return "".join(f"[[{text}]]" if trained else text for text, trained in self.runs)

    def counts(self) -> str:
        share = 100 * self.trained / max(1, self.tokens)
        note = f", {self.dropped_turns} turn(s) cut by max_length" if self.dropped_turns else ""
        tools = (f"; {self.calls} tool call(s) trained, {self.results} tool result(s) and "
                 f"{self.tools} tool definition(s) context only"
                 if self.calls or self.results or self.tools else "")
        return f"tokens: {self.tokens} total, {self.trained} trained ({share:.1f}%){note}{tools}"


def inspect_dialogue(tokenizer, path: str, index: int = 0, fmt: str = "auto",
                     max_length: int | None = None, tools: str | None = None) -> Inspection:
    """Encode dialogue ``index`` of ``path`` exactly as training would (``tools``: the
    run's tools file, for dialogues without their own)."""
    ensure_chat_template(tokenizer)
    dialogues = read_dialogues(path, fmt, tools)
    if not 0 <= index < len(dialogues):
        raise DataError(f"--index {index} out of range: the file has {len(dialogues)} "
                        "dialogue(s)", path)
    encoded, dropped = encode_dialogue(tokenizer, dialogues[index], max_length)
    if encoded is None:
        raise DataError("this dialogue has no trained assistant turn (or none fits "
                        "max_length)", path, dialogues[index].line)
    runs: list[tuple[str, bool]] = []
    pieces = _pieces(tokenizer, encoded.input_ids)
    for piece, label in zip(pieces, encoded.labels):
        trained = label != IGNORE
        if runs and runs[-1][1] == trained:
            runs[-1] = (runs[-1][0] + piece, trained)
        else:
            runs.append((piece, trained))
    dialogue = dialogues[index]
    calls = sum(len(m.extra.get("tool_calls") or []) for m in dialogue.messages)
    results = sum(1 for m in dialogue.messages if m.role == "tool")
    return Inspection(runs, len(encoded.input_ids), encoded.trained, dropped, index, calls,
                      results, len(dialogue.extra.get("tools") or []))


def _pieces(tokenizer, ids: list[int]) -> list[str]:
    """Each token's text, decoded incrementally so multi-byte characters stay whole."""
    pieces, previous = [], ""
    for end in range(1, len(ids) + 1):
        text = tokenizer.decode(ids[:end], skip_special_tokens=False)
        if text.endswith("\ufffd"):  # an unfinished UTF-8 sequence: wait for the rest
            pieces.append("")
            continue
        pieces.append(text[len(previous):])
        previous = text
    return pieces


def print_inspection(inspection: Inspection, color: bool | None = None) -> None:
    """Print with rich colours on a terminal, plain markers elsewhere."""
    from rich.console import Console
    from rich.text import Text

    console = Console(highlight=False)
    use_color = console.is_terminal if color is None else color
    if not use_color:
        print(inspection.plain())
        print(inspection.counts())
        return
    text = Text()
    for piece, trained in inspection.runs:
        text.append(piece, style="bold green" if trained else "dim")
    console.print(text)
    console.print(f"[bold]{inspection.counts()}[/bold]  (green = trained)")
