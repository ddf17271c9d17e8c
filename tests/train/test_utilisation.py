"""Model FLOPs utilisation: the first step's FLOPs counted exactly, later steps scaled by
their token positions, and MFU in train_log.jsonl and the run summary."""

from __future__ import annotations

import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import dialogtune.utilisation as utilisation
from dialogtune.config import TrainConfig
from dialogtune.data.encode.chat import encode_dialogues
from dialogtune.data.encode.chat_batches import lm_batches
from dialogtune.data.formats import read_dialogues
from dialogtune.models.lm import lm_loss
from dialogtune.models.loading import load_causal_lm
from dialogtune.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")


def linear_step(layer: torch.nn.Linear, rows: int) -> None:
    layer(torch.randn(rows, layer.in_features)).sum().backward()


@pytest.mark.parametrize("trainable, input_grad, per_weight", [
    (True, False, 4),   # forward 2 + the weight's gradient 2 (a first layer)
    (False, True, 4),   # forward 2 + the input's gradient 2 (a frozen base under LoRA)
    (True, True, 6)])   # both gradients: full fine-tuning of an inner layer
def test_the_first_step_is_counted_exactly(trainable, input_grad, per_weight):
    layer = torch.nn.Linear(32, 16, bias=False).requires_grad_(trainable)
    inputs = torch.randn(8, 32, requires_grad=input_grad)
    meter = utilisation.FlopMeter("fp32")
    with meter.step(positions=8):
        layer(inputs).sum().backward()
    assert meter.per_position == pytest.approx(per_weight * 32 * 16)
    assert meter.flops(positions=3) == pytest.approx(3 * per_weight * 32 * 16)


def test_later_steps_are_not_counted_again():
    meter = utilisation.FlopMeter("fp32")
    layer = torch.nn.Linear(4, 4)
    with meter.step(positions=2):
        linear_step(layer, 2)
    first = meter.per_position
    with meter.step(positions=2):
        linear_step(torch.nn.Linear(64, 64), 2)  # a bigger step: a count would change it
    assert meter.per_position == first


def test_mfu_is_flops_per_second_over_the_measured_peak(monkeypatch):
    monkeypatch.setattr(utilisation, "matmul_peak", lambda precision, device="cpu": 200.0)
    meter = utilisation.FlopMeter("fp32")
    assert meter.mfu(100e9, 2.0) == pytest.approx(0.25)
    assert meter.mfu(0.0, 2.0) is None
    assert meter.summary(100e9, 2.0) == {"mfu": 0.25, "train_flops": 100e9,
                                          "achieved_gflops": 50.0, "peak_gflops": 200.0}
    assert meter.summary(0.0, 1.0) == {"mfu": None}


def test_a_long_run_times_the_peak_again_and_keeps_the_better_figure(monkeypatch):
    """A peak timed on busy cores reads low and would inflate MFU; the end of a long run
    times it again (a short run keeps its start figure, timed moments before)."""
    rates = iter([1000.0, 2000.0, 3000.0, 3300.0])  # start: 512², 2048²; end: the same

    def fake(dtype, device="cpu", size=512, repeats=3):
        return next(rates)

    monkeypatch.setattr(utilisation, "matmul_gflops", fake)
    utilisation.matmul_peak.cache_clear()
    meter = utilisation.FlopMeter("bf16")
    short = meter.summary(100e9, 1.0)
    assert short["peak_gflops"] == 2000.0  # timed once, at start
    long = meter.summary(3300e9 * 60, 120.0)
    assert long["peak_gflops"] == 3300.0 and long["mfu"] == 0.5
    utilisation.matmul_peak.cache_clear()


def test_the_peak_is_timed_large_unless_that_would_be_slow(monkeypatch):
    sizes: list[int] = []

    def fake(dtype, device="cpu", size=512, repeats=3):
        sizes.append(size)
        return rate if size == 512 else 2 * rate

    monkeypatch.setattr(utilisation, "matmul_gflops", fake)
    for rate, expected in [(300.0, 600.0), (0.4, 0.4)]:  # AVX-512 fp32; emulated bf16
        sizes.clear()
        utilisation.matmul_peak.cache_clear()
        assert utilisation.matmul_peak("bf16") == expected
        assert sizes == ([512, 2048] if rate > 1 else [512])
    utilisation.matmul_peak.cache_clear()


def test_a_training_run_logs_mfu_and_counts_every_position(folder, data, tmp_path):
    """Batches of different lengths (padded, not packed): the run's FLOPs are the first
    step's per position times every position fed, and MFU is logged with each loss."""
    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm(folder)
    encoded, _ = encode_dialogues(tokenizer, read_dialogues(data))
    batches = lm_batches(encoded, 2, tokenizer.pad_token_id, 0, pack=False)
    first = batches.collate(batches.plan(0, 0, 1)[0])
    with FlopCounterMode(display=False) as counter:
        lm_loss(model, first).backward()
    model.zero_grad(set_to_none=True)
    per_position = counter.get_total_flops() / first["input_ids"].numel()
    result = fit(model, batches, lm_loss, None,
                 TrainConfig(min_steps=20, max_steps=20, save_every_steps=0, warmup_ratio=0,
                             precision="fp32"), tmp_path, lr=1e-3)
    fed = [i for epoch in range(20) for i in batches.plan(epoch, 0, 1)][:20]
    positions = sum(batches.collate(i)["input_ids"].numel() for i in fed)
    assert result.utilisation["train_flops"] == pytest.approx(per_position * positions, rel=2e-3)
    assert 0 < result.utilisation["mfu"] < 1.5 and result.utilisation["peak_gflops"] > 0
    lines = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [line["step"] for line in lines] == [10, 20]
    assert all(0 < line["mfu"] < 1.5 for line in lines)
