"""Training precision: what ``auto`` picks from the CPU's flags and a measured matmul, and a
bf16 run through the shared loop that keeps float32 master weights and learns."""

from __future__ import annotations

import json

import pytest
import torch

import dialogtune.precision as precision
from dialogtune.config import TrainConfig
from dialogtune.data.encode.chat import encode_dialogues
from dialogtune.data.encode.chat_batches import lm_batches
from dialogtune.data.formats import read_dialogues
from dialogtune.models.lm import lm_loss
from dialogtune.models.loading import load_causal_lm
from dialogtune.train import fit

pytestmark = pytest.mark.usefixtures("one_thread")
AVX2_ONLY = {"model": "AMD EPYC", "flags": ["avx2"]}
AMX = {"model": "Intel(R) Xeon(R) Processor", "flags": ["avx2", "avx512f", "amx_bf16"]}


@pytest.mark.parametrize("asked", ["fp32", "bf16"])
def test_an_explicit_precision_is_kept(asked, monkeypatch):
    monkeypatch.setattr(precision, "measured_peaks", _must_not_probe)
    assert precision.resolve_precision(asked) == asked


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        precision.resolve_precision("fp16")


def test_auto_skips_the_probe_on_x86_without_bf16_instructions(monkeypatch):
    monkeypatch.setattr(precision, "cpu_description", lambda: AVX2_ONLY)
    monkeypatch.setattr(precision, "measured_peaks", _must_not_probe)
    assert precision.resolve_precision("auto") == "fp32"


@pytest.mark.parametrize("peaks, expected", [
    ({"fp32": 380.0, "bf16": 2500.0}, "bf16"),  # AMX, as measured on the Intel machine
    ({"fp32": 380.0, "bf16": 600.0}, "fp32"),   # faster, but not enough to pay the casts
    ({"fp32": 100.0, "bf16": 20.0}, "fp32")])
def test_auto_takes_bf16_only_where_its_matmul_is_twice_as_fast(peaks, expected, monkeypatch):
    monkeypatch.setattr(precision, "cpu_description", lambda: AMX)
    monkeypatch.setattr(precision, "measured_peaks", lambda device="cpu": peaks)
    assert precision.resolve_precision("auto") == expected


def test_the_matmul_probe_measures_a_positive_rate():
    assert precision.matmul_gflops(torch.float32, size=64, repeats=1) > 0


def test_the_probe_leaves_the_global_random_stream_alone():
    """A run that probes and one that reuses the cached figures must draw the same dropout
    masks: on an AMX machine, where ``auto`` probes, resumed runs ended elsewhere."""
    state = torch.get_rng_state()
    precision.matmul_gflops(torch.float32, size=16, repeats=1)
    assert torch.equal(torch.get_rng_state(), state)


def test_cpu_description_reads_the_model_and_the_flags_that_matter(tmp_path):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text("processor\t: 0\nmodel name\t: Example CPU 9000\n"
                       "flags\t\t: fpu sse2 avx2 avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.cpu_description(cpuinfo) == {
        "model": "Example CPU 9000",
        "flags": ["avx2", "avx512f", "avx512_bf16", "amx_bf16", "amx_tile"]}
    assert precision.cpu_description(tmp_path / "missing")["model"] == "unknown"


def test_bf16_training_runs_the_products_in_bf16_and_keeps_float32_weights(
        folder, data, tmp_path):
    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm(folder)
    seen: list[torch.dtype] = []
    linear = next(m for m in model.modules() if isinstance(m, torch.nn.Linear))
    linear.register_forward_hook(lambda module, args, output: seen.append(output.dtype))
    encoded, _ = encode_dialogues(tokenizer, read_dialogues(data))
    batches = lm_batches(encoded, 2, tokenizer.pad_token_id, 0, pack=True)
    result = fit(model, batches, lm_loss, None,
                 TrainConfig(min_steps=30, save_every_steps=0, warmup_ratio=0,
                             precision="bf16"), tmp_path, lr=1e-2)
    assert result.precision == "bf16"
    assert seen and set(seen) == {torch.bfloat16}
    assert all(p.dtype == torch.float32 for p in model.parameters())
    losses = [json.loads(line) for line in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert {entry["precision"] for entry in losses} == {"bf16"}
    assert losses[-1]["loss"] < losses[0]["loss"]


def _must_not_probe(device="cpu"):
    raise AssertionError("the matmul probe ran")
