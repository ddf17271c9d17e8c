"""The chat models one server answers with: chosen by a request's ``model``, reloadable.

The first model is the default (a request without ``model``). A reload loads the model's
weights anew (from the run folder it was served from) on a thread while requests go on,
then switches new requests to the new copy in one assignment; a request that already has
the old copy (queued or generating) finishes on it, and the old copy is freed once the
last of them is done (its batching thread ends when idle).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import time
from collections.abc import Awaitable, Callable

from .errors import APIError

log = logging.getLogger("dialogtune.serve")


class ChatModels:
    """Chat predictors by name, in the order given; each gets batching when ``batch`` > 1.

    ``reloader(name)`` returns a freshly loaded predictor for ``name`` (None: reloading is
    refused with a 400).
    """

    def __init__(self, predictors: list, batch: int = 1, prepare: Callable[[], None] | None = None,
                 reloader: Callable[[str], object] | None = None):
        self.batch, self.prepare, self.reloader = batch, prepare, reloader
        self._models: dict[str, object] = {}
        for chat in predictors:
            name = str(chat.name)
            if name in self._models:
                raise ValueError(f"two chat models are both named '{name}': serve runs whose "
                                 "folders have different names")
            self._models[name] = chat
        enabled = [self._enable(chat) for chat in predictors]  # each one: no short cut
        self.batching = bool(enabled) and all(enabled)
        self._reloading = asyncio.Lock()

    def __bool__(self) -> bool:
        return bool(self._models)

    @property
    def names(self) -> list[str]:
        return list(self._models)

    @property
    def default(self):
        return next(iter(self._models.values()), None)

    @property
    def slots(self) -> int:
        """Replies the generation worker should run at once: ``batch`` when every model
        batches them, else one (replies of a model that cannot batch would only queue on
        its lock, their deadlines running)."""
        return self.batch if self.batching else 1

    def get(self, name: str | None):
        """The model a request names (None: the default); a 404 naming an unknown one."""
        if not self._models:
            raise APIError(404, "no chat model is loaded (start the server with --chat RUN)",
                           "model_not_found", "model")
        if name is None:
            return self.default
        if name not in self._models:
            raise APIError(404, f"model '{name}' is not served here (chat models: "
                           f"{', '.join(self._models)})", "model_not_found", "model")
        return self._models[name]

    def _enable(self, chat) -> bool:
        enable = getattr(chat, "enable_batching", None)
        return bool(self.batch > 1 and enable is not None and enable(self.batch, self.prepare))

    async def reload(self, name: str | None = None) -> list[dict]:
        """Reload ``name`` (None: every chat model), one reload at a time; what was
        reloaded, with the seconds each load took. A failed load leaves the old model
        serving and is a 500 naming the model."""
        names = [name] if name is not None else self.names
        for each in names:
            self.get(each)  # a 404 for an unknown name, before anything loads
        if self.reloader is None:
            raise APIError(400, "this server cannot reload its models (they were not loaded "
                           "from run folders)", "reload_unsupported")
        async with self._reloading:
            return [await self._reload_one(each) for each in names]

    async def _reload_one(self, name: str) -> dict:
        started = time.perf_counter()
        try:
            fresh = await asyncio.to_thread(self.reloader, name)
        except Exception as exc:
            log.exception("reloading %s failed; the loaded weights keep serving", name)
            raise APIError(500, f"reloading '{name}' failed; the loaded weights keep serving "
                           f"(see the server log): {type(exc).__name__}",
                           "reload_failed", "model") from None
        fresh.name = name
        self._enable(fresh)
        self._models[name] = fresh  # new requests get it; running ones keep the old copy
        seconds = round(time.perf_counter() - started, 3)
        log.info("reloaded %s in %.1f s", name, seconds)
        return {"id": name, "seconds": seconds}

    def close(self) -> None:
        """End the batching threads (after the generation worker has drained)."""
        for chat in self._models.values():
            if getattr(chat, "batcher", None) is not None:
                chat.batcher.close()


def reload_on_hangup(reload: Callable[[], Awaitable[dict]]) -> bool:
    """Run ``reload()`` (every chat model) on SIGHUP; in-flight replies finish on the old
    weights. False where this thread cannot handle signals (not the main one, not Unix)."""
    loop, running = asyncio.get_running_loop(), set()

    async def hangup() -> None:
        try:
            done = await reload()
            log.info("SIGHUP: reloaded %s", ", ".join(item["id"] for item in done["data"]))
        except Exception as exc:  # logged; the loaded weights keep serving
            log.error("SIGHUP: reload failed: %s", getattr(exc, "message", exc))

    def start() -> None:
        task = loop.create_task(hangup())
        running.add(task)  # held until done: the loop keeps only a weak reference
        task.add_done_callback(running.discard)

    try:
        loop.add_signal_handler(signal.SIGHUP, start)
    except (RuntimeError, ValueError, NotImplementedError, AttributeError):
        return False
    return True
