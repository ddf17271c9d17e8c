"""Tiny in-process causal LMs for the chat tests: a byte-level BPE tokenizer trained on the
test vocabulary, a chat template (ChatML or a Zephyr-like one), and a 2-layer Llama, saved
as a local Hugging Face folder so every code path loads it exactly as a real model."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

ZEPHYR_TEMPLATE = (
    "{% for message in messages %}{{ '<|' + message['role'] + '|>\n' + message['content'] + "
    "'</s>\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}")

DIALOGUES = [
    {"id": "d1", "messages": [
        {"role": "system", "content": "You are the bank assistant."},
        {"role": "user", "content": "What is my balance?", "intent": "balance", "slots": []},
        {"role": "assistant", "content": "Your balance is 120 dollars."},
        {"role": "user", "content": "Send 20 dollars to Amir.", "intent": "transfer",
         "slots": [{"slot": "name", "start": 18, "end": 22, "value": "Amir"}]},
        {"role": "assistant", "content": "Sending 20 dollars to Amir now."}]},
    {"id": "d2", "messages": [
        {"role": "user", "content": "Hello, I lost my card.", "intent": "card_lost"},
        {"role": "assistant", "content": "I am sorry. I blocked the card.", "weight": 0},
        {"role": "user", "content": "Thanks, bye."},
        {"role": "assistant", "content": "Goodbye and have a nice day."}]},
    {"id": "d3", "messages": [
        {"role": "user", "content": "Pay my phone bill please.", "intent": "pay_bill"},
        {"role": "assistant", "content": "Your phone bill of 30 dollars is paid."}]},
    {"id": "d4", "messages": [
        {"role": "user", "content": "Transfer 50 dollars to Maria.", "intent": "transfer",
         "slots": [{"slot": "name", "start": 23, "end": 28, "value": "Maria"}]},
        {"role": "assistant", "content": "Sending 50 dollars to Maria now."},
        {"role": "user", "content": "What is my balance now?"},
        {"role": "assistant", "content": "Your balance is 70 dollars."}]},
]


def write_jsonl(path: Path, records: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    return path


def build_tokenizer(template: str = "chatml"):
    """A byte-level BPE tokenizer (vocab ~400) with the template's special tokens."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    from dialogtune.data.encode.chat import CHATML_TEMPLATE

    specials = (["<|endoftext|>", "<|im_start|>", "<|im_end|>"] if template == "chatml"
                else ["<unk>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>"])
    core = Tokenizer(models.BPE())
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    corpus = [m["content"] for d in DIALOGUES for m in d["messages"]] * 3
    corpus += ["system user assistant hello thanks dollars balance " * 3]
    core.train_from_iterator(corpus, trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    if template == "chatml":
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>",
                                            bos_token="<|im_start|>", pad_token="<|im_end|>",
                                            unk_token="<|endoftext|>")
        tokenizer.chat_template = CHATML_TEMPLATE
    else:
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="</s>",
                                            bos_token="<s>", pad_token="</s>", unk_token="<unk>")
        tokenizer.chat_template = ZEPHYR_TEMPLATE
    return tokenizer


def build_model_folder(folder: Path, template: str = "chatml", seed: int = 0,
                       max_positions: int = 512) -> str:
    """Save a 2-layer Llama (tied embeddings, like SmolLM2) + tokenizer into ``folder``
    (``max_positions``: its context, e.g. longer for prompts that list tools)."""
    import torch
    from transformers import GenerationConfig, LlamaConfig, LlamaForCausalLM

    tokenizer = build_tokenizer(template)
    torch.manual_seed(seed)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=max_positions, tie_word_embeddings=True,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                         pad_token_id=tokenizer.pad_token_id)
    model = LlamaForCausalLM(config)
    model.generation_config = GenerationConfig(eos_token_id=tokenizer.eos_token_id,
                                               pad_token_id=tokenizer.pad_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> str:
    """The tiny ChatML Llama as a local folder, once per test module."""
    return build_model_folder(tmp_path_factory.mktemp("tiny_llama"))


@pytest.fixture(scope="module")
def tool_folder(tmp_path_factory) -> str:
    """The tiny ChatML Llama with 1,024 positions, once per test module: the tools in the
    system turn take ~380 of the tiny tokenizer's tokens."""
    return build_model_folder(tmp_path_factory.mktemp("tool_llama"), max_positions=1024)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    """The test dialogues as a chat JSONL file, once per test module."""
    return write_jsonl(tmp_path_factory.mktemp("chat") / "dialogues.jsonl", DIALOGUES)
