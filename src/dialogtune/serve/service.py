"""The dialogue pipeline behind the routes: limits, NLU, generation, logging, feedback.

A chat request's last user turn is classified first (when an intent model is loaded); an
out-of-scope turn gets the configured fallback reply instead of a generation. Each answered
exchange is committed to the log before the client sees the end of its response.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Callable

from ..data.conversation_log import ConversationStore, Exchange, Provenance
from ..errors import PromptError
from .errors import APIError, error_body, public_error
from .feedback import record_feedback
from .nlu import IntentEngine, torch_threads
from .schemas import ChatCompletionRequest, FeedbackRequest, IntentRequest
from .settings import ServeSettings
from .chat_models import ChatModels
from .generation import GenerationWorker, QueueFull, cancel_on_disconnect, job_pieces
from .replies import PendingReply, Reply, aiter_items, chunk, finish_reason, new_id, sse
from .tools import link_results, message_chars, plan_tools

log = logging.getLogger("dialogtune.serve")


class DialogueService:
    """Owns the models' workers and the log; one per app, started by its lifespan.

    ``chat_predictor`` is one chat model or a list (the first answers requests that name
    none); ``reloader(name)`` loads a chat model anew for ``reload``.
    """

    def __init__(self, settings: ServeSettings, intent_predictor=None, chat_predictor=None,
                 reloader=None):
        self.settings = settings
        chats = chat_predictor if isinstance(chat_predictor, (list, tuple)) else \
            [chat_predictor] * (chat_predictor is not None)
        threads = torch_threads(settings.generation_threads)
        self.chats = ChatModels(list(chats), settings.generation_batch, threads, reloader)
        self.intents = (IntentEngine(intent_predictor, settings.oos_threshold,
                                     settings.fallback_intent, settings.intent_batch_size,
                                     settings.intent_threads, settings.max_intent_queue)
                        if intent_predictor is not None else None)
        timeout = settings.generation_timeout
        self.worker = (GenerationWorker(self.chats.default, settings.max_queue, threads,
                                        timeout, grace=min(10.0, timeout or 10.0),
                                        slots=self.chats.slots)
                       if self.chats else None)
        self.store: ConversationStore | None = None
        self.created = int(time.time())

    def start(self) -> None:
        if self.settings.log_db:
            self.store = ConversationStore(self.settings.log_db)
        for part in (self.intents, self.worker):
            if part is not None:
                part.start()

    def stop(self) -> None:
        """Finish queued work (generation: within ``drain_seconds``, then cancelled), then
        flush and close the log."""
        if self.worker is not None:
            self.worker.stop(self.settings.drain_seconds)
        self.chats.close()
        if self.intents is not None:
            self.intents.stop()
        if self.store is not None:
            self.store.close()

    @property
    def chat(self):
        """The default chat model (None without one)."""
        return self.chats.default

    async def reload(self, name: str | None = None) -> dict:
        """Load chat model ``name`` (None: all) anew; see ``ChatModels.reload``."""
        return {"object": "list", "data": await self.chats.reload(name)}

    def health(self) -> dict:
        """Status "ok", or "degraded" with the ``problem`` (the route then answers 503)."""
        problem = self.worker.problem() if self.worker else None
        return {"status": "degraded" if problem else "ok", "problem": problem,
                "chat": self.chat.name if self.chat else None, "chats": self.chats.names,
                "batch": self.worker.slots if self.worker else 0,
                "intent": self.intents.name if self.intents else None,
                "log": self.store is not None,
                "queued": self.worker.pending if self.worker else 0}

    def models(self) -> dict:
        cards = []
        cards += [{"id": name, "task": "chat", "created": self.created,
                   "precision": getattr(self.chats.get(name), "precision", None)}
                  for name in self.chats.names]
        if self.intents is not None:
            cards.append({"id": self.intents.name, "task": "intent", "created": self.created})
        return {"object": "list", "data": [{**c, "object": "model", "owned_by": "dialogtune"}
                                           for c in cards]}

    # --- intents ---------------------------------------------------------------------

    async def classify(self, request: IntentRequest) -> dict:
        """Ranked intents for each text; each result gets an id for feedback."""
        if self.intents is None:
            raise APIError(404, "no intent model is loaded (start the server with --intent RUN)",
                           "model_not_found")
        texts = request.items()
        self._check_texts(texts)
        results = await self.intents.read(texts, request.top_k or self.settings.top_k)
        rows = []
        for result in results:
            result["id"] = new_id("intent")
            rows.append(Exchange(result["id"], "intent", [{"role": "user", "content":
                                                           result["text"]}],
                                 model=self.intents.name, intent=result["intent"],
                                 confidence=result["confidence"],
                                 out_of_scope=result["out_of_scope"],
                                 latency_ms=result["latency_ms"], slots=result.get("slots")))
        await self._log(rows)
        return {"object": "list", "model": self.intents.name,
                "threshold": self.intents.threshold, "data": results}

    def _check_texts(self, texts: list[str]) -> None:
        if len(texts) > self.settings.max_texts:
            raise APIError(400, f"at most {self.settings.max_texts} texts per request",
                           "too_many_texts", "texts")
        if sum(len(t) for t in texts) > self.settings.max_chars:
            raise APIError(400, f"texts exceed {self.settings.max_chars} characters",
                           "too_many_characters", "texts")

    # --- chat ------------------------------------------------------------------------

    async def prepare(self, request: ChatCompletionRequest) -> PendingReply:
        """Validate limits, read the user's turn and queue the generation (or fall back)."""
        chat = self.chats.get(request.model)  # 404 naming a model not served here
        messages = link_results([m.as_dict() for m in request.messages])
        options = self._options(request, messages)
        plan = plan_tools(request, chat.tokenizer)
        tools = {"tools": plan.prompt_tools} if plan else {}
        try:  # template refusals and over-long prompts are 400s, found before queueing
            prompt_tokens = chat.check_prompt(messages, options["max_new_tokens"], **tools)
        except PromptError as exc:
            raise public_error(exc) from None
        turn = await self.read_turn(messages)
        pending = PendingReply(new_id("chatcmpl"), int(time.time()), time.perf_counter(),
                               messages, options, turn, int(prompt_tokens or 0), tools=plan,
                               chat=chat)
        if turn["out_of_scope"] and self.settings.fallback_reply:
            pending.fallback, turn["fallback"] = self.settings.fallback_reply, True
            return pending
        try:
            pending.job = self.worker.submit(messages, plan and plan.responder(chat),
                                             chat=chat, **options)
        except QueueFull:
            raise APIError(429, "the server is busy: too many requests are waiting; retry",
                           "queue_full") from None
        return pending

    def _options(self, request: ChatCompletionRequest, messages: list[dict]) -> dict:
        limits = self.settings
        if len(messages) > limits.max_messages:
            raise APIError(400, f"at most {limits.max_messages} messages per request",
                           "too_many_messages", "messages")
        if message_chars(messages) > limits.max_chars:
            raise APIError(400, f"messages exceed {limits.max_chars} characters",
                           "too_many_characters", "messages")
        max_tokens = request.token_budget(min(limits.default_max_tokens,
                                              limits.max_tokens_limit))
        if max_tokens > limits.max_tokens_limit:
            raise APIError(400, f"max_tokens is limited to {limits.max_tokens_limit}",
                           "max_tokens_too_large", "max_tokens")
        return {"max_new_tokens": max_tokens, "temperature": request.temperature,
                "top_p": request.top_p, "stop": request.stop or None, "seed": request.seed}

    async def read_turn(self, messages: list[dict]) -> dict:
        """Intent and confidence of the last user turn (nulls without an intent model)."""
        users = [i for i, m in enumerate(messages) if m["role"] == "user"]
        if self.intents is None or not users:
            return {"intent": None, "confidence": None, "out_of_scope": False, "fallback": False}
        last = users[-1]
        before = messages[last - 1] if last > 0 else None  # the question it answers (NLU)
        context = before["content"] if before and before["role"] == "assistant" else None
        (result,) = await self.intents.read([messages[last]["content"]], 1, [context])
        turn = {"intent": result["intent"], "confidence": result["confidence"],
                "out_of_scope": result["out_of_scope"], "fallback": False}
        if "slots" in result:
            turn["slots"] = result["slots"]
        return turn

    async def complete(self, request: ChatCompletionRequest,
                       receive: Callable[[], Awaitable[dict]] | None = None) -> dict:
        """A whole ``chat.completion``, logged before it is returned.

        ``receive`` (the ASGI one) is watched while generating: when the client disconnects
        the generation is cancelled, and nothing is logged.
        """
        pending = await self.prepare(request)
        watch = (asyncio.create_task(cancel_on_disconnect(receive, pending.job))
                 if receive is not None and pending.job is not None else None)
        reply = Reply()
        try:
            async for item in aiter_items([pending.fallback] if pending.fallback
                                          else job_pieces(pending.job)):
                reply.add(item)
        finally:
            if pending.job is not None:
                pending.job.cancelled.set()
            if watch is not None:
                watch.cancel()
        if watch is not None and watch.done() and not watch.cancelled():
            raise APIError(499, "the client closed the request", "client_closed")
        usage = self.usage(pending, reply)
        await self._log_chat(pending, reply)
        return {"id": pending.id, "object": "chat.completion", "created": pending.created,
                "model": str(pending.chat.name),
                "choices": [{"index": 0, "message": reply.message(),
                             "finish_reason": finish_reason(pending, reply, usage),
                             "logprobs": None}],
                "usage": usage, "dialogtune": pending.turn}

    async def stream(self, pending: PendingReply, include_usage: bool = False
                     ) -> AsyncIterator[str]:
        """``chat.completion.chunk`` events, the last content chunk, then ``[DONE]``."""
        reply, model = Reply(), pending.chat.name
        try:
            yield sse(chunk(pending, model, {"role": "assistant", "content": ""}, None, True))
            source = [pending.fallback] if pending.fallback else job_pieces(pending.job)
            async for item in aiter_items(source):
                yield sse(chunk(pending, model, reply.add(item)))  # words or one whole call
            usage = self.usage(pending, reply)
            await self._log_chat(pending, reply)
            yield sse(chunk(pending, model, {}, finish_reason(pending, reply, usage), True))
            if include_usage:
                yield sse({**chunk(pending, model, {}), "choices": [], "usage": usage})
            yield sse("[DONE]")
        except Exception as exc:  # headers are sent: report in-band, as OpenAI does
            error = public_error(exc, "generation")  # no internal text to the client
            yield sse(error_body(error.status, error.message, error.code, error.param))
        finally:
            if pending.job is not None:
                pending.job.cancelled.set()

    def usage(self, pending: PendingReply, reply: Reply) -> dict:
        prompt, text = pending.prompt_tokens, reply.generated()
        completion = len(pending.chat.tokenizer(text, add_special_tokens=False)["input_ids"])
        return {"prompt_tokens": prompt, "completion_tokens": completion,
                "total_tokens": prompt + completion}

    # --- log and feedback ---------------------------------------------------------------

    async def _log_chat(self, pending: PendingReply, reply: Reply) -> None:
        turn, plan = pending.turn, pending.tools
        params = {**pending.options, "tool_choice": plan.choice} if plan else pending.options
        await self._log([Exchange(
            pending.id, "chat", pending.messages, reply.text, str(pending.chat.name),
            turn["intent"], turn["confidence"], turn["out_of_scope"], turn["fallback"],
            round((time.perf_counter() - pending.started) * 1000, 3), params,
            slots=turn.get("slots"), tools=plan.offered if plan else None,
            tool_calls=reply.tool_calls())])

    async def _log(self, rows: list[Exchange]) -> None:
        if self.store is not None and rows:
            await asyncio.to_thread(self.store.log_many, rows)

    async def feedback(self, request: FeedbackRequest,
                       provenance: Provenance | None = None) -> dict:
        """Record a rating or correction for a logged exchange (see ``feedback.record``)."""
        return await record_feedback(self.store, self.settings, request, provenance)
