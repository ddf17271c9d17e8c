"""Chat inference in bf16 (``precision.cast_for_inference``): the weights are cast only where
asked or where ``auto`` measures bf16 to be fast, and every way a chat model is used — a
reply, a stream, batched replies, the server's models and reloads, ``dialogtune generate``
— works in it.

The machine is simulated: the CPU's flags and the matmul probe are replaced, so the test
means the same on an AVX2 machine and on one with AMX.
"""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from dialogtune import precision as precision_module
from dialogtune.cli import main
from dialogtune.inference.chat import ChatPredictor
from dialogtune.precision import cast_for_inference
from helpers.chat import write_jsonl

AMX = {"model": "simulated Xeon", "flags": ["avx2", "avx512f", "amx_bf16"]}
AVX2 = {"model": "simulated EPYC", "flags": ["avx2"]}


def dtypes(model: nn.Module) -> set[torch.dtype]:
    return {parameter.dtype for parameter in model.parameters()}


def simulate(monkeypatch, cpu: dict, peaks: dict | None) -> None:
    """This machine's CPU as ``cpu``, its probed matmul speeds as ``peaks`` (None: probing
    is an error, as it must not happen on a CPU without bf16 instructions)."""
    def probe(device: str = "cpu") -> dict:
        if peaks is None:
            raise AssertionError("the matmul probe ran on a CPU without bf16 instructions")
        return peaks

    monkeypatch.setattr(precision_module, "cpu_description", lambda *a: cpu)
    monkeypatch.setattr(precision_module, "measured_peaks", probe)


@pytest.mark.parametrize("requested, expected", [("fp32", torch.float32),
                                                 ("bf16", torch.bfloat16)])
def test_the_weights_take_the_precision_asked_for(requested, expected):
    model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 3))
    assert cast_for_inference(model, requested) == requested
    assert dtypes(model) == {expected}


@pytest.mark.parametrize("cpu, peaks, expected", [
    (AMX, {"fp32": 400.0, "bf16": 3000.0}, "bf16"),  # AMX: bf16 matmuls 7x faster
    (AMX, {"fp32": 400.0, "bf16": 600.0}, "fp32"),  # bf16 instructions but < 2x: not worth it
    (AVX2, None, "fp32"),  # no bf16 instructions: emulated, never probed
])
def test_auto_casts_only_where_bf16_is_measured_fast(monkeypatch, cpu, peaks, expected):
    simulate(monkeypatch, cpu, peaks)
    model = nn.Linear(4, 3)
    assert cast_for_inference(model, "auto") == expected
    assert dtypes(model) == {precision_module.DTYPES[expected]}


def test_an_unknown_precision_is_refused():
    with pytest.raises(ValueError, match="auto, fp32 or bf16"):
        cast_for_inference(nn.Linear(2, 2), "fp16")


def test_a_bf16_chat_model_replies_streams_and_batches(tool_folder):
    chat = ChatPredictor.from_model(tool_folder, precision="bf16")
    assert chat.precision == "bf16" and dtypes(chat.model) == {torch.bfloat16}
    messages = [{"role": "user", "content": "Send 20 dollars to Amir and then pay my bill."}]
    assert len(chat._generate_ids(chat.prompt_ids(messages), 6, 0.0, 1.0, None)) == 6
    alone = "".join(chat.stream(messages, max_new_tokens=6))
    assert chat.enable_batching(4)
    assert "".join(chat.stream(messages, max_new_tokens=6)) == alone  # through the batcher
    chat.batcher.close()
    assert ChatPredictor.from_model(tool_folder).precision == "fp32"  # the library's default


def test_the_server_loads_and_reloads_in_the_precision_asked_for(tool_folder):
    from dialogtune.serve.runtime import load_chats

    chats, reloader = load_chats([tool_folder], precision="bf16")
    assert [c.precision for c in chats] == ["bf16"]
    assert reloader(chats[0].name).precision == "bf16"
    assert dtypes(reloader(chats[0].name).model) == {torch.bfloat16}


def test_generate_takes_the_precision_option(tool_folder, tmp_path, monkeypatch):
    from dialogtune.inference import dialogue

    used = []
    load = ChatPredictor.load.__func__

    def recording_load(cls, name, policy=None, precision="fp32"):
        predictor = load(cls, name, policy, precision)
        used.append(predictor.precision)
        return predictor

    monkeypatch.setattr(dialogue.ChatPredictor, "load", classmethod(recording_load))
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [
        {"id": "p1", "messages": [{"role": "user", "content": "What is my balance?"}]}])
    out = tmp_path / "out.jsonl"
    assert main(["generate", tool_folder, "--data", str(prompts), "--output", str(out),
                 "--max-new-tokens", "4", "--precision", "bf16"]) == 0
    record = json.loads(out.read_text())
    assert used == ["bf16"] and record["messages"][-1] == {"role": "assistant",
                                                           "content": record["reply"]}
