"""``dialogtune curve``: the learning curve — how quality grows with training data — and
the data needed to reach a target.

Each point is a cell (``cells.py``, resumable) trained on a subsample of the training file:
``--shots K`` keeps K examples of each intent, ``--fractions f`` keeps a fraction ``f`` of
each intent (at least one each); unlabelled data (dialogues) is subsampled as one group.
Seed ``s`` draws the subsample *and* seeds the training, so the spread at a size covers
both which examples were drawn and how training went (at fraction 1 only the latter).
The validation split inside each subsample uses one seed for every cell (``data.split_seed``).
The subsamples are written in the training file's own format to ``DIR/data/``.
"""

from __future__ import annotations

import statistics
from collections import defaultdict
from pathlib import Path

from ..errors import ConfigError, DataError
from .cells import (Cell, base_config, cell_settings, require_files, run_cells, seed_values,
                    split_seed, write_json)
from .fit import estimate, fit_power_law
from .plots import plot_curve
from .report import higher_is_better, quality_metric

DEFAULT_FRACTIONS = "0.1,0.25,0.5,1"


def size_plan(fractions: str | None, shots: str | None) -> list[tuple[str, float]]:
    """(``shots`` | ``fraction``, value) per curve size, checked, smallest first."""
    if fractions and shots:
        raise ConfigError("give --fractions or --shots, not both")
    kind, text = ("shots", shots) if shots else ("fraction", fractions or DEFAULT_FRACTIONS)
    flag = "--shots" if shots else "--fractions"
    try:
        values = sorted({float(part) for part in text.split(",") if part.strip()})
    except ValueError:
        raise ConfigError(f"{flag} {text}: expected comma-separated numbers") from None
    if not values:
        raise ConfigError(f"{flag}: give at least one size")
    for value in values:
        if kind == "fraction" and not 0 < value <= 1:
            raise ConfigError(f"--fractions: {value:g} is outside (0, 1]")
        if kind == "shots" and (value < 1 or value != int(value)):
            raise ConfigError(f"--shots: {value:g} is not a whole number of at least 1")
    return [(kind, int(v) if kind == "shots" else v) for v in values]


def subsample(source: str, kind: str, value: float, seed: int,
              folder: Path) -> tuple[Path, int, int]:
    """Write one subsample of ``source`` in its own format; (file, examples, labels)."""
    from ..data.transform.convert import read_for_conversion
    from ..data.transform.split import fraction_indices, sample_indices
    from ..data.transform.writers import write_like

    loaded = read_for_conversion(source)
    labels = [getattr(record, "label", None) for record in loaded.records]
    if kind == "shots":
        if all(label is None for label in labels):
            raise DataError("--shots draws K examples per intent, so it needs labelled data; "
                            "use --fractions", source)
        chosen = sample_indices(labels, int(value), seed)
    else:
        chosen = fraction_indices(labels, value, seed)
    suffix = {"csv": ".csv", "array": ".json"}.get(loaded.container, ".jsonl")
    path = folder / f"{kind}{value:g}_seed{seed}{suffix}"
    folder.mkdir(parents=True, exist_ok=True)
    write_like(loaded, [loaded.raws[i] for i in chosen], path)
    return path, len(chosen), len({label for label in labels if label is not None})


def curve_cells(task: str, train: str, eval_data: str, plan: list[tuple[str, float]],
                seeds: int, output: Path, config: Path | None, overrides: list[str],
                epochs: float | None, model: str | None, strategy: str | None
                ) -> tuple[list[Cell], int]:
    """One cell per size and seed, its subsample written; and the number of labels."""
    require_files(train, eval_data)
    base = base_config(task, train, config, overrides, epochs,
                       **{"model.name": model, "strategy.name": strategy})
    resolved = base.resolved()
    split, cells, labels = split_seed(base), [], 0
    for kind, value in plan:
        for seed in seed_values(base, seeds):
            path, size, labels = subsample(train, kind, value, seed, output / "data")
            settings = cell_settings(base, {"data.train": str(path), "train.seed": seed,
                                            "data.split_seed": split})
            cells.append(Cell(f"{kind}{value:g}__seed{seed}", settings, eval_data,
                              {"model": resolved.model.name, "strategy": resolved.strategy.name,
                               "seed": seed, kind: value, "size": size}))
    return cells, labels


def summarise(rows: list[dict], metric: str) -> tuple[list[dict], list[dict]]:
    """(every point, per size: mean, standard deviation, min, max, seeds)."""
    points = [{"size": r["size"], "seed": r["seed"], "value": r["metrics"][metric],
               "train_examples": r["train_examples"], "train_seconds": r["train_seconds"],
               **{k: r[k] for k in ("shots", "fraction") if k in r}} for r in rows]
    groups: dict[int, list[float]] = defaultdict(list)
    for p in points:
        groups[p["size"]].append(p["value"])
    sizes = [{"size": size, "mean": statistics.fmean(values),
              "std": statistics.stdev(values) if len(values) > 1 else 0.0,
              "min": min(values), "max": max(values), "seeds": len(values)}
             for size, values in sorted(groups.items())]
    return points, sizes


def run_curve(task: str, train: str, eval_data: str, output: str | Path,
              fractions: str | None = None, shots: str | None = None, seeds: int = 3,
              target: float | None = None, metric: str | None = None,
              epochs: float | None = None, config: Path | None = None,
              overrides: list[str] | None = None, model: str | None = None,
              strategy: str | None = None) -> dict:
    """Train every point (finished ones read back), fit the curve, estimate the examples
    needed for ``target``; writes ``curve.json`` (after every cell) and ``curve.png``."""
    out = Path(output)
    cells, labels = curve_cells(task, train, eval_data, size_plan(fractions, shots), seeds,
                                out, config, overrides or [], epochs, model, strategy)
    curve = {"task": task, "train": str(train), "eval_data": str(eval_data), "labels": labels}

    def save(rows: list[dict]) -> None:
        chosen = quality_metric(rows, metric)
        points, sizes = summarise(rows, chosen)
        curve.update(metric=chosen, higher_is_better=higher_is_better(chosen),
                     model=rows[0]["model"], strategy=rows[0]["strategy"], points=points,
                     sizes=sizes)
        write_json(out / "curve.json", curve)

    run_cells(cells, out, save, "curve")
    pairs = [(p["size"], p["value"]) for p in curve["points"]]
    rising = curve["higher_is_better"]
    curve["fit"] = fit_power_law([s for s, _ in pairs], [v for _, v in pairs], rising)
    curve["estimate"] = estimate(pairs, target, rising) if target is not None else None
    if curve["estimate"] and curve["estimate"]["examples"] and labels:
        curve["estimate"]["examples_per_label"] = round(curve["estimate"]["examples"] / labels, 1)
    write_json(out / "curve.json", curve)
    plot_curve(curve, out / "curve.png")
    return curve
