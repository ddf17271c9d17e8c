"""Chat SFT on Chinese through a user's own Qwen-class model folder (issue 15, item 5):
a tiny Qwen2 (ChatML template, byte-level BPE) trains on Chinese dialogues, is scored with
Chinese-aware BLEU / ROUGE-L, and answers through the same commands as any other run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dialogtune.cli import main
from helpers import build_tokenizer, write_jsonl

pytestmark = pytest.mark.usefixtures("one_thread")
SYSTEM = {"role": "system", "content": "你是流明银行的客服助手。"}
DIALOGUES = [
    {"messages": [SYSTEM, {"role": "user", "content": "我的信用卡丢了，怎么办？"},
                  {"role": "assistant", "content": "别着急，我已经为您冻结了这张卡，新卡五个工作日内寄出。"}]},
    {"messages": [SYSTEM, {"role": "user", "content": "帮我查一下余额"},
                  {"role": "assistant", "content": "您的储蓄卡余额是一千二百元。"},
                  {"role": "user", "content": "谢谢"},
                  {"role": "assistant", "content": "不客气，祝您生活愉快！"}]},
    {"messages": [SYSTEM, {"role": "user", "content": "给王伟转五百元"},
                  {"role": "assistant", "content": "好的，已向王伟转账五百元。"}]},
]


def tiny_qwen2(folder: Path) -> str:
    """A 2-layer Qwen2 with the tests' byte-level tokenizer and ChatML template."""
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    tokenizer = build_tokenizer("chatml")
    torch.manual_seed(0)
    config = Qwen2Config(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=256, tie_word_embeddings=True,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    model = Qwen2ForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_chinese_chat_sft_on_a_local_qwen2_folder(tmp_path, capsys):
    model = tiny_qwen2(tmp_path / "qwen2")
    data = write_jsonl(tmp_path / "zh.jsonl", DIALOGUES)
    run = tmp_path / "run"
    assert main(["train", "--task", "chat", "--data", str(data), "--output", str(run),
                 "--model", model, "--strategy", "lora", "--epochs", "4",
                 "--set", "train.lr=5e-3", "--set", "train.num_threads=1"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["model_source"] == model and summary["steps"] >= 4
    tuned, base = tmp_path / "tuned.json", tmp_path / "base.json"
    assert main(["eval", str(run), "--data", str(data), "--output", str(tuned)]) == 0
    assert main(["eval", str(run), "--data", str(data), "--base", "--output", str(base)]) == 0
    tuned, base = (json.loads(p.read_text(encoding="utf-8")) for p in (tuned, base))
    assert tuned["perplexity"] < base["perplexity"]  # it learned the Chinese replies
    assert tuned["bleu_tokenizer"] == "zh" and tuned["rouge_l_unit"] == "character"
    capsys.readouterr()
    prompts = write_jsonl(tmp_path / "prompts.jsonl", [{"messages": DIALOGUES[0]["messages"][:2]}])
    assert main(["generate", str(run), "--data", str(prompts), "--output",
                 str(tmp_path / "replies.jsonl")]) == 0
    reply = json.loads((tmp_path / "replies.jsonl").read_text(encoding="utf-8").splitlines()[0])
    assert isinstance(reply, dict)
