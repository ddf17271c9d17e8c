"""Tiny models for the serving tests: a trained intent run and a chat model folder.

Both are built in-process in seconds (no hub, no embedded model) and cached per test
session, so the serve test modules share them.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import time
from pathlib import Path

import pytest

from .intent import INTENT_EXAMPLES, WORDS, write_intent_csv

CHAT_TEMPLATE = (
    "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + "
    "message['content'] + '<|im_end|>' + '\n'}}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")

_CACHE: dict[str, Path] = {}


def tiny_intent_run(root: Path, tiny_bert: str) -> Path:
    """An intent run trained for a few steps on the three-intent toy data (cached)."""
    if "intent" not in _CACHE:
        from dialogtune import load_config, train_run

        root.mkdir(parents=True, exist_ok=True)
        data = write_intent_csv(root / "train.csv", INTENT_EXAMPLES)
        output = root / "intent_run"
        cfg = load_config(None, ["train.max_steps=6", "train.batch_size=8", "train.epochs=2",
                                 "data.val_fraction=0.25"],
                          task="intent", **{"model.name": tiny_bert, "data.train": str(data),
                                            "output": str(output)})
        train_run(cfg)
        _CACHE["intent"] = output
    return _CACHE["intent"]


def tiny_chat_model(root: Path) -> Path:
    """A 2-layer Llama with a word-level tokenizer and a ChatML template (cached).

    Its generation config has no end-of-sequence token, so every reply runs to
    ``max_tokens``: deterministic lengths for the tests, whatever the random weights say.
    """
    if "chat" not in _CACHE:
        import torch
        from tokenizers import Tokenizer, models, pre_tokenizers
        from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

        folder = root / "tiny_llama"
        folder.mkdir(parents=True, exist_ok=True)
        specials = ["<pad>", "<unk>", "<|im_start|>", "<|im_end|>"]
        vocab = {w: i for i, w in enumerate([*specials, *dict.fromkeys(
            WORDS + ["user", "assistant", "system", "."])])}
        backend = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
        backend.pre_tokenizer = pre_tokenizers.Whitespace()
        tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="<pad>",
                                            unk_token="<unk>", eos_token="<|im_end|>",
                                            additional_special_tokens=specials[2:])
        tokenizer.chat_template = CHAT_TEMPLATE
        tokenizer.save_pretrained(folder)
        torch.manual_seed(0)
        config = LlamaConfig(vocab_size=len(vocab), hidden_size=32, intermediate_size=64,
                             num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                             max_position_embeddings=2048, pad_token_id=0)
        model = LlamaForCausalLM(config)
        model.generation_config.eos_token_id = None
        model.generation_config.bos_token_id = None
        model.generation_config.suppress_tokens = list(range(len(specials)))  # words only
        model.save_pretrained(folder)
        _CACHE["chat"] = folder
    return _CACHE["chat"]


class SlowChat:
    """A ChatPredictor slowed to ``delay`` seconds a piece, so streaming is observable."""

    def __init__(self, chat, delay: float = 0.02):
        self.chat, self.delay, self.name, self.tokenizer = chat, delay, chat.name, chat.tokenizer
        self.check_prompt = chat.check_prompt

    def stream(self, messages, **options):
        for piece in self.chat.stream(messages, **options):
            time.sleep(self.delay)
            yield piece


def slow_chat_predictor(chat_model: Path, delay: float = 0.02):
    """(a fresh ChatPredictor whose every forward pass takes ``delay`` s, list of passes).

    Slowing the model itself (not the consumer, as ``SlowChat`` does) lets a test see
    whether the generating thread really stops: the list stops growing.
    """
    from dialogtune.inference.chat import ChatPredictor

    chat, calls = ChatPredictor.load(chat_model), []

    def slow(*_):
        calls.append(time.monotonic())
        time.sleep(delay)

    chat.model.register_forward_hook(slow)
    return chat, calls


def generation_threads() -> list:
    """The live threads generating for a ChatPredictor."""
    import threading

    from dialogtune.inference import chat as chat_predictor

    name = getattr(chat_predictor, "GENERATION_THREAD", "dialogtune-generation")
    return [t for t in threading.enumerate() if t.name == name]


def wait_until(predicate, timeout: float = 5.0) -> bool:
    """Poll ``predicate`` until it holds (True) or ``timeout`` seconds pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return bool(predicate())


def assert_generation_stopped(calls: list, within: float = 3.0) -> None:
    """Within ``within`` seconds, no generating thread is left and the model is no longer
    being run (no forward pass for 0.3 s; the batching thread may idle on, unused)."""
    deadline = time.monotonic() + within
    assert wait_until(lambda: not generation_threads(), within), "generation thread alive"
    while True:
        count = len(calls)
        time.sleep(0.3)
        if len(calls) == count:
            return
        assert time.monotonic() < deadline, "the model is still generating"


def served_chat(client) -> str:
    """The id of the (first) chat model an OpenAI client's server answers with: what a
    request's ``model`` must name."""
    return next(m.id for m in client.models.list().data if m.model_extra.get("task") == "chat")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def intent_run(tmp_path_factory, tiny_bert) -> Path:
    return tiny_intent_run(tmp_path_factory.mktemp("serve_intent"), tiny_bert)


@pytest.fixture(scope="session")
def chat_model(tmp_path_factory) -> Path:
    return tiny_chat_model(tmp_path_factory.mktemp("serve_chat"))


@pytest.fixture(scope="session")
def predictors(intent_run, chat_model):
    """(intent Predictor, ChatPredictor), loaded once per module that asks."""
    from dialogtune.serve.runtime import load_models

    return load_models(intent_run, chat_model)


def sse_events(text: str) -> list:
    """Parse an SSE body into its JSON payloads ("[DONE]" kept as the string)."""
    events = []
    for block in text.split("\n\n"):
        data = "".join(line[5:].strip() for line in block.splitlines()
                       if line.startswith("data:"))
        if data:
            events.append(data if data == "[DONE]" else json.loads(data))
    return events


def db_rows(path: Path, table: str = "exchanges") -> list[dict]:
    db = sqlite3.connect(str(path))
    try:
        db.row_factory = sqlite3.Row
        return [dict(r) for r in db.execute(f"SELECT * FROM {table} ORDER BY rowid")]
    finally:
        db.close()


def wait_healthy(url: str, process, timeout: float = 120) -> None:
    """Wait until a server started as ``process`` answers ``/health`` with 200."""
    import httpx

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode()[-2000:] if process.stderr else ""
            raise AssertionError(f"the server exited during start-up {stderr}")
        try:
            if httpx.get(url + "/health", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise AssertionError("server did not become healthy")
