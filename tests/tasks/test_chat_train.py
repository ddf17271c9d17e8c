"""Chat SFT and continued pre-training through the shared loop: strategies, save/load,
resume, chat defaults, and decoding of prompt-learning models."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import dialogtune.tasks.causal_lm as lm_run
from helpers import EXAMPLES, Interrupt, write_jsonl
from dialogtune.config import StrategyConfig, TrainConfig, load_config
from dialogtune.data.encode.chat import encode_dialogues
from dialogtune.data.encode.chat_batches import lm_batches
from dialogtune.data.formats import read_dialogues
from dialogtune.inference.chat import ChatPredictor
from dialogtune.inference.chat_run import load_chat_run
from dialogtune.inference.generation import decode
from dialogtune.models.lm import lm_loss
from dialogtune.models.loading import load_causal_lm
from dialogtune.pipeline import train_run
from dialogtune.strategies import CAUSAL_LM, apply_strategy, names
from dialogtune.train import fit

PROBE = [{"role": "user", "content": "What is my balance?"}]


pytestmark = pytest.mark.usefixtures("one_thread")


def chat_config(run: Path, data: Path, model: str, *overrides: str, task: str = "chat"):
    return load_config(None, ["train.num_threads=1", *overrides], task=task, output=str(run),
                       **{"data.train": str(data), "model.name": model})


def _is_top_layer_or_final_norm(name: str) -> bool:
    return ".layers.1." in name or name == "model.norm.weight"


SHOULD_TRAIN = {
    "full": lambda n: True,
    "freeze": _is_top_layer_or_final_norm,
    "lora": lambda n: ".lora_A." in n or ".lora_B." in n,
    "dora": lambda n: ".lora_A." in n or ".lora_B." in n or "lora_magnitude" in n,
    "ia3": lambda n: ".ia3_l." in n,
    "prompt-tuning": lambda n: n.startswith("prompt_encoder."),
    "p-tuning": lambda n: n.startswith("prompt_encoder."),
    "prefix-tuning": lambda n: n.startswith("prompt_encoder."),
}


def test_every_strategy_has_an_expectation():
    assert set(SHOULD_TRAIN) == set(names())


@pytest.mark.parametrize("strategy", sorted(SHOULD_TRAIN))
def test_strategy_trains_exactly_its_parameters(strategy, folder, data, tmp_path):
    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm(folder)
    model = apply_strategy(model, StrategyConfig(name=strategy, freeze_top_k=1,
                                                 num_virtual_tokens=4), CAUSAL_LM)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable and all(SHOULD_TRAIN[strategy](n) for n in trainable)
    encoded, _ = encode_dialogues(tokenizer, read_dialogues(data))
    batches = lm_batches(encoded, 2, tokenizer.pad_token_id, 0, pack=strategy not in (
        "prompt-tuning", "prefix-tuning", "p-tuning"))
    fit(model, batches, lm_loss, None, TrainConfig(max_steps=3, save_every_steps=0,
                                                   warmup_ratio=0), tmp_path, lr=1e-2)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p, before[n])}
    assert changed <= trainable, f"frozen parameters moved: {sorted(changed - trainable)[:3]}"
    assert len(changed) >= 0.9 * len(trainable), f"{len(changed)}/{len(trainable)} trained"


def capture_model(monkeypatch) -> dict:
    """Keep the in-memory model train_chat ends with."""
    seen: dict = {}
    original = lm_run.write_lm_run

    def spy(run, model, *args, **kwargs):
        seen["model"] = model
        return original(run, model, *args, **kwargs)

    monkeypatch.setattr(lm_run, "write_lm_run", spy)
    return seen


@torch.no_grad()
def logits_of(model, tokenizer) -> torch.Tensor:
    from dialogtune.data.encode.chat import render_prompt_ids

    ids = torch.tensor([render_prompt_ids(tokenizer, PROBE + [
        {"role": "assistant", "content": "Your balance is 120 dollars."}])])
    return model.eval()(input_ids=ids).logits


@pytest.mark.parametrize("strategy", ["lora", "full", "prefix-tuning"])
def test_saved_run_reloads_to_identical_logits(strategy, folder, data, tmp_path, monkeypatch):
    seen = capture_model(monkeypatch)
    run = tmp_path / "run"
    prompt = ["strategy.num_virtual_tokens=4"] if strategy == "prefix-tuning" else []
    summary = train_run(chat_config(run, data, folder, f"strategy.name={strategy}",
                                    "train.max_steps=3", "train.lr=1e-2", *prompt))
    assert summary["steps"] == 3 and summary["tokens_trained"] > 0
    model, tokenizer = seen["model"], load_causal_lm(folder)[1]
    expected = logits_of(model, tokenizer)
    assert set(load_file(str(run / "model.safetensors"))) == {
        n for n, p in model.named_parameters() if p.requires_grad}
    unmerged, *_ = load_chat_run(run, merge=False)
    torch.testing.assert_close(logits_of(unmerged, tokenizer), expected, atol=0, rtol=0)
    predictor = ChatPredictor.from_run(run)  # LoRA merged: equal up to float rounding
    torch.testing.assert_close(logits_of(predictor.model, tokenizer), expected,
                               atol=1e-5, rtol=1e-5)
    base, _, _ = load_causal_lm(folder)
    assert not torch.allclose(logits_of(base, tokenizer), expected, atol=1e-4)


def test_interrupted_chat_run_resumes_to_identical_weights(folder, data, tmp_path):
    settings = ("train.max_steps=6", "train.save_every_steps=2", "train.lr=1e-2",
                "train.epochs=2")
    train_run(chat_config(tmp_path / "straight", data, folder, *settings))
    broken = tmp_path / "broken"
    with pytest.raises(KeyboardInterrupt):
        train_run(chat_config(broken, data, folder, *settings), callbacks=[Interrupt(3)])
    train_run(chat_config(broken, data, folder, *settings), resume=True)
    left = load_file(str(tmp_path / "straight" / "model.safetensors"))
    right = load_file(str(broken / "model.safetensors"))
    assert set(left) == set(right) and all(torch.equal(left[k], right[k]) for k in left)


def test_chat_defaults_fill_only_unset_settings(folder, data, tmp_path):
    cfg = chat_config(tmp_path / "a", data, folder).resolved()
    assert (cfg.strategy.name, cfg.strategy.lora_r, cfg.strategy.lora_alpha) == ("lora", 16, 32)
    assert (cfg.train.batch_size, cfg.train.epochs, cfg.data.max_length) == (1, 1, 2048)
    cfg = chat_config(tmp_path / "b", data, folder, "strategy.lora_r=4",
                      "train.batch_size=3").resolved()
    assert (cfg.strategy.lora_r, cfg.strategy.lora_alpha, cfg.train.batch_size) == (4, 32, 3)
    intent = load_config(None, [], task="intent").resolved()
    assert (intent.strategy.lora_r, intent.train.batch_size) == (8, 32)


def test_validation_keeps_best_weights_and_logs_perplexity(folder, data, tmp_path):
    run = tmp_path / "run"
    summary = train_run(chat_config(run, data, folder, "train.epochs=2", "train.lr=1e-2",
                                    f"data.eval={data}"))
    metrics = (run / "metrics.json").read_text()
    assert summary["best_epoch"] in (1, 2) and '"perplexity"' in metrics
    assert (run / "training_curves.png").exists()


def test_pretrain_on_documents(folder, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "faq.md").write_text("Your balance is 120 dollars. I lost my card. " * 30)
    run = tmp_path / "run"
    summary = train_run(chat_config(run, docs, folder, "data.max_length=32", "train.lr=1e-2",
                                    task="pretrain"))
    assert summary["task"] == "pretrain" and summary["data"]["blocks"] >= 4
    assert summary["tokens_trained"] == summary["tokens_fed"] - summary["steps"]
    from dialogtune.pipeline import evaluate_run

    metrics = evaluate_run(run, str(docs), tmp_path / "m.json")
    assert metrics["perplexity"] > 1 and (tmp_path / "m.json").exists()


@pytest.mark.parametrize("strategy", ["prompt-tuning", "prefix-tuning", "p-tuning"])
@torch.no_grad()
def test_prompt_learning_decoding_matches_the_training_forward(strategy, folder):
    """peft's generate drops or misplaces virtual tokens under transformers 5; our loop must
    produce what uncached argmax over the training forward produces."""
    torch.manual_seed(0)
    model, tokenizer, _ = load_causal_lm(folder)
    for p in model.parameters():
        p.add_(torch.randn_like(p) * 0.3)  # a random model that does not repeat one token
    model = apply_strategy(model, StrategyConfig(name=strategy, num_virtual_tokens=4), CAUSAL_LM)
    for p in model.parameters():
        if p.requires_grad:
            p.add_(torch.randn_like(p) * 3)
    model.eval()
    ids = torch.tensor([tokenizer("hello balance dollars")["input_ids"]])
    expected, current = [], ids
    for _ in range(6):
        token = int(model(input_ids=current, use_cache=False).logits[0, -1].argmax())
        expected.append(token)
        current = torch.cat([current, torch.tensor([[token]])], dim=1)
    assert decode(model, ids, 6, stop_ids=[]) == expected
    assert decode(model, ids, 6, stop_ids=[], halt=lambda: True) == expected[:1]  # cancelled
    predictor = ChatPredictor(model, tokenizer, strategy)
    predictor.stop_ids = []  # a random model: let both run to the token limit
    assert "".join(predictor.stream(PROBE, max_new_tokens=5)).strip() == predictor.chat(
        PROBE, max_new_tokens=5)


@pytest.mark.slow
def test_embedded_smollm2_trains_and_evaluates(tmp_path, capsys, monkeypatch):
    """The real path on the embedded model: 3 LoRA steps on 4 example dialogues, then
    held-out perplexity (2 dialogues) for the run and its base model, GGUF export, and the
    chat demo's scoring and printing on that run."""
    import json as _json

    from dialogtune.tasks.chat import evaluate_chat

    examples = EXAMPLES
    lines = (examples / "dialogues_train.jsonl").read_text().splitlines()[:4]
    train = write_jsonl(tmp_path / "train.jsonl", [_json.loads(line) for line in lines])
    lines = (examples / "dialogues_test.jsonl").read_text().splitlines()[:2]
    test = write_jsonl(tmp_path / "test.jsonl", [_json.loads(line) for line in lines])
    run = tmp_path / "chat_lora"  # where the chat demo looks for (and reuses) its run
    summary = train_run(chat_config(run, train, "smollm2", "train.max_steps=3",
                                    "train.save_every_steps=0"))
    assert summary["steps"] == 3 and summary["strategy"] == "lora"
    assert summary["trainable_parameters"] < 0.1 * summary["total_parameters"]
    tuned = evaluate_chat(run, str(test), tmp_path / "tuned.json", generate_turns=1,
                          max_new_tokens=8)
    base = evaluate_chat(run, str(test), tmp_path / "base.json", base=True, generate_turns=1,
                         max_new_tokens=8)
    assert 1 < tuned["perplexity"] < base["perplexity"] < 100
    assert tuned["assistant_tokens"] == base["assistant_tokens"] > 50
    # GGUF export copies the embedded GGUF's metadata, writes the merged weights and reads
    # the file back with transformers: it must predict what the run predicts
    from dialogtune.export.hf import export_run

    info = export_run(run, tmp_path / "model.gguf", gguf=True)
    assert info["check"]["same_tokens"] and info["check"]["next_token_agreement"] >= 0.95

    import dialogtune.demo_chat as demo_chat

    monkeypatch.setattr(demo_chat, "SHOWN_REPLIES", 1)
    capsys.readouterr()
    headline = demo_chat.run_chat_demo(tmp_path)
    printed = capsys.readouterr().out
    assert "reusing the finished run" in printed and "reference" in printed
    assert f"base {headline['base_perplexity']:.2f} -> tuned" in printed
    assert 1 < headline["tuned_perplexity"] < headline["base_perplexity"]
