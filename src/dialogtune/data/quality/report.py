"""Showing a ``data check`` report: a rich terminal summary and a self-contained HTML page.

Both read the report dict only (never the data), so what a person sees is exactly what
the JSON report holds. Every finding is shown as where (``line`` / ``lines``) and what
(its text), the two things needed to go and fix it.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..files import prepare_output
from ..transform.writers import write_atomic
from .vocabulary import unknown_examples

HTML_ROWS = 500  # per section; the JSON report holds all of them


def sections(report: dict) -> list[tuple[str, str, list[dict]]]:
    """(key in ``counts``, title, findings) in the order a person should read them."""
    dup, leak = report["duplicates"], report["leakage"]
    items = [("malformed", "Malformed rows", report["malformed"]),
             ("empty", "Empty utterances / turns", report["empty"]),
             ("exact_duplicates", "Exact duplicates (extra copies)", dup["exact"]),
             ("near_duplicates", f"Near duplicates (≥ {dup['near_threshold']})", dup["near"]),
             ("conflicts", "Conflicts", report["conflicts"]),
             ("leakage_exact", "Leakage into test: exact", leak["exact"]),
             ("leakage_near", "Leakage into test: near", leak["near"]),
             ("pii", "Personal data (PII)", report["pii"]),
             ("over_max_length", "Over the model's maximum length", report["lengths"]["over_max"]),
             ("unknown_tokens", "Text the model cannot represent (its unknown token)",
              unknown_examples(report))]
    if report["kind"] in ("intent", "nlu"):
        items.append(("labels_under_minimum", "Labels under the minimum count",
                      (report["imbalance"] or {}).get("under_minimum", [])))
    slots = report.get("slots")
    if slots is not None:
        items += [("slot_span_problems", "Slot spans: out of bounds, overlapping, cutting "
                   "a word", slots["span_problems"]),
                  ("slots_seen_once", "Slot types seen only once (warning)", slots["seen_once"]),
                  ("slots_test_only", "Slot types in test but not in train",
                   slots["test_only"])]
    for kind, found in (report.get("dialogues") or {}).items():
        if kind not in ("empty_turns", "too_long"):  # shown above as empty / over maximum
            items.append((f"dialogues_{kind}", "Dialogues: " + kind.replace("_", " "), found))
    tools = report.get("tools")
    for kind, title in TOOL_TITLES.items() if tools else ():
        items.append((f"tools_{kind}", title, tools[kind]))
    return items


TOOL_TITLES = {"undefined_tool": "Tools: calls naming an undefined tool",
               "bad_arguments": "Tools: arguments breaking the schema",
               "result_without_call": "Tools: results answering no call",
               "unanswered_call": "Tools: calls never answered (warning)",
               "bad_definition": "Tools: malformed definitions"}


def where(finding: dict) -> str:
    """"line 12", "lines 3, 9" or "label x": where to look."""
    return safe(_where(finding))


def _where(finding: dict) -> str:
    if "file" in finding and "field" in finding and finding.get("line") is not None:
        field = f" {finding['field']}" if finding.get("field") else ""
        return f"{Path(finding['file']).name}:{finding['line']}{field}"
    if "test_lines" in finding:
        return "test lines " + ", ".join(str(n) for n in finding["test_lines"][:6]) + (
            ", …" if len(finding["test_lines"]) > 6 else "")
    if "lines" in finding and not finding["lines"]:
        return ""
    if "lines" in finding and len(finding["lines"]) == 1:
        return f"line {finding['lines'][0]}"
    if "lines" in finding:
        return "lines " + ", ".join(str(n) for n in finding["lines"][:6]) + (
            ", …" if len(finding["lines"]) > 6 else "")
    if finding.get("line") is not None:
        turn = f" turn {finding['turn']}" if "turn" in finding else ""
        return f"line {finding['line']}{turn}"
    return f"label {finding['label']}" if "label" in finding else ""


def what(finding: dict) -> str:
    """The text involved, with the detail that explains the finding."""
    if "texts" in finding:
        text = " ↔ ".join(finding["texts"]) + f"  ({finding['similarity']})"
    elif "test_text" in finding:
        text = f"{finding['text']} ↔ test line {finding['test_line']}: {finding['test_text']}"
    elif "labels" in finding and isinstance(finding["labels"], dict):
        text = f"{finding['text']}  → {', '.join(finding['labels'])}"
    elif "kind" in finding and "match" in finding:
        text = f"{finding['kind']}: {finding['match']}"
    elif "message" in finding:
        text = finding["message"]
    elif "slot" in finding and "value" in finding:
        text = f"{finding['slot']} = {finding['value']!r} in {finding['text']}"
    elif "slot" in finding and "count" in finding:
        text = f"{finding['slot']}: {finding['count']} span(s)"
    elif "count" in finding and "label" in finding and "text" not in finding:
        text = f"{finding['label']}: {finding['count']} example(s)"
    else:
        text = str(finding.get("text", ""))
    return safe(text)


def safe(text: str, limit: int = 160) -> str:
    """One printable line: lone surrogates replaced, long texts shortened."""
    text = " ".join(str(text).encode("utf-8", "replace").decode("utf-8").split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


def print_summary(report: dict, console: Console | None = None, examples: int = 3) -> None:
    """The findings table, then labels and lengths: a readable answer in one screen."""
    console = console or Console()
    test = f"; test {safe(report['test_file'])} ({report['test_records']:,})" \
        if report.get("test_file") else ""
    console.print(Text(f"{safe(report['file'])}: {report['kind']} data, {report['format']}, "
                       f"{report['records']:,} records{test}", style="bold"))
    table = Table(show_header=True, header_style="bold")
    table.add_column("Finding")
    table.add_column("Count", justify="right")
    table.add_column("Examples")
    for key, title, found in sections(report):
        count = report["counts"].get(key, len(found))
        shown = Text("\n".join(f"{where(f)}: {what(f)}" for f in found[:examples]))
        table.add_row(title, Text(str(count), style="red" if count else "green"), shown)
    console.print(table)
    for line in _footer(report):
        console.print(Text(line))


def _footer(report: dict) -> list[str]:
    lines = []
    imbalance = report.get("imbalance")
    if imbalance:
        lines.append(f"labels: {len(report['label_counts'])}, imbalance {imbalance['ratio']}× "
                     f"(max {safe(imbalance['max']['label'])} {imbalance['max']['count']}, "
                     f"min {safe(imbalance['min']['label'])} {imbalance['min']['count']})")
    lengths = report["lengths"]
    for unit in ("chars", "tokens"):
        stats = lengths.get(unit)
        if stats:
            model = f" ({report['model']}, max {lengths['max_length']})" if unit == "tokens" else ""
            lines.append(f"{unit}{model}: p50 {stats['p50']:g}, p95 {stats['p95']:g}, "
                         f"p99 {stats['p99']:g}, max {stats['max']}")
    unknown = lengths.get("unknown")
    if unknown and unknown["unknown_characters"]:
        lines.append(f"unknown characters ({report['model']}): {unknown['share']:.1%} of "
                     f"characters, in {unknown['texts_affected']:.0%} of texts"
                     + (f" — {unknown['advice']}" if unknown["advice"] else ""))
    lines += _tools_footer(report.get("tools"))
    slots = report.get("slots")
    if slots is not None:
        shown = ", ".join(f"{safe(k)} {v}" for k, v in list(slots["counts"].items())[:12])
        more = ", …" if len(slots["counts"]) > 12 else ""
        lines.append(f"slots: {len(slots['counts'])} type(s), {slots['spans']} span(s) in "
                     f"{slots['examples_with_slots']} example(s)"
                     + (f" ({shown}{more})" if shown else ""))
        if slots["unseen_value_rate"] is not None:
            rows = ", ".join(f"{safe(r['slot'])} {r['unseen']}/{r['test_spans']}"
                             for r in slots["unseen_values"][:8])
            lines.append(f"unseen slot values in test (informative): "
                         f"{slots['unseen_value_rate']:.0%} of spans ({rows})")
    if report.get("note"):
        lines.append(f"note: {safe(report['note'])}")
    return lines


def _tools_footer(tools: dict | None) -> list[str]:
    """One line: dialogues with tools, calls (per tool), results, the tools file."""
    if not tools:
        return []
    s = tools["summary"]
    per_tool = ", ".join(f"{safe(name)} {n}" for name, n in list(s["per_tool"].items())[:8])
    more = ", …" if len(s["per_tool"]) > 8 else ""
    source = f"; tools file {safe(s['tools_file'])}" if s.get("tools_file") else ""
    return [f"tools: {s['dialogues_with_tools']} dialogue(s) with tools, {s['calls']} call(s) "
            f"in {s['dialogues_with_calls']} dialogue(s)" + (f" ({per_tool}{more})"
                                                             if per_tool else "")
            + f", {s['results']} result(s){source}"]


def write_json(report: dict, path: str | Path) -> None:
    """The report as JSON; lone surrogates from odd input are kept as JSON escapes.
    Missing parent folders are created."""
    def write(handle):
        json.dump(report, handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    write_atomic(prepare_output(path), write)


_CSS = """body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}
table{border-collapse:collapse;width:100%;margin-bottom:1.5em}
td,th{border:1px solid #ddd;padding:4px 8px;text-align:left;vertical-align:top;font-size:14px}
th{background:#f4f4f4}.zero{color:#2a7}.some{color:#c33;font-weight:bold}
.bar{background:#69c;height:10px;display:inline-block}"""


def render_html(report: dict) -> str:
    """A single self-contained page: counts, then one table per finding kind."""
    e = html.escape
    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>data check: "
             f"{e(safe(report['file']))}</title><style>{_CSS}</style></head><body>",
             f"<h1>data check: {e(safe(report['file']))}</h1>",
             f"<p>{e(report['kind'])} data, {e(report['format'])}, {report['records']:,} "
             f"records. {e(' · '.join(_footer(report)))}</p>", "<table><tr><th>Finding</th>"
             "<th>Count</th></tr>"]
    found_sections = sections(report)
    for key, title, found in found_sections:
        count = report["counts"].get(key, len(found))
        css = "some" if count else "zero"
        parts.append(f"<tr><td><a href='#{key}'>{e(title)}</a></td>"
                     f"<td class='{css}'>{count}</td></tr>")
    parts.append("</table>")
    for key, title, found in found_sections:
        if found:
            parts.append(_html_section(key, title, found))
    parts.append(_html_labels(report.get("label_counts") or {}))
    parts.append(_html_slots(report.get("slots")))
    parts.append("</body></html>")
    return "\n".join(parts)


def _html_section(key: str, title: str, found: list[dict]) -> str:
    e = html.escape
    rows = "".join(f"<tr><td>{e(where(f))}</td><td>{e(what(f))}</td></tr>"
                   for f in found[:HTML_ROWS])
    more = f"<p>{len(found) - HTML_ROWS} more in the JSON report.</p>" \
        if len(found) > HTML_ROWS else ""
    return (f"<h2 id='{key}'>{e(title)} ({len(found)})</h2><table><tr><th>Where</th>"
            f"<th>What</th></tr>{rows}</table>{more}")


def _html_labels(counts: dict[str, int]) -> str:
    if not counts:
        return ""
    top = max(counts.values())
    rows = "".join(f"<tr><td>{html.escape(safe(label))}</td><td>{n}</td><td><span class='bar' "
                   f"style='width:{int(300 * n / top)}px'></span></td></tr>"
                   for label, n in counts.items())
    return f"<h2 id='labels'>Examples per label</h2><table>{rows}</table>"


def _html_slots(slots: dict | None) -> str:
    """Spans per slot type (with distinct values), then unseen test values per slot."""
    if not slots or not slots["counts"]:
        return ""
    e, top = html.escape, max(slots["counts"].values())
    rows = "".join(f"<tr><td>{e(safe(slot))}</td><td>{n}</td>"
                   f"<td>{slots['values'].get(slot, 0)}</td><td><span class='bar' "
                   f"style='width:{int(300 * n / top)}px'></span></td></tr>"
                   for slot, n in slots["counts"].items())
    out = (f"<h2 id='slots'>Spans per slot type</h2><table><tr><th>Slot</th><th>Spans</th>"
           f"<th>Distinct values</th><th></th></tr>{rows}</table>")
    if slots["unseen_values"]:
        rows = "".join(f"<tr><td>{e(safe(r['slot']))}</td><td>{r['unseen']}/"
                       f"{r['test_spans']}</td><td>{r['rate']:.0%}</td>"
                       f"<td>{e(safe(', '.join(r['examples'])))}</td></tr>"
                       for r in slots["unseen_values"])
        out += (f"<h2 id='unseen_values'>Test slot values unseen in training "
                f"(informative)</h2><table><tr><th>Slot</th><th>Unseen</th><th>Rate</th>"
                f"<th>Examples</th></tr>{rows}</table>")
    return out


def write_html(report: dict, path: str | Path) -> None:
    """The HTML page; missing parent folders are created."""
    page = render_html(report)
    write_atomic(prepare_output(path), lambda handle: handle.write(page))
