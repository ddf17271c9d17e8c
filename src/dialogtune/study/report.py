"""What a study's rows become for people: the quality metric chosen, rows ranked, the
markdown table of ``compare.md``."""

from __future__ import annotations

import statistics
from collections import defaultdict

from ..errors import ConfigError

# The headline metric when --metric is not given: the first every row reports. Intent and
# NLU evaluations report accuracy; chat evaluations perplexity.
PRIMARY = ("accuracy", "perplexity")
LOWER_IS_BETTER = frozenset({"perplexity", "nll", "loss"})


def quality_metric(rows: list[dict], chosen: str | None = None) -> str:
    """``chosen`` when every row reports it, else the first of ``PRIMARY`` they all do."""
    common = set.intersection(*(set(r["metrics"]) for r in rows)) if rows else set()
    if chosen is not None:
        if chosen not in common:
            raise ConfigError(f"--metric {chosen}: not reported by every cell; choose one of "
                              f"{', '.join(sorted(common)) or 'none'}")
        return chosen
    found = next((name for name in PRIMARY if name in common), None)
    if found is None:
        raise ConfigError("the evaluations report no common quality metric; name one with "
                          "--metric")
    return found


def higher_is_better(metric: str) -> bool:
    return metric not in LOWER_IS_BETTER


def ranked(rows: list[dict], metric: str) -> list[dict]:
    """Best first."""
    sign = -1 if higher_is_better(metric) else 1
    return sorted(rows, key=lambda r: sign * r["metrics"][metric])


def _number(value, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.0f}"


def markdown_table(rows: list[dict], metric: str) -> str:
    """One line per cell, best first: quality, size, cost."""
    names = [m for m in rows[0]["metrics"] if all(m in r["metrics"] for r in rows)]
    head = (["model", "strategy", "seed"] + names +
            ["trainable", "total", "trainable %", "train s", "peak MiB", "p50 ms"])
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in ranked(rows, metric):
        share = 100 * r["trainable_parameters"] / max(1, r["total_parameters"])
        cells = ([r["model"], r["strategy"], str(r["seed"])] +
                 [_number(r["metrics"][m]) for m in names] +
                 [_number(r["trainable_parameters"]), _number(r["total_parameters"]),
                  f"{share:.2f}", _number(r["train_seconds"]), _number(r["peak_memory_mib"]),
                  _number(r["p50_latency_ms"])])
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def seed_summary(rows: list[dict], metric: str) -> list[dict]:
    """Per model and strategy: the metric's mean and standard deviation over seeds, and
    the mean train seconds; best mean first."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for r in rows:
        groups[(r["model"], r["strategy"])].append(r)
    summary = [{"model": model, "strategy": strategy, "seeds": len(group),
                "mean": statistics.fmean(r["metrics"][metric] for r in group),
                "std": statistics.stdev([r["metrics"][metric] for r in group])
                if len(group) > 1 else 0.0,
                "train_seconds": statistics.fmean(r["train_seconds"] for r in group)}
               for (model, strategy), group in groups.items()]
    sign = -1 if higher_is_better(metric) else 1
    return sorted(summary, key=lambda s: sign * s["mean"])


def compare_markdown(study: dict) -> str:
    """``compare.md``: what was compared on what, the ranked table, the seed summary."""
    rows, metric = study["rows"], study["quality_metric"]
    direction = "higher" if study["higher_is_better"] else "lower"
    text = [f"# Comparison: {study['task']}", "",
            f"Trained on `{study['train']}`, evaluated on `{study['eval_data']}`; every cell "
            f"holds out the same validation split (seed {study['validation_split_seed']}). "
            f"Ranked by {metric} ({direction} is better). Latency: "
            f"{rows[0]['latency_measure']}.", "", markdown_table(rows, metric)]
    if any(s["seeds"] > 1 for s in seed_summary(rows, metric)):
        text += ["", f"## {metric} over seeds", "",
                 "| model | strategy | seeds | mean | std | mean train s |",
                 "|---|---|---|---|---|---|"]
        text += [f"| {s['model']} | {s['strategy']} | {s['seeds']} | {s['mean']:.4f} | "
                 f"{s['std']:.4f} | {s['train_seconds']:.1f} |"
                 for s in seed_summary(rows, metric)]
    return "\n".join(text) + "\n"
