"""The HTTP routes: OpenAI-compatible chat, intents, feedback, health and the web chat.

Routes only: every decision is made in ``service.DialogueService`` (and the modules it
uses), which the tests also reach directly.
"""

from __future__ import annotations

import asyncio
import hmac
import signal
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import APIRouter, Depends, FastAPI, Header, Request
from fastapi.responses import FileResponse, JSONResponse, StreamingResponse
from fastapi.staticfiles import StaticFiles
from fastapi_offline import FastAPIOffline

from ..data.conversation_log import Provenance
from .chat_models import reload_on_hangup
from .errors import APIError, BodyLimitMiddleware, install_error_handlers
from .hosts import HostCheckMiddleware, default_allowed_hosts
from .schemas import (ChatCompletion, ChatCompletionRequest, FeedbackRequest,
                      FeedbackResponse, IntentRequest, IntentResponse, ModelList,
                      ReloadRequest, ReloadResponse)
from .service import DialogueService
from .settings import ServeSettings

STATIC = Path(__file__).parent / "static"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def bearer_check(api_key: str | None):
    """A dependency refusing requests without ``Authorization: Bearer <api_key>`` (401)."""
    expected = (api_key or "").encode()

    async def check(authorization: str | None = Header(None)) -> None:
        if not api_key:
            return
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not hmac.compare_digest(token.strip().encode(),
                                                                 expected):
            raise APIError(401, "invalid or missing API key (send 'Authorization: Bearer KEY')",
                           "invalid_api_key")

    return check


def create_app(settings: ServeSettings | None = None, intent_predictor=None,
               chat_predictor=None, reloader=None) -> FastAPI:
    """The ASGI app for the given models; either may be None (its routes then answer 404).

    ``chat_predictor`` may be a list (a request's ``model`` picks one; the first is the
    default); ``reloader(name)`` loads a chat model anew for ``/v1/admin/reload`` and SIGHUP.
    """
    settings = settings or ServeSettings()
    service = DialogueService(settings, intent_predictor, chat_predictor, reloader)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        service.start()
        hangup = reload_on_hangup(service.reload) if reloader is not None else None
        try:
            yield
        finally:
            if hangup:
                asyncio.get_running_loop().remove_signal_handler(signal.SIGHUP)
            service.stop()

    # FastAPIOffline: /docs and /redoc from packaged assets, not a CDN (servers are often
    # offline, and a CDN script is a supply-chain risk on an API-key-holding page)
    app = FastAPIOffline(title="dialogtune", version="0.1.0", lifespan=lifespan,
                         static_url="/static-docs")
    app.state.service = service
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_body_bytes)
    # added last, so outermost: a rebinding page's request is refused before anything runs
    app.add_middleware(HostCheckMiddleware, allowed=settings.allowed_hosts
                       or default_allowed_hosts(settings.host))
    install_error_handlers(app)
    app.include_router(_v1_routes(service, settings))
    _page_routes(app, service)
    return app


def _v1_routes(service: DialogueService, settings: ServeSettings) -> APIRouter:
    router = APIRouter(prefix="/v1", dependencies=[Depends(bearer_check(settings.api_key))])

    @router.get("/models", response_model=ModelList)
    async def models():
        return service.models()

    @router.post("/chat/completions", response_model=ChatCompletion,
                 responses={200: {"content": {"text/event-stream": {}}}})
    async def chat_completions(request: ChatCompletionRequest, http: Request):
        if not request.stream:  # a disconnect cancels the generation (StreamingResponse's
            return await service.complete(request, http.receive)  # own watch does it there)
        pending = await service.prepare(request)
        usage = bool(request.stream_options and request.stream_options.include_usage)
        return StreamingResponse(service.stream(pending, usage), headers=SSE_HEADERS,
                                 media_type="text/event-stream")

    @router.post("/intents", response_model=IntentResponse)
    async def intents(request: IntentRequest):
        return await service.classify(request)

    @router.post("/admin/reload", response_model=ReloadResponse)
    async def reload(request: ReloadRequest | None = None):
        if not settings.api_key:  # an admin action: never open to whoever can connect
            raise APIError(403, "reloading over HTTP needs the server's API key (--api-key); "
                           "without one, send the server SIGHUP", "api_key_required")
        return await service.reload(request.model if request else None)

    @router.post("/feedback", response_model=FeedbackResponse)
    async def feedback(request: FeedbackRequest, http: Request):
        client = http.client.host if http.client else None
        origin = Provenance.of_request(http.headers, client, settings.api_key)
        return await service.feedback(request, origin)

    return router


def _page_routes(app: FastAPI, service: DialogueService) -> None:
    @app.get("/health")
    async def health():
        state = service.health()  # 503 when a generation is stuck or its worker died
        return JSONResponse(state, status_code=200 if state["status"] == "ok" else 503)

    @app.get("/", include_in_schema=False)
    async def index():
        return FileResponse(STATIC / "index.html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")
