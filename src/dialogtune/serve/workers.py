"""Background workers that own the models, so concurrent HTTP clients queue instead of racing.

* ``GenerationWorker``: one thread generates replies one request at a time, in arrival
  order (on CPU, parallel generations only slow each other down); a bounded queue turns
  overload into a 429 instead of unbounded memory. Each job has a cancel flag (set when
  its client disconnects) and a deadline, both checked by the model after every token, so
  an abandoned or runaway generation frees the worker; a failure reaches its request as
  an exception and the next job runs.
* ``MicroBatcher``: one thread classifies utterances; whatever requests arrived while the
  previous forward pass ran are classified together in the next one, so a lone request
  never waits and a crowd shares forward passes.
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


@dataclass
class GenerationJob:
    """One queued generation; pieces travel back to the request's event loop.

    ``cancelled`` stops the generation at its next token (client gone, server stopping);
    ``deadline`` (``time.monotonic()``) is set when generation starts; ``truncated`` tells
    whether it was cut short by either, so the reply's finish_reason is "length".
    ``respond`` generates instead of ``chat.stream`` (same arguments; a tool-calling
    request's, which also yields ``ToolCall``s).
    """

    messages: list[dict]
    options: dict
    loop: asyncio.AbstractEventLoop
    respond: Callable[..., Any] | None = None
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


class QueueFull(Exception):
    """Too many generation requests are waiting."""


class GenerationWorker:
    """A single thread running ``chat.stream`` for queued jobs, first come first served.

    Each job may generate for ``timeout`` seconds (None: no limit); the chat model gets the
    job's cancel flag and deadline and checks both after every token. A job still running
    ``grace`` seconds past its deadline (a forward pass that never returns) makes the
    worker unhealthy, as does a dead thread: see ``problem``.
    """

    def __init__(self, chat, max_queue: int = 256, prepare: Callable[[], None] | None = None,
                 timeout: float | None = 300.0, grace: float = 10.0):
        self.chat, self.prepare = chat, prepare  # prepare: run before each job (thread setup)
        self.max_queue, self.timeout, self.grace = max_queue, timeout, grace
        self._jobs: queue.Queue = queue.Queue()  # bounded in submit; the stop marker always fits
        self._current: GenerationJob | None = None
        self._stopping = False
        self._thread = threading.Thread(target=self._run, name="dialogtune-generate",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    @property
    def pending(self) -> int:
        return self._jobs.qsize()

    def submit(self, messages: list[dict], respond: Callable[..., Any] | None = None,
               **options) -> GenerationJob:
        """Queue a generation; QueueFull when ``max_queue`` jobs are already waiting."""
        if self._stopping or self._jobs.qsize() >= self.max_queue:
            raise QueueFull
        job = GenerationJob(messages, options, asyncio.get_running_loop(), respond)
        self._jobs.put(job)
        return job

    def problem(self) -> str | None:
        """Why this worker cannot serve now (None when it can): dead thread or stuck job."""
        if self._thread.ident is not None and not self._thread.is_alive() \
                and not self._stopping:
            return "the generation worker has stopped"
        job = self._current
        if job is not None and job.deadline is not None and \
                time.monotonic() > job.deadline + self.grace:
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
        self._current = job
        try:
            if self.prepare is not None:
                self.prepare()
            generate = job.respond or self.chat.stream
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
            self._current = None
            job.send(_DONE)

    def stop(self, timeout: float = 30.0) -> bool:
        """Finish the queued jobs within ``timeout`` seconds, then end the thread.

        Past ``timeout``, every job left is cancelled (a running generation stops at its
        next token) and stop waits at most ``min(timeout, 5)`` seconds more before giving
        up on a thread that does not end (it is a daemon). True when the thread ended.
        """
        if not self._thread.is_alive():
            return True
        self._stopping = True
        self._jobs.put(None)
        self._thread.join(timeout)
        if self._thread.is_alive():
            self._cancel_all()
            self._thread.join(min(timeout, 5.0))
        if self._thread.is_alive():
            log.error("the generation worker did not stop within %.1f s; leaving it", timeout)
            return False
        return True

    def _cancel_all(self) -> None:
        with self._jobs.mutex:
            waiting = [job for job in self._jobs.queue if job is not None]
        for job in waiting:
            job.send(ShuttingDown("the server is shutting down"))
            job.cancelled.set()
        if (job := self._current) is not None:
            job.cancelled.set()


class MicroBatcher:
    """Runs ``fn(items) -> results`` (one result per item) on batches of waiting requests.

    At most ``max_queue`` requests wait (QueueFull beyond), so a flood of requests costs a
    429 each instead of unbounded memory and latency.
    """

    def __init__(self, fn: Callable[[list], list], max_batch: int = 64,
                 prepare: Callable[[], None] | None = None, max_queue: int = 256):
        self.fn, self.max_batch, self.prepare = fn, max_batch, prepare  # prepare: once, on start
        self._requests: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread = threading.Thread(target=self._run, name="dialogtune-batch", daemon=True)

    def start(self) -> None:
        self._thread.start()

    async def submit(self, items: list) -> list:
        """The results for ``items``, computed in a batch with other waiting requests;
        QueueFull when ``max_queue`` requests are already waiting."""
        future = asyncio.get_running_loop().create_future()
        try:
            self._requests.put_nowait((items, future))
        except queue.Full:
            raise QueueFull from None
        return await future

    def _run(self) -> None:
        if self.prepare is not None:
            self.prepare()
        while (first := self._requests.get()) is not None:
            batch, size, last = [first], len(first[0]), False
            while size < self.max_batch:
                try:
                    item = self._requests.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    last = True
                    break
                batch.append(item)
                size += len(item[0])
            self._answer(batch)
            if last:
                return

    def _answer(self, batch: list) -> None:
        items = [x for request, _ in batch for x in request]
        try:
            results, error = self.fn(items), None
        except Exception as exc:
            results, error = [], exc
        start = 0
        for request, future in batch:
            part = results[start:start + len(request)]
            start += len(request)
            try:
                future.get_loop().call_soon_threadsafe(_settle, future, part, error)
            except RuntimeError:  # that request's event loop has closed
                pass

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread.is_alive():
            try:
                self._requests.put(None, timeout=timeout)  # after the waiting requests
            except queue.Full:  # still full after timeout: the thread is stuck; it is a daemon
                return
            self._thread.join(timeout)


def _settle(future: asyncio.Future, result: list, error: Exception | None) -> None:
    if future.done():  # the request was cancelled meanwhile
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)


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

