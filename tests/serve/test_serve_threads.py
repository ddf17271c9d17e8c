"""The server's torch thread counts: fixed when asked, else following other jobs' load
(``serve.nlu.torch_threads``), so generating beside a training run does not slow both."""

from __future__ import annotations

import threading

import pytest
import torch

from dialogtune.commands.serve import build_settings
from dialogtune.errors import DialogtuneError
from dialogtune.resources import CpuSample, ThreadGovernor
from dialogtune.serve.nlu import torch_threads


@pytest.fixture
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_a_fixed_count_is_set_in_the_calling_thread(restore_threads):
    torch_threads(1)()
    assert torch.get_num_threads() == 1


def test_generation_threads_step_down_beside_another_job_and_back_up(restore_threads):
    clock = [0.0]
    samples = iter([CpuSample(0, 0, 0, 2),
                    CpuSample(2.0, 2.0, 1.0, 2),    # 1 s: another job kept a core busy
                    CpuSample(3.0, 4.0, 2.0, 2)])   # 2 s: it ended; only we were busy
    governor = ThreadGovernor(every_seconds=1.0, cores=2, sample=lambda: next(samples),
                              clock=lambda: clock[0])
    apply = torch_threads(None, governor)
    apply()
    assert torch.get_num_threads() == 2  # before the first look: every core
    clock[0] = 1.0
    apply()
    assert torch.get_num_threads() == 1
    clock[0] = 1.5
    apply()  # not yet time to look again: the count holds, no sample read
    assert torch.get_num_threads() == 1
    clock[0] = 2.0
    apply()
    assert torch.get_num_threads() == 2


def test_each_worker_thread_gets_the_count_decided_once(restore_threads):
    """torch's count is per OS thread: a thread that did not measure still applies it."""
    clock = [0.0]
    samples = iter([CpuSample(0, 0, 0, 2), CpuSample(2.0, 2.0, 1.0, 2)])
    governor = ThreadGovernor(every_seconds=1.0, cores=2, sample=lambda: next(samples),
                              clock=lambda: clock[0])
    apply = torch_threads(None, governor)
    clock[0] = 1.0
    apply()  # this thread measures: one core is taken
    seen = []
    worker = threading.Thread(target=lambda: (apply(), seen.append(torch.get_num_threads())))
    worker.start()
    worker.join()
    assert seen == [1]


def test_generation_threads_below_one_are_refused():
    with pytest.raises(DialogtuneError, match="--generation-threads"):
        build_settings(generation_threads=0)
    assert build_settings(generation_threads=2).generation_threads == 2
    assert build_settings().generation_threads is None
