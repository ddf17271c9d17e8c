"""A chat model ready to answer: a trained chat run or a base model, used by CLI and server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from .checkpoint import load_trainable
from .config import read_run_config
from .models import load_causal_lm
from .runs.layout import RunDir
from .strategies import apply_strategy


class ChatPredictor:
    """Generates assistant replies for a list of chat messages (``{"role", "content"}``)."""

    def __init__(self, model: nn.Module, tokenizer, name: str):
        self.model, self.tokenizer, self.name = model, tokenizer, name
        self.model.eval()
        self._lock = threading.Lock()  # one generation at a time per model

    @classmethod
    def from_run(cls, run_dir: str | Path) -> "ChatPredictor":
        """Base model + the run's trained weights (adapters merged for faster inference)."""
        run = RunDir(Path(run_dir)).require_trained()
        cfg = read_run_config(run.path)
        model, tokenizer, _ = load_causal_lm(cfg.model.name, cfg.model.trust_remote_code)
        model = apply_strategy(model, cfg.strategy, cfg.task)
        load_trainable(model, run.weights)
        if hasattr(model, "merge_and_unload") and cfg.strategy.name in ("lora", "dora", "ia3"):
            model = model.merge_and_unload()
        return cls(model, tokenizer, run.path.name)

    @classmethod
    def from_model(cls, name: str) -> "ChatPredictor":
        """An untuned model: an alias (``smollm2``), a local folder or a cached hub id."""
        model, tokenizer, _ = load_causal_lm(name)
        return cls(model, tokenizer, name)

    @classmethod
    def load(cls, name_or_run: str | Path) -> "ChatPredictor":
        if (Path(name_or_run) / "config.yaml").exists():
            return cls.from_run(name_or_run)
        return cls.from_model(str(name_or_run))

    def prompt_ids(self, messages: list[dict]) -> torch.Tensor:
        from .data.chat import render_prompt_ids

        return torch.tensor([render_prompt_ids(self.tokenizer, messages)])

    def _generate_kwargs(self, max_new_tokens: int, temperature: float, top_p: float,
                         seed: int | None) -> dict:
        if seed is not None:
            torch.manual_seed(seed)
        sample = temperature > 0
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": sample,
                  "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        return kwargs

    def chat(self, messages: list[dict], max_new_tokens: int = 128, temperature: float = 0.0,
             top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None) -> str:
        """The full reply (greedy when temperature is 0)."""
        return "".join(self.stream(messages, max_new_tokens, temperature, top_p, stop, seed))

    def stream(self, messages: list[dict], max_new_tokens: int = 128, temperature: float = 0.0,
               top_p: float = 1.0, stop: list[str] | None = None,
               seed: int | None = None) -> Iterator[str]:
        """Yield reply text pieces as they are generated; stops at any ``stop`` string."""
        from transformers import TextIteratorStreamer

        ids = self.prompt_ids(messages)
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True)
        kwargs = self._generate_kwargs(max_new_tokens, temperature, top_p, seed)
        with self._lock:
            worker = threading.Thread(target=self._run_generate, daemon=True,
                                      args=(ids, streamer, kwargs))
            worker.start()
            yield from _cut_at_stop(streamer, stop or [])
            worker.join()

    @torch.no_grad()
    def _run_generate(self, ids: torch.Tensor, streamer, kwargs: dict) -> None:
        self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), streamer=streamer,
                            **kwargs)


def _cut_at_stop(pieces: Iterator[str], stops: list[str]) -> Iterator[str]:
    """Pass text through until a stop string appears; hold back a possible partial match."""
    if not stops:
        yield from pieces
        return
    buffer, hold = "", max(len(s) for s in stops) - 1
    for piece in pieces:
        buffer += piece
        hits = [buffer.find(s) for s in stops if s in buffer]
        if hits:
            yield buffer[:min(hits)]
            for _ in pieces:  # drain so the generating thread can finish
                pass
            return
        if len(buffer) > hold:
            yield buffer[:len(buffer) - hold]
            buffer = buffer[len(buffer) - hold:]
    if buffer:
        yield buffer
