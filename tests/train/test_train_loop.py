"""Pure pieces of the training loop: objectives, schedules, thread choice."""

from __future__ import annotations

import os

import pytest

from dialogtune.resources import available_threads, cgroup_cpu_limit, usable_cores
from dialogtune.train import Objective, lr_lambda


def test_objective_breaks_accuracy_ties_by_validation_loss():
    objective = Objective("accuracy", tie_breaker="loss")
    best = {"accuracy": 0.9, "loss": 0.5}
    assert objective.improved({"accuracy": 0.9, "loss": 0.4}, best)
    assert not objective.improved({"accuracy": 0.9, "loss": 0.6}, best)
    assert objective.improved({"accuracy": 0.91, "loss": 0.9}, best)
    assert not objective.improved({"accuracy": 0.89, "loss": 0.1}, best)
    assert objective.improved({"accuracy": 0.1, "loss": 9.0}, {})


def test_lower_is_better_objective():
    objective = Objective("nll", higher_is_better=False)
    assert objective.improved({"nll": 1.0}, {"nll": 1.5})
    assert not objective.improved({"nll": 1.0}, {"nll": 1.0})


@pytest.mark.parametrize("schedule", ["one-cycle", "linear", "cosine", "constant"])
def test_schedules_warm_up_then_never_exceed_the_peak(schedule):
    factor = lr_lambda(schedule, total=100, warmup=10)
    values = [factor(step) for step in range(100)]
    assert values[0] == pytest.approx(0.1) and values[9] == pytest.approx(1.0)
    assert all(0.0 <= v <= 1.0 for v in values)
    if schedule != "constant":
        assert values[-1] < 0.05 and values[50] < values[10]


def test_available_threads_stays_within_the_cores(monkeypatch):
    cores = usable_cores()
    assert 1 <= cores <= len(os.sched_getaffinity(0))
    monkeypatch.setattr(os, "getloadavg", lambda: (0.0, 0.0, 0.0))
    assert available_threads() == cores
    monkeypatch.setattr(os, "getloadavg", lambda: (cores + 5.0, 0.0, 0.0))
    assert available_threads() == 1


@pytest.mark.parametrize("files, expected", [
    ({"cpu.max": "max 100000\n"}, None),
    ({"cpu.max": "150000 100000\n"}, 2),
    ({"cpu.max": "50000 100000\n"}, 1),
    ({"cpu/cpu.cfs_quota_us": "-1\n", "cpu/cpu.cfs_period_us": "100000\n"}, None),
    ({"cpu/cpu.cfs_quota_us": "400000\n", "cpu/cpu.cfs_period_us": "100000\n"}, 4),
    ({}, None),
])
def test_container_cpu_quota_caps_the_cores(tmp_path, monkeypatch, files, expected):
    for name, text in files.items():
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(text)
    assert cgroup_cpu_limit(tmp_path) == expected
    monkeypatch.setattr("dialogtune.resources.CGROUP_ROOT", tmp_path)
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert usable_cores() == (expected or 8)
