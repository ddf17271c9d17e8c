"""Background workers that own the models, so concurrent HTTP clients queue instead of racing.

* ``GenerationWorker`` (``generation.py``, imported here too): chat replies, one request at
  a time or several decoded together, with deadlines and cancellation.
* ``MicroBatcher``: one thread classifies utterances; whatever requests arrived while the
  previous forward pass ran are classified together in the next one, so a lone request
  never waits and a crowd shares forward passes.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable

from .generation import (GenerationJob, GenerationWorker, QueueFull, ShuttingDown,
                         cancel_on_disconnect, job_pieces)

__all__ = ["GenerationJob", "GenerationWorker", "MicroBatcher", "QueueFull", "ShuttingDown",
           "cancel_on_disconnect", "job_pieces"]


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
