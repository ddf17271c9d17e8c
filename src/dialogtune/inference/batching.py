"""Step-level batching of chat generations: concurrent replies share each forward pass.

One thread owns the model. Between decoding steps it admits waiting sequences (each
prefilled alone, then joined to the batch's key/value cache, ``batch_cache``) and drops
finished ones; each step runs one forward pass over the last token of every sequence in
the batch. Everything else stays per sequence: its logits processors (the request's own
``GenerationConfig`` through transformers' ``_get_logits_processor``, so greedy, sampling
with temperature / top-p and the llguidance tool-call constraint run exactly as in
``generate``), its random generator (a ``seed`` gives the same sample whoever shares the
batch), its stop signal (client gone, deadline, consumer closed) and its text streamer.

Why not transformers' own continuous batching (``generate_batch`` / the paged-attention
manager)? Its logits processors are one list for all requests, called without knowing
which request a row belongs to, so a per-request llguidance grammar cannot run there, and
``do_sample`` is global; and it is not faster here. ``benchmarks/batching_peers.py`` on
SmolLM2-135M, 8 prompts × 16 greedy tokens, 2 threads, 2-core Intel Xeon (RESULTS.md):
``generate_batch`` 25.0 tokens/s, plain ``generate`` one prompt at a time 27.8, this
module 76.3, all three with the same tokens.
"""

from __future__ import annotations

import copy
import logging
import threading
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import torch

from .batch_cache import BatchCache
from .streaming import StopSignal

log = logging.getLogger("dialogtune")
BATCH_THREAD = "dialogtune-batch-generation"
IDLE_SECONDS = 10.0  # an idle generating thread ends after this (a new one starts on demand)


def batchable(model) -> bool:
    """Whether ``model``'s replies can share forward passes here: a plain causal LM (not a
    prompt-learning one, which decodes in its own loop) whose cache layers are all full
    attention (a sliding window cannot be left-padded and joined)."""
    from transformers import DynamicCache
    from transformers.cache_utils import DynamicLayer

    from .generation import is_prompt_learning

    if is_prompt_learning(model) or not hasattr(model, "_get_logits_processor"):
        return False
    layers = DynamicCache(config=model.config).layers
    return all(type(layer) is DynamicLayer for layer in layers)


@dataclass
class Sequence:
    """One reply being generated: its tokens so far, how it chooses the next, where its
    text goes and why it would stop."""

    ids: list[int]
    max_new_tokens: int
    processors: object  # a transformers LogitsProcessorList
    sample: bool
    generator: torch.Generator | None
    halt: StopSignal
    streamer: object  # a transformers TextIteratorStreamer
    generated: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class BatchedGenerator:
    """Generates for many callers at once: ``stream`` from any thread; the forward passes
    run on this generator's own thread, at most ``max_batch`` sequences per step."""

    def __init__(self, model, tokenizer, stop_ids: list[int], max_batch: int = 8,
                 lock: threading.Lock | None = None, prepare: Callable[[], None] | None = None):
        self.model, self.tokenizer, self.stop_ids = model, tokenizer, set(stop_ids)
        self.max_batch, self.prepare = max_batch, prepare
        self._lock = lock or threading.Lock()  # held per forward pass, not per reply
        self._waiting: deque[Sequence] = deque()
        self._active: list[Sequence] = []
        self._batch = BatchCache()
        self._wake = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self.steps = 0  # decoding steps run (tests and benchmarks read it)
        self.widest = 0  # the most sequences one step has decoded together
        self.tokens = 0  # reply tokens chosen (stop tokens not counted), all sequences

    def stream(self, ids: torch.Tensor, max_new_tokens: int, temperature: float = 0.0,
               top_p: float = 1.0, seed: int | None = None, halt: StopSignal | None = None,
               constraint=None) -> Iterator[str]:
        """Text pieces of the reply to the prompt ``ids`` (1, n), as ``generate`` with a
        ``TextIteratorStreamer`` would yield them. Closing the iterator stops the reply at
        the next step (and waits for it); a failure of this reply is raised here, after
        its last piece."""
        halt = halt or StopSignal(threading.Event())
        sequence = self._sequence(ids, max_new_tokens, temperature, top_p, seed, halt,
                                  constraint)
        self._submit(sequence)
        try:
            yield from sequence.streamer
        finally:  # as generate's thread is joined: return once the engine has dropped it
            halt.local.set()
            sequence.done.wait()  # at most one step away
        if sequence.error is not None:
            raise sequence.error

    def _sequence(self, ids, max_new_tokens, temperature, top_p, seed, halt, constraint
                  ) -> Sequence:
        from transformers import LogitsProcessorList, TextIteratorStreamer

        sample = temperature > 0
        config = copy.deepcopy(self.model.generation_config)
        config.update(do_sample=sample, max_new_tokens=max_new_tokens,
                      eos_token_id=sorted(self.stop_ids),
                      pad_token_id=self.tokenizer.pad_token_id,
                      **({"temperature": temperature, "top_p": top_p} if sample else
                         {"temperature": None, "top_p": None, "top_k": None}))
        processors = self.model._get_logits_processor(
            config, input_ids_seq_length=ids.shape[1],
            logits_processor=LogitsProcessorList([constraint] if constraint else []),
            device=str(self.model.device))
        generator = None
        if sample:
            generator = torch.Generator(device=self.model.device)
            if seed is None:
                generator.seed()  # a fresh random seed, this sequence's own
            else:
                generator.manual_seed(seed)
        streamer = TextIteratorStreamer(self.tokenizer, skip_special_tokens=True)
        return Sequence(ids[0].tolist(), max_new_tokens, processors, sample, generator, halt,
                        streamer)

    def _submit(self, sequence: Sequence) -> None:
        with self._wake:
            self._waiting.append(sequence)
            if self._thread is None:  # started on demand; it ends when idle or closed
                self._stopping = False
                self._thread = threading.Thread(target=self._run, name=BATCH_THREAD,
                                                daemon=True)
                self._thread.start()
            self._wake.notify()

    def close(self, timeout: float = 5.0) -> None:
        """End the generating thread now: every sequence waiting or generating ends with
        its text so far. A later ``stream`` starts a new thread."""
        with self._wake:
            thread, self._stopping = self._thread, True
            self._wake.notify()
        if thread is not None:
            thread.join(timeout)

    # --- the generation thread ------------------------------------------------------

    def _run(self) -> None:
        while True:
            if self.prepare is not None:  # each step: the thread count may follow the load
                self.prepare()
            if (joining := self._next_joining()) is None:
                return
            try:
                for sequence in joining:
                    self._admit(sequence)
                if self._active:
                    self._step()
            except Exception as exc:  # a fault of the batching itself: fail these, go on
                self._fail([*self._active, *joining], exc)
                self._active, self._batch = [], BatchCache()

    def _next_joining(self) -> list[Sequence] | None:
        """The waiting sequences that fit in the batch now; None when the thread should
        end: closed (everything left ends), or idle for ``IDLE_SECONDS`` (so a model
        replaced by a reload is freed once its last reply is done)."""
        with self._wake:
            if not (self._stopping or self._waiting or self._active):
                self._wake.wait(IDLE_SECONDS)
            if self._stopping or not (self._waiting or self._active):
                for sequence in [*self._active, *self._waiting]:
                    self._finish(sequence)
                self._active, self._waiting, self._batch = [], deque(), BatchCache()
                self._thread = None
                return None
            room = max(0, self.max_batch - len(self._active))
            return [self._waiting.popleft() for _ in range(min(room, len(self._waiting)))]

    @torch.no_grad()
    def _admit(self, sequence: Sequence) -> None:
        """Prefill one sequence alone, choose its first token, join it to the batch."""
        from transformers import DynamicCache

        if sequence.halt():
            return self._finish(sequence)
        try:
            ids = torch.tensor([sequence.ids], device=self.model.device)
            cache = DynamicCache(config=self.model.config)
            with self._lock:
                out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids),
                                 cache=cache, use_cache=True, logits_to_keep=1)
            if self._advance(sequence, out.logits[:, -1, :]):
                self._batch.join(cache)  # filled in place by the forward pass
                self._active.append(sequence)
        except Exception as exc:  # this request fails; the others go on
            self._fail([sequence], exc)

    @torch.no_grad()
    def _step(self) -> None:
        """One forward pass for every active sequence, then each chooses its token."""
        for sequence in self._active:
            if sequence.halt():  # cancelled, past its deadline or its consumer left
                self._finish(sequence)
        self._leave([i for i, s in enumerate(self._active) if not s.done.is_set()])
        if not self._active:
            return
        tokens = torch.tensor([[s.ids[-1]] for s in self._active], device=self.model.device)
        mask, positions = self._batch.step_inputs()
        try:
            with self._lock:
                out = self.model(input_ids=tokens, attention_mask=mask, position_ids=positions,
                                 cache=self._batch.cache, use_cache=True)
        except Exception as exc:  # the batch is lost: each of its requests gets the error
            self._fail(self._active, exc)
            self._active, self._batch = [], BatchCache()
            return
        self._batch.mask = mask
        self.steps, self.widest = self.steps + 1, max(self.widest, len(self._active))
        logits = out.logits[:, -1, :]
        self._leave([i for i, s in enumerate(self._active) if self._advance(s, logits[i:i + 1])])

    def _leave(self, keep: list[int]) -> None:
        if len(keep) == len(self._active):
            return
        self._active = [self._active[i] for i in keep]
        self._batch.keep(keep)

    def _advance(self, sequence: Sequence, logits: torch.Tensor) -> bool:
        """Choose and stream the sequence's next token; False once it has finished."""
        try:
            token = self._choose(sequence, logits)
        except Exception as exc:  # a grammar error, say: only this request fails
            self._fail([sequence], exc)
            return False
        sequence.ids.append(token)
        sequence.generated += 1
        self.tokens += token not in self.stop_ids
        sequence.streamer.put(torch.tensor([token]))
        if token in self.stop_ids or sequence.generated >= sequence.max_new_tokens \
                or sequence.halt():
            return self._finish(sequence)
        return True

    def _choose(self, sequence: Sequence, logits: torch.Tensor) -> int:
        ids = torch.tensor([sequence.ids], device=logits.device)
        scores = sequence.processors(ids, logits.float())
        if not sequence.sample:
            return int(scores.argmax(-1))
        probs = torch.softmax(scores, dim=-1)
        return int(torch.multinomial(probs, 1, generator=sequence.generator))

    def _fail(self, sequences: list[Sequence], exc: BaseException) -> None:
        log.warning("batched generation failed for %d request(s): %r", len(sequences), exc)
        for sequence in sequences:
            sequence.error = exc
            self._finish(sequence)

    @staticmethod
    def _finish(sequence: Sequence) -> bool:
        """End the sequence's stream (once); False: the sequence is not kept."""
        if not sequence.done.is_set():
            sequence.done.set()
            sequence.streamer.end()
        return False
