"""``dialogtune compare``: models × strategies × seeds on one data set, each cell trained
and evaluated the same way, then ranked (``compare.json``, ``compare.md``, ``compare.png``).

The same split for every cell: the test data is given (``--eval-data``), and the
validation split held out of the training data for best-epoch choice uses one seed in
every cell (``data.split_seed``, default the configured ``train.seed``). ``--seeds N``
varies only the training seed (initialisation, dropout, batch order): seeds ``s … s+N-1``
from the configured ``train.seed`` ``s`` (42 by default).
"""

from __future__ import annotations

from pathlib import Path

from ..atomic import write_text_atomic
from ..errors import ConfigError
from .cells import (Cell, base_config, cell_settings, require_files, run_cells, seed_values,
                    slug, split_seed, write_json)
from .plots import plot_compare
from .report import compare_markdown, higher_is_better, quality_metric


def parse_list(text: str | list[str] | None, flag: str) -> list[str]:
    """``a,b`` (or repeated flags) → ["a", "b"]; an empty list is refused in one line."""
    parts = text if isinstance(text, list) else [text or ""]
    items = [item.strip() for part in parts for item in part.split(",") if item.strip()]
    if not items:
        raise ConfigError(f"{flag}: give at least one, comma-separated")
    return items


def check_strategies(strategies: list[str]) -> None:
    from ..strategies import names

    unknown = [s for s in strategies if s not in names()]
    if unknown:
        raise ConfigError(f"--strategies: unknown strategy '{unknown[0]}'; choose from "
                          f"{', '.join(names())}")


def compare_cells(task: str, train: str, eval_data: str, models: list[str],
                  strategies: list[str], seeds: int, config: Path | None,
                  overrides: list[str], epochs: float | None) -> tuple[list[Cell], int]:
    """The cells, in model, strategy, seed order, and the shared validation split seed."""
    check_strategies(strategies)
    require_files(train, eval_data)
    base = base_config(task, train, config, overrides, epochs)
    split = split_seed(base)
    cells = [Cell(f"{slug(model)}__{strategy}__seed{seed}",
                  cell_settings(base, {"model.name": model, "strategy.name": strategy,
                                       "train.seed": seed, "data.split_seed": split}),
                  eval_data, {"model": model, "strategy": strategy, "seed": seed})
             for model in models for strategy in strategies
             for seed in seed_values(base, seeds)]
    return cells, split


def run_compare(task: str, train: str, eval_data: str, models: str | list[str],
                strategies: str | list[str], output: str | Path, seeds: int = 1,
                epochs: float | None = None, config: Path | None = None,
                overrides: list[str] | None = None, metric: str | None = None) -> dict:
    """Train and evaluate every cell (finished ones are read back); writes
    ``compare.json`` after each cell and ``compare.md`` / ``compare.png`` at the end.
    Returns the study (what ``compare.json`` holds)."""
    out = Path(output)
    cells, split = compare_cells(task, train, eval_data, parse_list(models, "--models"),
                                 parse_list(strategies, "--strategies"), seeds, config,
                                 overrides or [], epochs)
    study = {"task": task, "train": str(train), "eval_data": str(eval_data),
             "validation_split_seed": split, "quality_metric": None,
             "higher_is_better": None, "rows": []}

    def save(rows: list[dict]) -> None:
        chosen = quality_metric(rows, metric)
        study.update(rows=rows, quality_metric=chosen, higher_is_better=higher_is_better(chosen))
        write_json(out / "compare.json", study)

    run_cells(cells, out, save, "compare")
    write_text_atomic(out / "compare.md", compare_markdown(study))
    plot_compare(study["rows"], study["quality_metric"], out / "compare.png")
    return study
