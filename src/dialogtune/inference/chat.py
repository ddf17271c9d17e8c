"""A chat model ready to answer: a trained chat run or a base model, used by CLI and server."""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

from ..data.encode.chat import end_of_turn_ids, ensure_chat_template, render_prompt_ids
from ..data.tool_calls import CALL_OPEN, ParsedReply, ToolCall, parse_reply
from ..errors import PromptError
from ..models.devices import model_device
from ..models.lm import load_lm
from ..models.loading import LoadPolicy
from ..precision import cast_for_inference
from ..runs.layout import RunDir
from .batching import BatchedGenerator, batchable
from .chat_run import load_chat_run
from .generation import decode, is_prompt_learning
from .streaming import StopSignal, cut_at_stop, partial_marker
from .tool_decoding import (AUTO, CallConstraint, UnsupportedTokenizer, call_constraint,
                            checked_reply, resolve_tool_choice)

log = logging.getLogger("dialogtune")
GENERATION_THREAD = "dialogtune-generation"  # the name of each generating thread
NO_LIMIT = 1_000_000  # tokenizers without a known limit report model_max_length ~1e30
__all__ = ["ChatPredictor", "PromptError"]


class ChatPredictor:
    """Generates assistant replies for a list of chat messages (``{"role", "content"}``)."""

    def __init__(self, model: nn.Module, tokenizer, name: str, precision: str = "fp32"):
        """``precision``: ``fp32``, ``bf16`` or ``auto`` (bf16 where it is measurably faster
        here, ``precision.cast_for_inference``); the one used is ``self.precision``."""
        self.model, self.tokenizer, self.name = model, tokenizer, name
        ensure_chat_template(tokenizer)
        self.stop_ids = end_of_turn_ids(tokenizer)
        self.model.eval()
        self.precision = cast_for_inference(self.model, precision)
        self._lock = threading.Lock()  # one generation (or batched step) at a time per model
        self.batcher: BatchedGenerator | None = None  # see enable_batching

    @classmethod
    def from_run(cls, run_dir: str | Path, policy: LoadPolicy | None = None,
                 precision: str = "fp32") -> "ChatPredictor":
        """Base model + the run's trained weights (adapters merged for faster inference)."""
        model, tokenizer, _, _ = load_chat_run(run_dir, merge=True, policy=policy)
        return cls(model, tokenizer, Path(run_dir).name, precision)

    @classmethod
    def from_model(cls, name: str, policy: LoadPolicy | None = None,
                   precision: str = "fp32") -> "ChatPredictor":
        """An untuned model: an alias (``smollm2``), a local folder or a cached hub id.

        A folder is named by its last part only: the name reaches clients (``/health``,
        replies), and a full path would tell them about the server's file system.
        """
        policy = policy or LoadPolicy()
        model, tokenizer, _ = load_lm(name, policy.trust_remote_code, policy.allow_pickle)
        return cls(model, tokenizer, Path(name).name if Path(name).exists() else name,
                   precision)

    @classmethod
    def load(cls, name_or_run: str | Path, policy: LoadPolicy | None = None,
             precision: str = "fp32") -> "ChatPredictor":
        if RunDir(Path(name_or_run)).is_run():
            return cls.from_run(name_or_run, policy, precision)
        return cls.from_model(str(name_or_run), policy, precision)

    def enable_batching(self, max_batch: int = 8, prepare=None) -> bool:
        """Decode the streamed replies (``stream``, ``stream_respond``) of concurrent callers
        together, ``max_batch`` per forward pass (``inference.batching``; ``prepare`` runs on
        its thread); 1 turns it off. False where the model cannot be batched so (prompt
        learning, a sliding-window cache): its replies stay one at a time."""
        self.batcher = None
        if max_batch <= 1 or not batchable(self.model):
            return False
        self.batcher = BatchedGenerator(self.model, self.tokenizer, self.stop_ids, max_batch,
                                        self._lock, prepare)
        return True

    @property
    def context_length(self) -> int | None:
        """Tokens the model can attend to (position embeddings, tokenizer limit), if known."""
        sizes = [getattr(getattr(self.model, "config", None), "max_position_embeddings", None),
                 getattr(self.tokenizer, "model_max_length", None)]
        sizes = [s for s in sizes if isinstance(s, int) and 0 < s < NO_LIMIT]
        return min(sizes) if sizes else None

    def prompt_ids(self, messages: list[dict], max_new_tokens: int = 0,
                   tools: list[dict] | None = None) -> torch.Tensor:
        """The prompt as a (1, n) tensor; PromptError when the chat template refuses the
        conversation or prompt + ``max_new_tokens`` exceeds the model's context."""
        from jinja2 import TemplateError

        try:
            ids = render_prompt_ids(self.tokenizer, messages, tools)
        except TemplateError as exc:  # e.g. "roles must alternate user/assistant"
            raise PromptError(f"the model's chat template refused the messages: {exc}") from None
        limit = self.context_length
        if limit is not None and len(ids) + max_new_tokens > limit:
            raise PromptError(f"the prompt is {len(ids)} tokens; with max_tokens "
                              f"{max_new_tokens} it exceeds the model's context of {limit} "
                              "tokens (send fewer or shorter messages)")
        return torch.tensor([ids], device=model_device(self.model))

    def check_prompt(self, messages: list[dict], max_new_tokens: int,
                     tools: list[dict] | None = None) -> int:
        """The prompt's token count, after the checks of :meth:`prompt_ids`."""
        return int(self.prompt_ids(messages, max_new_tokens, tools).shape[1])

    def respond(self, messages: list[dict], tools: list[dict] | None = None,
                max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0,
                seed: int | None = None, tool_choice: str | dict = AUTO) -> ParsedReply:
        """The next assistant turn: its words and the tool calls it makes (read from the
        built-in ``<tool_call>`` form). ``messages`` may hold earlier calls and results.
        Decoding is constrained (``tool_decoding``): every call names a tool and fits its
        schema; ``tool_choice`` is OpenAI's (auto, none, required, a named function)."""
        ids = self.prompt_ids(messages, max_new_tokens, tools)
        constraint = self.call_constraint(tools, tool_choice)
        with self._lock:
            new = self._generate_ids(ids, max_new_tokens, temperature, top_p, seed,
                                     constraint=constraint)
        reply = parse_reply(self.tokenizer.decode(new, skip_special_tokens=True))
        return reply if constraint else checked_reply(reply, tools, tool_choice)

    def call_constraint(self, tools: list[dict] | None, tool_choice: str | dict = AUTO
                        ) -> CallConstraint | None:
        """The grammar one reply is decoded under; PromptError for a bad ``tool_choice``
        or a schema that cannot be enforced (raised before anything is generated). None
        when llguidance cannot read the tokenizer: decoding then runs free and
        ``checked_reply`` drops the calls the grammar would have forbidden (warned once)."""
        vocab = getattr(getattr(self.model, "config", None), "vocab_size", None)
        try:
            return call_constraint(self.tokenizer, vocab or len(self.tokenizer), self.stop_ids,
                                   tools, tool_choice)
        except UnsupportedTokenizer as exc:
            resolve_tool_choice(tool_choice, tools)  # a bad choice is still refused
            if not getattr(self, "_warned_unconstrained", False):
                log.warning("%s; replies are decoded unconstrained and calls that break "
                            "their schema are dropped", exc)
                self._warned_unconstrained = True
            return None

    def stream_respond(self, messages: list[dict], tools: list[dict] | None = None,
                       max_new_tokens: int = 128, temperature: float = 0.0, top_p: float = 1.0,
                       seed: int | None = None, cancel: threading.Event | None = None,
                       deadline: float | None = None, tool_choice: str | dict = AUTO
                       ) -> Iterator[str | ToolCall]:
        """The next assistant turn as it is generated: text pieces (``str``), then each
        tool call (``ToolCall``) once the reply is complete. Call text never reaches the
        text pieces: from the first ``<tool_call>`` on, everything is held and parsed.
        Constrained as :meth:`respond`; a bad ``tool_choice`` raises PromptError at the
        first ``next()``, before any token is generated."""
        ids = self.prompt_ids(messages, max_new_tokens, tools)
        constraint = self.call_constraint(tools, tool_choice)
        held, calling = "", False
        for piece in self._stream_ids(ids, max_new_tokens, temperature, top_p, seed, cancel,
                                      deadline, constraint):
            held += piece
            if not calling and CALL_OPEN in held:
                before, held = held.split(CALL_OPEN, 1)
                held, calling = CALL_OPEN + held, True
                if before:
                    yield before
            elif not calling:
                keep = partial_marker(held, CALL_OPEN)
                if len(held) > keep:
                    yield held[:len(held) - keep]
                    held = held[len(held) - keep:]
        if not calling:
            if held:
                yield held
            return
        parsed = parse_reply(held)
        parsed = parsed if constraint else checked_reply(parsed, tools, tool_choice)
        if parsed.content:  # words after the calls
            yield parsed.content
        yield from parsed.calls

    def _generate_kwargs(self, max_new_tokens: int, temperature: float, top_p: float,
                         seed: int | None) -> dict:
        if seed is not None:
            torch.manual_seed(seed)
        sample = temperature > 0
        kwargs = {"max_new_tokens": max_new_tokens, "do_sample": sample,
                  "eos_token_id": self.stop_ids, "pad_token_id": self.tokenizer.pad_token_id}
        if sample:
            kwargs.update(temperature=temperature, top_p=top_p)
        else:  # greedy: silence the model's own sampling defaults
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def chat(self, messages: list[dict], max_new_tokens: int = 128, temperature: float = 0.0,
             top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None) -> str:
        """The full reply (greedy when temperature is 0), generated without a thread."""
        ids = self.prompt_ids(messages, max_new_tokens)
        with self._lock:
            new = self._generate_ids(ids, max_new_tokens, temperature, top_p, seed)
        text = self.tokenizer.decode(new, skip_special_tokens=True)
        return "".join(cut_at_stop(iter([text]), stop or [])).strip()

    def stream(self, messages: list[dict], max_new_tokens: int = 128, temperature: float = 0.0,
               top_p: float = 1.0, stop: list[str] | None = None, seed: int | None = None,
               cancel: threading.Event | None = None,
               deadline: float | None = None) -> Iterator[str]:
        """Yield reply text pieces as they are generated; stops at any ``stop`` string.

        Generation runs in a thread feeding a streamer (with batching: in the batch, see
        ``enable_batching``). It stops early when ``cancel`` is set or ``time.monotonic()``
        passes ``deadline`` (checked after every token), and whenever this iterator is
        closed or abandoned, which returns once the generation has stopped. An exception in
        the generation ends the stream and is re-raised here, in the consumer."""
        ids = self.prompt_ids(messages, max_new_tokens)
        yield from cut_at_stop(self._stream_ids(ids, max_new_tokens, temperature, top_p, seed,
                                                cancel, deadline), stop or [])

    def _stream_ids(self, ids: torch.Tensor, max_new_tokens: int, temperature: float,
                    top_p: float, seed: int | None, cancel: threading.Event | None,
                    deadline: float | None, constraint: CallConstraint | None = None
                    ) -> Iterator[str]:
        """Decoded text pieces of a generation from ``ids`` (see :meth:`stream`)."""
        from transformers import TextIteratorStreamer

        if self.batcher is not None:
            yield from self.batcher.stream(ids, max_new_tokens, temperature, top_p, seed,
                                           StopSignal(threading.Event(), cancel, deadline),
                                           constraint)
            return
        streamer = TextIteratorStreamer(self.tokenizer, skip_prompt=True,
                                        skip_special_tokens=True)
        halt = StopSignal(threading.Event(), cancel, deadline)
        errors: list[BaseException] = []

        def generate() -> None:
            try:
                self._generate_ids(ids, max_new_tokens, temperature, top_p, seed, streamer,
                                   halt, constraint)
            except BaseException as exc:  # handed to the consumer, never lost in the thread
                errors.append(exc)
            finally:
                streamer.end()  # the consumer always wakes up, whatever happened

        with self._lock:
            worker = threading.Thread(target=generate, name=GENERATION_THREAD, daemon=True)
            worker.start()
            try:
                yield from streamer
            finally:  # stop string, close() or an error downstream: stop generating now
                halt.local.set()
                worker.join()
        if errors:
            raise errors[0]

    @torch.no_grad()
    def _generate_ids(self, ids: torch.Tensor, max_new_tokens: int, temperature: float,
                      top_p: float, seed: int | None, streamer=None,
                      halt: StopSignal | None = None,
                      constraint: CallConstraint | None = None) -> list[int]:
        """New token ids; prompt-learning models use their own exact decoding loop. A
        ``constraint`` masks the logits of every step, before temperature and top-p."""
        if is_prompt_learning(self.model):
            return decode(self.model, ids, max_new_tokens, self.stop_ids, temperature, top_p,
                          streamer, seed, halt, constraint)
        kwargs = self._generate_kwargs(max_new_tokens, temperature, top_p, seed)
        if constraint is not None:
            from transformers import LogitsProcessorList

            kwargs["logits_processor"] = LogitsProcessorList([constraint])
        if halt is not None:
            from transformers import StoppingCriteriaList

            kwargs["stopping_criteria"] = StoppingCriteriaList([halt.criterion()])
        out = self.model.generate(input_ids=ids, attention_mask=torch.ones_like(ids),
                                  streamer=streamer, **kwargs)
        new = out[0, ids.shape[1]:].tolist()
        return new[:-1] if new and new[-1] in self.stop_ids else new
