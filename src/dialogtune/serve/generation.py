"""The generation queue: chat requests wait here for a slot, then stream their pieces back.

``GenerationWorker`` runs ``slots`` threads taking jobs in arrival order; a bounded queue
turns overload into a 429 instead of unbounded memory. With one slot it is the
one-at-a-time worker (each reply a whole ``generate``, the next request waiting for it).
With more, as many replies run at once, and a chat model with batching enabled
(``ChatPredictor.enable_batching``) decodes them together, one forward pass a step, so a
crowd of clients shares the model instead of queueing behind each other.

Each job has a cancel flag (set when its client disconnects) and a deadline, both checked
by the model after every token, so an abandoned or runaway generation frees its slot; a
failure reaches its request as an exception and the other jobs go on.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import APIError

_DONE = object()
log = logging.getLogger("dialogtune.serve")


class ShuttingDown(Exception):
    """The server stopped before this job could run."""


class QueueFull(Exception):
    """Too many requests are waiting."""


@dataclass(eq=False)  # compared and hashed by identity: a worker keeps a set of them
class GenerationJob:
    """One queued generation; pieces travel back to the request's event loop.

    ``cancelled`` stops the generation at its next token (client gone, server stopping);
    ``deadline`` (``time.monotonic()``) is set when generation starts; ``truncated`` tells
    whether it was cut short by either, so the reply's finish_reason is "length".
    ``respond`` generates instead of ``chat.stream`` (same arguments; a tool-calling
    request's, which also yields ``ToolCall``s); ``chat`` is the model this job asked for
    (None: the worker's own).
    """

    messages: list[dict]
    options: dict
    loop: asyncio.AbstractEventLoop
    respond: Callable[..., Any] | None = None
    chat: Any = None
    pieces: asyncio.Queue = field(default_factory=asyncio.Queue)
    cancelled: threading.Event = field(default_factory=threading.Event)
    deadline: float | None = None
    truncated: bool = False

    def send(self, item: Any) -> None:
        try:
            self.loop.call_soon_threadsafe(self.pieces.put_nowait, item)
        except RuntimeError:  # the loop is gone: nobody is listening any more
            self.cancelled.set()

    def expired(self) -> bool:
        return self.deadline is not None and time.monotonic() >= self.deadline

    async def stream(self) -> AsyncIterator[str]:
        """Reply pieces as they are generated; re-raises a generation error."""
        while True:
            item = await self.pieces.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item


class GenerationWorker:
    """``slots`` threads running ``chat.stream`` (or a job's own ``respond``) for queued
    jobs, first come first served.

    Each job may generate for ``timeout`` seconds (None: no limit); the chat model gets the
    job's cancel flag and deadline and checks both after every token. A job still running
    ``grace`` seconds past its deadline (a forward pass that never returns) makes the
    worker unhealthy, as does a dead thread: see ``problem``.
    """

    def __init__(self, chat, max_queue: int = 256, prepare: Callable[[], None] | None = None,
                 timeout: float | None = 300.0, grace: float = 10.0, slots: int = 1):
        self.chat, self.prepare = chat, prepare  # prepare: run before each job (thread setup)
        self.max_queue, self.timeout, self.grace = max_queue, timeout, grace
        self._jobs: queue.Queue = queue.Queue()  # bounded in submit; stop markers always fit
        self._current: set[GenerationJob] = set()
        self._stopping = False
        self._threads = [threading.Thread(target=self._run, name=f"dialogtune-generate-{i}",
                                          daemon=True) for i in range(max(1, slots))]

    @property
    def slots(self) -> int:
        return len(self._threads)

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def submit(self, messages: list[dict], respond: Callable[..., Any] | None = None,
               chat=None, **options) -> GenerationJob:
        """Queue a generation (by ``chat``, default the worker's); QueueFull when
        ``max_queue`` jobs are already waiting."""
        if self._stopping or self._jobs.qsize() >= self.max_queue:
            raise QueueFull
        job = GenerationJob(messages, options, asyncio.get_running_loop(), respond, chat)
        self._jobs.put(job)
        return job

    def problem(self) -> str | None:
        """Why this worker cannot serve now (None when it can): dead thread or stuck job."""
        dead = any(t.ident is not None and not t.is_alive() for t in self._threads)
        if dead and not self._stopping:
            return "the generation worker has stopped"
        now = time.monotonic()
        if any(job.deadline is not None and now > job.deadline + self.grace
               for job in list(self._current)):
            return "a generation is stuck past its deadline"
        return None

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            self._generate(job)

    def _generate(self, job: GenerationJob) -> None:
        if job.cancelled.is_set():  # client gone or server stopping while it waited
            job.send(_DONE)
            return
        job.deadline = time.monotonic() + self.timeout if self.timeout else None
        self._current.add(job)
        try:
            if self.prepare is not None:
                self.prepare()
            generate = job.respond or (job.chat or self.chat).stream
            pieces = generate(job.messages, cancel=job.cancelled, deadline=job.deadline,
                              **job.options)
            try:
                for piece in pieces:
                    if piece:
                        job.send(piece)
                    if job.cancelled.is_set() or job.expired():  # in case chat ignores them
                        break
            finally:
                getattr(pieces, "close", lambda: None)()  # ends (and joins) the generation
            job.truncated = job.cancelled.is_set() or job.expired()
        except Exception as exc:  # reported to the waiting request, worker keeps going
            job.send(exc)
        finally:
            self._current.discard(job)
            job.send(_DONE)

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the queued jobs within ``timeout`` seconds, then end the threads.

        Past ``timeout``, every job left is cancelled (a running generation stops at its
        next token) and stop waits at most ``min(timeout, 5)`` seconds more before giving
        up on threads that do not end (they are daemons). True when all threads ended.
        """
        if not any(t.is_alive() for t in self._threads):
            return True
        self._stopping = True
        for _ in self._threads:
            self._jobs.put(None)
        self._join(timeout)
        if any(t.is_alive() for t in self._threads):
            self._cancel_all()
            self._join(min(timeout, 5.0))
        if any(t.is_alive() for t in self._threads):
            log.error("the generation worker did not stop within %.1f s; leaving it", timeout)
            return False
        return True

    def _join(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _cancel_all(self) -> None:
        with self._jobs.mutex:
            waiting = [job for job in self._jobs.queue if job is not None]
        for job in waiting:
            job.send(ShuttingDown("the server is shutting down"))
            job.cancelled.set()
        for job in list(self._current):
            job.cancelled.set()


async def job_pieces(job: GenerationJob) -> AsyncIterator[str]:
    """The job's pieces; a failed generation becomes a generic 500 (details in the log)."""
    try:
        async for piece in job.stream():
            yield piece
    except ShuttingDown:
        raise APIError(503, "the server is shutting down; retry", "shutting_down") from None
    except Exception:
        log.exception("generation failed")
        raise APIError(500, "generation failed (see the server log)",
                       "generation_error") from None


async def cancel_on_disconnect(receive: Callable[[], Awaitable[dict]],
                                job: GenerationJob) -> None:
    """Cancel ``job`` when the client disconnects (the ASGI ``http.disconnect`` message)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    job.cancelled.set()
