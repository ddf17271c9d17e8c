"""Saved runs reload exactly, interrupted runs resume exactly, checkpoints swap atomically."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file

import dialogtune.tasks.intent as intent_run
from dialogtune.checkpoint import (find_checkpoint, load_checkpoint, save_checkpoint,
                                   trainable_state, write_json_atomic)
from dialogtune.config import load_config
from dialogtune.data.encode.batching import pad_batch
from dialogtune.data.encode.intent import encode_texts
from dialogtune.inference.intent import Predictor, batched_probabilities
from dialogtune.models.loading import load_intent_model
from dialogtune.pipeline import train_run
from dialogtune.strategies import CLASSIFIER, apply_strategy
from dialogtune.tasks.intent import train_intent

from helpers import INTENT_EXAMPLES, Interrupt

PROBE = ["lost card help", "how much money do i have", "send money to my friend",
         "hello", "block my card and check balance please"]


pytestmark = pytest.mark.usefixtures("one_thread")


def run_config(run: Path, data: Path, model: str, *overrides: str):
    # min_steps=0: step counts below follow epochs x batches exactly
    return load_config(None, ["train.batch_size=4", "train.epochs=2", "train.min_steps=0",
                              *overrides], **{
        "data.train": str(data), "model.name": model, "output": str(run)})


def capture_trained(monkeypatch) -> dict:
    """Keep the in-memory model and tokenizer train_intent ends with."""
    seen: dict = {}
    original = intent_run.write_intent_run

    def spy(run, model, tokenizer, *args, **kwargs):
        seen.update(model=model, tokenizer=tokenizer)
        return original(run, model, tokenizer, *args, **kwargs)

    monkeypatch.setattr(intent_run, "write_intent_run", spy)
    return seen


# --- (a) save -> load gives the same model ---------------------------------------------------


@pytest.mark.parametrize("strategy", ["full", "lora", "prefix-tuning"])
def test_predictor_reproduces_trained_model(strategy, tiny_bert, intent_csv, tmp_path,
                                            monkeypatch):
    seen = capture_trained(monkeypatch)
    run = tmp_path / "run"
    prompt = ["strategy.num_virtual_tokens=4"] if strategy == "prefix-tuning" else []
    summary = train_run(run_config(run, intent_csv, tiny_bert, f"strategy.name={strategy}",
                                   "train.num_threads=1", *prompt))
    assert summary["strategy"] == strategy and summary["steps"] > 0

    model, tokenizer = seen["model"], seen["tokenizer"]
    expected_probs = batched_probabilities(model, tokenizer, PROBE, 64)
    batch = pad_batch(encode_texts(tokenizer, PROBE, 64), tokenizer.pad_token_id)
    with torch.no_grad():
        expected_logits = model(**batch)

    # the weights file holds exactly the trainable tensors, tagged with the strategy
    saved = load_file(str(run / "model.safetensors"))
    assert set(saved) == set(trainable_state(model))
    with safe_open(str(run / "model.safetensors"), "pt") as handle:
        assert handle.metadata()["strategy"] == strategy

    predictor = Predictor.from_run(run)
    np.testing.assert_array_equal(predictor.probabilities(PROBE), expected_probs)
    with torch.no_grad():
        assert torch.equal(predictor.model(**batch), expected_logits)
    assert predictor.labels.labels == sorted(INTENT_EXAMPLES)
    ranked = predictor.classify(PROBE, top_k=2)[0]["intents"]  # same batch as expected_probs
    assert [r["probability"] for r in ranked] == sorted(expected_probs[0], reverse=True)[:2]

    # the same architecture without the saved weights answers differently
    torch.manual_seed(1234)
    fresh, _, _ = load_intent_model(tiny_bert, predictor.labels.labels)
    fresh = apply_strategy(fresh, predictor.config.strategy, CLASSIFIER).eval()
    with torch.no_grad():
        assert not torch.allclose(fresh(**batch), expected_logits)


# --- (b) an interrupted run resumes to the same weights ----------------------------------------


def tensors(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(path))


def assert_same_tensors(a: Path, b: Path) -> None:
    left, right = tensors(a), tensors(b)
    assert set(left) == set(right)
    different = [k for k in left if not torch.equal(left[k], right[k])]
    assert not different, f"{a.name}: {len(different)} tensors differ, e.g. {different[0]}"


def log_records(run: Path) -> list[dict]:
    records = [json.loads(line) for line in (run / "train_log.jsonl").read_text().splitlines()]
    for record in records:
        record.pop("seconds", None)
        record.pop("mfu", None)  # a rate: timing, like the seconds
    return records


@pytest.mark.parametrize("strategy", ["full", "lora"])
def test_interrupted_run_resumes_to_identical_weights(strategy, tiny_bert, intent_csv, tmp_path):
    # 21 training examples / batch 4 = 6 steps per epoch, 3 epochs = 18 steps; patience high
    # so the last epoch is reached, and the last weights (checkpoint) are compared too.
    extra = (f"strategy.name={strategy}", "train.epochs=3", "train.save_every_steps=2",
             "train.patience=10", "train.num_threads=1")
    run_a, run_b = tmp_path / "a", tmp_path / "b"
    train_intent(run_config(run_a, intent_csv, tiny_bert, *extra))

    cfg_b = run_config(run_b, intent_csv, tiny_bert, *extra)
    with pytest.raises(KeyboardInterrupt):  # mid-epoch 1: resumes from the step-4 checkpoint
        train_intent(cfg_b, callbacks=[Interrupt(5)])
    assert not (run_b / "model.safetensors").exists()
    assert json.loads((run_b / "checkpoint" / "state.json").read_text())["progress"]["step"] == 4
    with pytest.raises(KeyboardInterrupt):  # epoch 2, after an evaluation and best weights
        train_intent(cfg_b, resume=True, callbacks=[Interrupt(11)])
    assert json.loads((run_b / "checkpoint" / "state.json").read_text())["progress"]["step"] == 10
    summary = train_intent(cfg_b, resume=True)
    assert summary["steps"] == 18

    for name in ("model.safetensors", "best.safetensors", "checkpoint/model.safetensors",
                 "checkpoint/optimizer.safetensors"):
        assert_same_tensors(run_a / name, run_b / name)
    state_a = json.loads((run_a / "checkpoint" / "state.json").read_text())
    state_b = json.loads((run_b / "checkpoint" / "state.json").read_text())
    for state in (state_a, state_b):
        state["progress"].pop("seconds")
        state["progress"]["window_flops"].pop()  # the seconds at the last log line
    assert state_a == state_b
    # the three attempts together logged exactly what the uninterrupted run logged
    assert log_records(run_b) == log_records(run_a)
    records = log_records(run_a)
    assert any("loss" in r for r in records) and any("eval" in r for r in records)


def test_same_seed_same_run(tiny_bert, intent_csv, tmp_path):
    """Two fresh runs with one seed are identical (the head and adapters are seeded too)."""
    for name in ("a", "b"):
        train_intent(run_config(tmp_path / name, intent_csv, tiny_bert, "train.epochs=1",
                                "strategy.name=lora"))
    assert_same_tensors(tmp_path / "a" / "model.safetensors", tmp_path / "b" / "model.safetensors")


# --- (c) atomic checkpoint folders ---------------------------------------------------------------


def small_model_and_optimizer(seed: int = 0):
    torch.manual_seed(seed)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Linear(4, 2))
    model[0].bias.requires_grad = False
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=0.1)
    model(torch.ones(2, 3)).sum().backward()
    optimizer.step()
    return model, optimizer


def folder_listing(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir())


def test_save_checkpoint_leaves_no_temporary_files(tmp_path):
    model, optimizer = small_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 1})
    save_checkpoint(folder, model, optimizer, {"step": 2})
    # the previous checkpoint stays, as the fallback should the newest be damaged
    assert folder_listing(tmp_path) == ["checkpoint", "checkpoint.old"]
    assert folder_listing(folder) == ["manifest.json", "model.safetensors",
                                      "optimizer.safetensors", "state.json"]
    assert json.loads((tmp_path / "checkpoint.old" / "state.json").read_text())["progress"] \
        == {"step": 1}
    assert set(load_file(str(folder / "model.safetensors"))) == {"0.weight", "1.weight", "1.bias"}

    other, other_optimizer = small_model_and_optimizer(seed=1)
    torch.manual_seed(99)
    progress = load_checkpoint(find_checkpoint(folder), other, other_optimizer)
    assert progress == {"step": 2}
    for a, b in zip(model.parameters(), other.parameters()):
        if a.requires_grad:
            assert torch.equal(a, b)
    state, restored = optimizer.state_dict(), other_optimizer.state_dict()
    for index, values in state["state"].items():
        for key, value in values.items():
            restored_value = restored["state"][index][key]
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(restored_value))


def test_each_rank_resumes_its_own_random_state(tmp_path):
    """One RNG row per process: rank r draws after resuming what it drew before saving."""
    model, optimizer = small_model_and_optimizer()
    states, next_draws = [], []
    for seed in (3, 4):  # two ranks' generators
        torch.manual_seed(seed)
        states.append(torch.get_rng_state())
        next_draws.append(torch.rand(5))
    save_checkpoint(tmp_path / "checkpoint", model, optimizer, {"step": 1},
                    rng_states=torch.stack(states))
    for rank in (1, 0, 1):
        torch.manual_seed(99)
        load_checkpoint(tmp_path / "checkpoint", model, optimizer, rank=rank)
        assert torch.equal(torch.rand(5), next_draws[rank])


def test_lone_old_folder_is_found_and_then_kept_as_previous(tmp_path):
    model, optimizer = small_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    assert find_checkpoint(folder) is None
    save_checkpoint(folder, model, optimizer, {"step": 3})
    # a crash between the two renames leaves only the previous checkpoint, as ".old"
    old = folder.with_name("checkpoint.old")
    folder.rename(old)
    assert find_checkpoint(folder) == old
    other, other_optimizer = small_model_and_optimizer(seed=1)
    assert load_checkpoint(find_checkpoint(folder), other, other_optimizer) == {"step": 3}
    save_checkpoint(folder, other, other_optimizer, {"step": 4})
    assert folder_listing(tmp_path) == ["checkpoint", "checkpoint.old"]
    assert find_checkpoint(folder) == folder
    assert json.loads((old / "state.json").read_text())["progress"] == {"step": 3}


def test_complete_checkpoint_wins_over_old(tmp_path):
    model, optimizer = small_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder.with_name("checkpoint.old"), model, optimizer, {"step": 1})
    save_checkpoint(folder, model, optimizer, {"step": 2})
    assert find_checkpoint(folder) == folder  # both complete: the newer wins
    save_checkpoint(folder, model, optimizer, {"step": 3})
    assert folder_listing(tmp_path) == ["checkpoint", "checkpoint.old"]


def test_failed_save_keeps_previous_checkpoint_and_no_staging(tmp_path, monkeypatch):
    import dialogtune.checkpoint as checkpoint

    model, optimizer = small_model_and_optimizer()
    folder = tmp_path / "checkpoint"
    save_checkpoint(folder, model, optimizer, {"step": 1})
    real_save = checkpoint.save_tensors

    def failing(tensors, path, metadata=None):
        if path.name == "optimizer.safetensors":
            raise OSError(28, "No space left on device")
        return real_save(tensors, path, metadata)

    monkeypatch.setattr(checkpoint, "save_tensors", failing)
    with pytest.raises(OSError):
        save_checkpoint(folder, model, optimizer, {"step": 2})
    assert folder_listing(tmp_path) == ["checkpoint"]
    found = find_checkpoint(folder)
    assert found == folder
    assert json.loads((found / "state.json").read_text())["progress"] == {"step": 1}


def test_write_json_atomic_keeps_old_file_on_failure(tmp_path):
    path = tmp_path / "metrics.json"
    write_json_atomic({"accuracy": 0.5}, path)
    with pytest.raises(TypeError):
        write_json_atomic({"accuracy": object()}, path)
    assert folder_listing(tmp_path) == ["metrics.json"]
    assert json.loads(path.read_text()) == {"accuracy": 0.5}


def test_run_resumes_from_old_checkpoint(tiny_bert, intent_csv, tmp_path):
    """A crash mid-swap: train --resume continues from checkpoint.old."""
    extra = ("train.epochs=1", "train.save_every_steps=2", "train.num_threads=1")
    run = tmp_path / "run"
    cfg = run_config(run, intent_csv, tiny_bert, *extra)
    with pytest.raises(KeyboardInterrupt):
        train_intent(cfg, callbacks=[Interrupt(3)])
    (run / "checkpoint").rename(run / "checkpoint.old")
    seen_steps: list[int] = []
    summary = train_intent(cfg, resume=True, callbacks=[seen_steps.append])
    assert seen_steps == [3, 4, 5, 6] and summary["steps"] == 6
    assert (run / "checkpoint.old").exists() and (run / "checkpoint").exists()
    assert not [p for p in run.iterdir() if p.name.startswith(".")]


def test_small_data_trains_at_least_min_steps(tmp_path, intent_csv, tiny_bert):
    """21 examples in batches of 4 make 6 steps an epoch: min_steps stretches the run."""
    cfg = run_config(tmp_path / "run", intent_csv, tiny_bert, "train.epochs=1",
                     "train.min_steps=15", "train.patience=10", "train.save_every_steps=0")
    summary = train_intent(cfg)
    assert summary["steps"] == 15
    epochs = [json.loads(line)["epoch"] for line in
              (tmp_path / "run" / "train_log.jsonl").read_text().splitlines()
              if "eval" in json.loads(line)]
    assert epochs == [1, 2, 3]
