"""The cell runner ``compare`` and ``curve`` share: one configuration trained into
``DIR/cells/<name>/`` by the existing pipeline, evaluated on the study's test data, and
recorded as one row.

Each cell runs in a child process (``python -m dialogtune.study.child CELL_DIR``):

- **peak memory** is the child's own: it reads ``VmHWM`` from ``/proc/self/status`` right
  after training (the high-water mark of resident memory of that process image, model
  loading included). Not ``os.wait4``'s ``ru_maxrss``: Linux carries the parent's peak
  into a child started by fork/vfork + exec, so a parent that had loaded 800 MB reported
  ~830 MB for a child that used 10 MB (measured here). Elsewhere the child's ``ru_maxrss``.
- **resume**: a cell whose ``cell.json`` exists is not rerun (its settings and data digests
  must match, else the study stops in one line); a cell with trained weights is only
  evaluated; a cell with a checkpoint continues with ``train --resume``; anything else
  trains from scratch.
- a failing cell stops the study with its one-line error and the path of its log; the
  cells finished before it are kept.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from ..atomic import write_text_atomic
from ..config import RunConfig, load_config
from ..errors import ConfigError, DataError, DialogtuneError
from ..runs.fingerprint import content_digest


@dataclass(frozen=True)
class CellDir:
    """The files of one cell: the run's own files plus what the study adds beside them."""

    path: Path

    @property
    def request(self) -> Path:
        """The settings the cell is trained with (``dialogtune train --config`` repeats it)."""
        return self.path / "request.yaml"

    @property
    def spec(self) -> Path:
        """What the child needs besides the settings: test data, row labels, data digests."""
        return self.path / "cell_spec.json"

    @property
    def row(self) -> Path:
        """The finished cell's row: its presence marks the cell done."""
        return self.path / "cell.json"

    @property
    def peak(self) -> Path:
        return self.path / "train_peak.json"

    @property
    def log(self) -> Path:
        return self.path / "cell.log"

    @property
    def eval_metrics(self) -> Path:
        return self.path / "eval" / "metrics.json"


@dataclass(frozen=True)
class Cell:
    """One configuration of a study: ``settings`` (a config in ``--config`` form), the
    test data, and the labels its row starts with (model, strategy, seed, size …)."""

    name: str
    settings: dict[str, Any]
    eval_data: str
    labels: dict[str, Any] = field(default_factory=dict)


def slug(text: str) -> str:
    """A file-name-safe form of a model name or path; paths and hub ids get a short hash
    of the whole text, so two folders both named ``model`` stay two cells."""
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", str(text).rstrip("/").split("/")[-1]) or "model"
    if "/" in str(text) or os.sep in str(text):
        name += "-" + hashlib.sha256(str(text).encode()).hexdigest()[:6]
    return name


def require_files(*paths: str) -> None:
    """Stop before any training when a data file or folder is missing."""
    for path in paths:
        if not Path(path).exists():
            raise DataError("file not found", str(path))


def base_config(task: str, train: str, config: Path | None, overrides: list[str],
                epochs: float | None, **values: Any) -> RunConfig:
    """The study's common settings: the config file, the options (``--epochs``, dotted
    ``values``), then ``--set`` (last)."""
    return load_config(config, overrides, task=task,
                       **{"data.train": train, "train.epochs": epochs, **values})


def cell_settings(base: RunConfig, values: dict[str, Any]) -> dict[str, Any]:
    """``base`` in ``--config`` form (only what was set, so task defaults still apply) with
    ``values`` (dotted keys) set; ``strategy.*`` settings the cell's strategy does not read
    are dropped (a ``--set lora_r=4`` applies to the lora cells, not to the full ones)."""
    from ..strategies import get_strategy

    raw = base.model_dump(mode="json", exclude_unset=True)
    for dotted, value in values.items():
        *sections, key = dotted.split(".")
        node = raw
        for section in sections:
            node = node.setdefault(section, {})
        node[key] = value
    strategy = raw.get("strategy", {})
    if strategy.get("name"):
        reads = get_strategy(strategy["name"]).settings
        raw["strategy"] = {k: v for k, v in strategy.items() if k == "name" or k in reads}
    return raw


def seed_values(base: RunConfig, count: int) -> list[int]:
    """``count`` training seeds from the configured one (42 unless ``--set train.seed``)."""
    if count < 1:
        raise ConfigError(f"--seeds must be at least 1, got {count}")
    return [base.train.seed + i for i in range(count)]


def split_seed(base: RunConfig) -> int:
    """The validation split's seed, the same in every cell: ``data.split_seed`` when set,
    else the configured training seed (so the first seed's cell equals a plain ``train`` run)."""
    return base.train.seed if base.data.split_seed is None else base.data.split_seed


def run_cells(cells: list[Cell], output: Path, on_rows: Callable[[list[dict]], None],
              description: str) -> list[dict]:
    """Every cell's row, in order: finished cells read back, the others run one at a
    time; ``on_rows`` gets the rows so far after each cell (to write the study's JSON).
    Every unfinished cell's settings are checked before the first one trains."""
    from tqdm.auto import tqdm

    planned = []
    for cell in cells:
        folder, spec = CellDir(output / "cells" / cell.name), cell_spec(cell)
        row = finished_row(folder, spec)
        planned.append((cell, folder, row or prepare(folder, spec)))
    rows: list[dict] = []
    for cell, folder, done in tqdm(planned, desc=description, unit="cell",
                                   disable=len(cells) < 2):
        rows.append(done or run_child(cell, folder))
        on_rows(rows)
    return rows


def cell_spec(cell: Cell) -> dict:
    """What defines a cell's result: its settings, test data, labels and data digests."""
    return {"eval_data": cell.eval_data, "labels": cell.labels,
            "settings": cell.settings, "digests": data_digests(cell.settings, cell.eval_data)}


def prepare(folder: CellDir, spec: dict) -> None:
    """Write the cell's request (checked now: a bad setting stops the study in one line
    before anything trains) and its spec."""
    folder.path.mkdir(parents=True, exist_ok=True)
    request = {**spec["settings"], "output": str(folder.path)}
    write_text_atomic(folder.request, yaml.safe_dump(request, sort_keys=False))
    load_config(folder.request)
    write_json(folder.spec, spec)


def data_digests(settings: dict, eval_data: str) -> dict[str, str | None]:
    """SHA-256 of the training and test data: a cell is reused only on the same data."""
    train = settings.get("data", {}).get("train")
    return {"train": train and content_digest(Path(train)),
            "eval": content_digest(Path(eval_data))}


def finished_row(folder: CellDir, spec: dict) -> dict | None:
    """The row of a cell finished earlier with these settings and data; None if not run."""
    if not folder.row.exists():
        return None
    row = json.loads(folder.row.read_text(encoding="utf-8"))
    for key in ("settings", "digests"):
        if row.get(key) != spec[key]:
            raise DialogtuneError(
                f"{folder.path}: this cell was run with other {key} "
                f"({first_change(row.get(key), spec[key])}); write the study to another "
                "--output, or delete the cell to rerun it")
    return row


def first_change(old: Any, new: Any, prefix: str = "") -> str:
    """The first difference between two nested values, as ``key: old → new``."""
    if isinstance(old, dict) and isinstance(new, dict):
        for key in sorted(set(old) | set(new)):
            if old.get(key) != new.get(key):
                return first_change(old.get(key), new.get(key), f"{prefix}{key}.")
    return f"{prefix.rstrip('.')}: {old!r} → {new!r}"


def run_child(cell: Cell, folder: CellDir) -> dict:
    """Train, evaluate and time one cell in a child process; its output goes to its log."""
    import dialogtune

    env = dict(os.environ)
    package_root = str(Path(dialogtune.__file__).resolve().parents[1])
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [package_root, env.get("PYTHONPATH")]))
    with folder.log.open("a", encoding="utf-8") as log:
        child = subprocess.Popen([sys.executable, "-m", "dialogtune.study.child",
                                  str(folder.path)], stdout=log, stderr=subprocess.STDOUT,
                                 env=env)
        try:
            code = child.wait()
        except KeyboardInterrupt:  # the child got the same Ctrl-C: let it save and stop
            child.wait()
            raise
    if code != 0 or not folder.row.exists():
        raise DialogtuneError(f"cell {cell.name} failed: {last_error(folder.log)} "
                              f"(log: {folder.log}); rerun the same command to resume")
    return json.loads(folder.row.read_text(encoding="utf-8"))


def last_error(log: Path) -> str:
    """The child's one-line error (``error: …``), else its last line."""
    lines = [line.strip() for line in log.read_text(encoding="utf-8",
                                                    errors="replace").splitlines()
             if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    return (errors or lines or ["no output"])[-1].removeprefix("error: ")


def write_json(path: Path, data: Any) -> None:
    """Atomic, durable JSON (the study's files are rewritten after every cell)."""
    write_text_atomic(path, json.dumps(data, indent=2))
