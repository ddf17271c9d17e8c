"""``dialogtune data split`` and ``data sample``: seeded train/test splits and K-shot subsets.

Intent data is split per intent (stratified), so every intent with two or more examples
has at least one in each part. Dialogue data is split by dialogue: records that share a
conversation id (``--group-by``, or the first of ``GROUP_FIELDS`` present) stay on one
side, so no conversation straddles the split; a record without one is its own group.
Both write the input's own format with every field kept, records in file order.
"""

from __future__ import annotations

import random
from collections import defaultdict
from pathlib import Path

from ...errors import DataError
from ..formats import Loaded
from ..records import Utterance
from .convert import read_for_conversion
from .writers import ensure_writable, refuse_same_file, write_like

GROUP_FIELDS = ("dialogue_id", "conversation_id", "conv_id", "session_id", "thread_id")


def stratified_indices(labels: list[str], fraction: float, seed: int
                       ) -> tuple[list[int], list[int]]:
    """(kept, held) indices: ``fraction`` of each label held out, at least one where a
    label has 2+ examples and never all of it; ``fraction`` 0 holds out nothing.

    The one stratified splitter: ``data split`` and training's validation split use it, so
    the same seed holds out the same records. Indices come in draw order (labels sorted,
    each shuffled); ``data split`` writes them in file order. Written here rather than
    with scikit-learn because its stratified split refuses labels with a single example,
    which small domain data sets always have.
    """
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    kept, held = [], []
    for label in sorted(by_label):
        group = by_label[label][:]
        rng.shuffle(group)
        take = 0 if len(group) < 2 or fraction <= 0 else max(1, round(len(group) * fraction))
        take = min(take, len(group) - 1)
        held += group[:take]
        kept += group[take:]
    return kept, held


def stratified_split(records: list[Utterance], fraction: float,
                     seed: int) -> tuple[list[Utterance], list[Utterance]]:
    """(train, validation) records for training (see ``stratified_indices``); ``fraction``
    0 trains on every example, keeping the last weights, with no best-epoch choice and no
    out-of-scope calibration."""
    kept, held = stratified_indices([r.label for r in records], fraction, seed)
    return [records[i] for i in kept], [records[i] for i in held]


def group_keys(raws: list, group_by: str | None) -> list:
    """One group key per record: its conversation id, or its own index when it has none."""
    fields = (group_by,) if group_by else GROUP_FIELDS
    keys = []
    for i, raw in enumerate(raws):
        value = next((raw[f] for f in fields if isinstance(raw, dict) and f in raw), None)
        keys.append(("id", repr(value)) if value is not None else ("row", i))
    return keys


def grouped_indices(keys: list, fraction: float, seed: int) -> list[int]:
    """Indices held out: whole groups, shuffled, until ``fraction`` of records is reached."""
    groups: dict = defaultdict(list)
    for i, key in enumerate(keys):
        groups[key].append(i)
    order = list(groups)
    random.Random(seed).shuffle(order)
    goal, held = fraction * len(keys), []
    for key in order[:-1]:  # the last group always stays in training
        if len(held) >= goal:
            break
        held += groups[key]
    return sorted(held)


def split_loaded(loaded: Loaded, fraction: float, seed: int,
                 group_by: str | None = None) -> tuple[list, list]:
    """(train raws, test raws) of an already-read file."""
    if not 0 < fraction < 1:
        raise DataError(f"--test must be between 0 and 1, got {fraction}")
    if loaded.kind == "intent":
        held = sorted(stratified_indices([r.label for r in loaded.utterances],
                                         fraction, seed)[1])
    else:
        held = grouped_indices(group_keys(loaded.raws, group_by), fraction, seed)
    chosen = set(held)
    train = [raw for i, raw in enumerate(loaded.raws) if i not in chosen]
    return train, [loaded.raws[i] for i in held]


def split_file(source: str | Path, fraction: float, seed: int, output_dir: str | Path,
               group_by: str | None = None) -> dict:
    """Write ``train`` and ``test`` files (same format and suffix) into ``output_dir``."""
    loaded = read_for_conversion(source)
    ensure_writable(loaded)
    train, test = split_loaded(loaded, fraction, seed, group_by)
    suffix = Path(source).suffix or ".csv"
    paths = {name: Path(output_dir) / f"{name}{suffix}" for name in ("train", "test")}
    for name, raws in (("train", train), ("test", test)):
        refuse_same_file(source, paths[name])
        write_like(loaded, raws, paths[name])
    return {"train": len(train), "test": len(test),
            "paths": {k: str(v) for k, v in paths.items()}}


def sample_indices(labels: list[str], shots: int, seed: int) -> list[int]:
    """K examples per label (all of a label with fewer), drawn with ``seed``; file order."""
    if shots < 1:
        raise DataError(f"--shots must be at least 1, got {shots}")
    by_label: dict[str, list[int]] = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    chosen = []
    for label in sorted(by_label):
        group = by_label[label]
        chosen += rng.sample(group, min(shots, len(group)))
    return sorted(chosen)


def sample_file(source: str | Path, shots: int, seed: int, target: str | Path) -> dict:
    """Write a K-shot subset of intent data; reports labels short of K examples."""
    refuse_same_file(source, target)
    loaded = read_for_conversion(source)
    if loaded.kind != "intent":
        raise DataError("--shots samples K examples per intent, so it needs intent data",
                        loaded.path)
    ensure_writable(loaded)
    labels = [r.label for r in loaded.utterances]
    chosen = sample_indices(labels, shots, seed)
    write_like(loaded, [loaded.raws[i] for i in chosen], target)
    counts = defaultdict(int)
    for label in labels:
        counts[label] += 1
    short = sorted(label for label, n in counts.items() if n < shots)
    return {"written": len(chosen), "labels": len(counts), "short_labels": short}


def fraction_indices(labels: list[str | None], fraction: float, seed: int) -> list[int]:
    """``fraction`` of each label's examples (at least one each), drawn with ``seed``; file
    order. Records without labels (dialogues) pass ``None`` and are drawn as one group."""
    if not 0 < fraction <= 1:
        raise DataError(f"a fraction must be in (0, 1], got {fraction}")
    by_label: dict = defaultdict(list)
    for i, label in enumerate(labels):
        by_label[label].append(i)
    rng = random.Random(seed)
    chosen = []
    for label in sorted(by_label, key=str):
        group = by_label[label]
        chosen += rng.sample(group, max(1, round(len(group) * fraction)))
    return sorted(chosen)
