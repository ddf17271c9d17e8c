"""An explanation shown: coloured in the terminal (rich) and as a standalone HTML page.

Intent/NLU: each word on a background green (it raised the explained intent's
probability) or red (it lowered it), stronger with the magnitude, relative to the
largest. Chat: each reply token redder the less likely the model found it. The text
between words is kept as typed. All user and model text is escaped: in HTML it can
never become markup, in the terminal never rich markup.
"""

from __future__ import annotations

import html
import math
from pathlib import Path

from ...atomic import write_text_atomic

GREEN, RED, WHITE = (40, 167, 69), (220, 53, 69), (255, 255, 255)


def blend(colour: tuple[int, int, int], strength: float) -> tuple[int, int, int]:
    """``colour`` faded towards white: 0 → white, 1 → the colour itself."""
    strength = min(1.0, max(0.0, strength))
    return tuple(round(w + strength * (c - w)) for c, w in zip(colour, WHITE))


def rgb(colour: tuple[int, int, int]) -> str:
    """``rgb(r,g,b)`` without spaces: rich reads a style word by word."""
    return "rgb({},{},{})".format(*colour)


def pieces(result: dict) -> list[tuple[str, tuple[int, int, int] | None, str]]:
    """(text, background or None, tooltip) in reading order."""
    if result["kind"] == "chat":
        return [(token, blend(RED, 1.0 - math.exp(lp)), f"log p = {lp:.3f}")
                for token, lp in zip(result["tokens"], result["logprobs"])]
    words, text, out, cursor = result["words"], result["text"], [], 0
    scale = max((abs(w["attribution"]) for w in words), default=0.0) or 1.0
    for word in words:
        if word["start"] > cursor:
            out.append((text[cursor:word["start"]], None, ""))
        score = word["attribution"]
        out.append((word["word"], blend(GREEN if score > 0 else RED, abs(score) / scale),
                    f"{score:+.4f}"))
        cursor = word["end"]
    if cursor < len(text):
        out.append((text[cursor:], None, ""))
    return out


def summary_lines(result: dict) -> list[str]:
    """The plain lines under the coloured text: what was explained, and how."""
    if result["kind"] == "chat":
        lines = [f"reply perplexity {result['perplexity']:.2f} over {len(result['tokens'])} "
                 "tokens; least likely:"]
        lines += [f"  {row['token']!r} p={row['probability']:.4f} (expected "
                  f"{row['expected']!r} p={row['expected_probability']:.4f})"
                  for row in result["least_likely"]]
        return lines
    lines = [f"intent {result['intent']} ({result['confidence']:.3f}); explained: "
             f"{result['target']} ({result['target_probability']:.3f}) by {result['method']}"]
    if "ig" in result:
        ig = result["ig"]
        lines.append(f"  P {ig['probability']:.4f} - P(baseline) {ig['baseline_probability']:.4f}"
                     f", convergence delta {ig['delta']:.2e} ({ig['steps']} steps)")
    ranked = sorted(result["words"], key=lambda w: -abs(w["attribution"]))[:5]
    lines += [f"  {w['word']!r} {w['attribution']:+.4f}" for w in ranked]
    lines += [f"  slot {s['slot']} = {s['value']!r} [{s['start']}:{s['end']}]"
              for s in result.get("slots", ())]
    return lines


def print_explanation(result: dict, console=None) -> None:
    """The coloured text (the reply, for chat) and its summary on the terminal."""
    from rich.console import Console
    from rich.text import Text

    console = console or Console(highlight=False)
    if result["kind"] == "chat":
        console.print(Text("user: " + result["text"]))
    shown = Text("reply: " if result["kind"] == "chat" else "")
    for text, colour, _ in pieces(result):
        shown.append(text, style=f"black on {rgb(colour)}" if colour else None)
    console.print(shown)
    for line in summary_lines(result):
        console.print(Text(line))


def html_page(result: dict) -> str:
    """A standalone page (no scripts, no external files); every text escaped."""
    spans = "".join(
        f'<span style="background:{rgb(colour)}" title="{html.escape(tip)}">'
        f"{html.escape(text)}</span>" if colour else html.escape(text)
        for text, colour, tip in pieces(result))
    heading = "Reply token probabilities" if result["kind"] == "chat" else "Intent attribution"
    label = "user" if result["kind"] == "chat" else "text"
    user = f'<p class="user">{label}: {html.escape(result["text"])}</p>'
    summary = "\n".join(html.escape(line) for line in summary_lines(result))
    return ("<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">"
            f"<title>dialogtune explain</title><style>body{{font-family:sans-serif;"
            "max-width:60em;margin:2em auto}.text{font-size:1.4em;line-height:2;"
            "white-space:pre-wrap}.text span{padding:0.1em 0.15em;border-radius:3px}"
            "</style></head><body>"
            f"<h1>{heading}</h1>{user}<p class=\"text\">{spans}</p>"
            f"<pre>{summary}</pre></body></html>\n")


def write_html(result: dict, path: str | Path) -> None:
    write_text_atomic(path, html_page(result))
