"""Pure pieces of the training loop: objectives, schedules, thread choice."""

from __future__ import annotations

import os

import pytest

from dialogtune.resources import CpuSample, ThreadGovernor, available_threads, cgroup_cpu_limit
from dialogtune.resources import others_busy_cores, read_cpu_sample, threads_beside, usable_cores
from dialogtune.config import TrainConfig
from dialogtune.optim import lr_lambda, total_steps
from dialogtune.train import Objective


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


STAT = ("cpu  {a} 0 {b} {c} 0 0 0 0 0 0\ncpu0 {a} 0 0 {c} 0 0 0 0 0 0\n"
        "cpu1 0 0 {b} 0 {d} 0 0 0 0 0\nintr 1 2 3\n")


def test_cpu_sample_sums_the_allowed_cores_and_counts_iowait_as_idle(tmp_path):
    stat = tmp_path / "stat"
    stat.write_text(STAT.format(a=300, b=100, c=700, d=100))
    hertz = os.sysconf("SC_CLK_TCK")
    both = read_cpu_sample(stat, cores={0, 1})
    assert (both.busy_seconds, both.total_seconds, both.cores) == (400 / hertz, 1200 / hertz, 2)
    only_first = read_cpu_sample(stat, cores={0})
    assert (only_first.busy_seconds, only_first.total_seconds) == (300 / hertz, 1000 / hertz)
    assert read_cpu_sample(tmp_path / "missing") is None


def sample(busy: float, total: float, own: float, cores: int = 2) -> CpuSample:
    return CpuSample(busy, total, own, cores)


@pytest.mark.parametrize("busy, own, others", [
    (0.0, 0.0, 0.0),    # idle machine
    (2.0, 2.0, 0.0),    # we kept both cores busy ourselves: nobody else is there
    (2.0, 1.0, 1.0),    # another job took one core's worth beside our one thread
    (2.0, 0.0, 2.0)])   # two other jobs, we were idle
def test_others_load_is_all_busy_time_minus_our_own(busy, own, others):
    # 1 s of wall time on 2 cores: 2 s of total CPU time
    assert others_busy_cores(sample(0, 0, 0), sample(busy, 2.0, own)) == pytest.approx(others)


def test_threads_leave_the_others_cores_but_never_exceed_the_quota():
    assert threads_beside(0.0, 2, 2) == 2
    assert threads_beside(0.9, 2, 2) == 1
    assert threads_beside(5.0, 2, 2) == 1
    assert threads_beside(30.0, 64, 2) == 2  # a 2-CPU quota on a 64-core host half busy


def test_available_threads_samples_the_load_now_not_the_load_average(monkeypatch):
    import dialogtune.resources as resources

    monkeypatch.setattr(os, "getloadavg", lambda: (8.0, 8.0, 8.0))  # the previous command
    monkeypatch.setattr(resources, "usable_cores", lambda: 2)
    idle = iter([sample(10.0, 100.0, 1.0), sample(10.0, 100.6, 1.0)])
    monkeypatch.setattr(resources, "read_cpu_sample", lambda: next(idle))
    assert available_threads(sample_seconds=0) == 2
    busy = iter([sample(10.0, 100.0, 1.0), sample(10.6, 100.6, 1.0)])
    monkeypatch.setattr(resources, "read_cpu_sample", lambda: next(busy))
    assert available_threads(sample_seconds=0) == 1
    monkeypatch.setattr(resources, "read_cpu_sample", lambda: None)  # no /proc/stat
    assert available_threads(sample_seconds=0) == 1


def test_thread_governor_steps_down_beside_a_new_job_and_back_up_after_it():
    clock, threads = [0.0], []
    samples = iter([sample(0, 0, 0),
                    sample(2.0, 2.0, 1.0),    # 1 s: another job took a core
                    sample(2.5, 4.0, 1.5),    # 2 s: it is gone, we ran alone on one thread
                    sample(4.5, 6.0, 3.5)])
    governor = ThreadGovernor(every_seconds=1.0, cores=2, sample=lambda: next(samples),
                              set_threads=threads.append, clock=lambda: clock[0])
    governor(1)
    assert threads == []  # not yet time to look
    for now in (1.0, 2.0, 3.0):
        clock[0] = now
        governor(int(now))
    assert threads == [1, 2, 2]


def test_real_available_threads_stays_within_the_cores():
    assert 1 <= available_threads(sample_seconds=0.05) <= usable_cores()


@pytest.mark.parametrize("value, expected", [("1", 1), ("4", 4), ("", None), ("0", None),
                                             ("two", None)])
def test_omp_num_threads_is_the_users_choice(value, expected, monkeypatch):
    from dialogtune.resources import threads_from_environment

    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert threads_from_environment() == expected


@pytest.mark.parametrize("per_epoch, expected", [
    (119, 476),   # CrossWOZ intents: 4 short epochs fit the budget
    (313, 626),   # BANKING77: cut to the budget, but never below 2 epochs
    (200, 600),   # cut to the budget between 2 and 4 epochs
    (25, 100),    # 10 examples per intent: min_steps still lifts tiny data
])
def test_the_step_budget_shortens_long_epochs_only(per_epoch, expected):
    cfg = TrainConfig(epochs=4, step_budget=600, min_epochs=2, min_steps=100)
    assert total_steps(per_epoch, cfg) == expected
    assert total_steps(313, TrainConfig(epochs=4)) == 4 * 313  # no budget: every epoch


def test_epochs_the_user_sets_are_never_cut_by_the_tasks_budget():
    from dialogtune.config import load_config
    from dialogtune.tasks import get_task

    intent = get_task("intent")
    default = intent.resolve(load_config(None, [], task="intent", **{"data.train": "x.csv"}))
    assert (default.train.epochs, default.train.step_budget) == (4, 600)
    chosen = intent.resolve(load_config(None, ["train.epochs=5"], task="intent",
                                        **{"data.train": "x.csv"}))
    assert (chosen.train.epochs, chosen.train.step_budget) == (5, 0)
    both = intent.resolve(load_config(None, ["train.epochs=5", "train.step_budget=900"],
                                      task="intent", **{"data.train": "x.csv"}))
    assert both.train.step_budget == 900
