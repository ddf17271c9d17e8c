"""Errors in the OpenAI shape (``{"error": {"message", "type", "param", "code"}}``).

Every failure a client can cause maps to a 4xx here; only a server bug is a 500, and even
that answers JSON in the same shape so OpenAI clients can read it. A 500 says only
"internal server error" and a code: exception text can hold paths, model internals or
other clients' data, so it goes to the server log (with the traceback), never to a client.
"""

from __future__ import annotations

import json
import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from ..errors import PromptError

log = logging.getLogger("dialogtune.serve")

ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error",
               404: "not_found_error", 405: "invalid_request_error",
               413: "invalid_request_error", 429: "rate_limit_error"}


class APIError(Exception):
    """A client-facing error: HTTP status, message, and the OpenAI ``code``/``param``."""

    def __init__(self, status: int, message: str, code: str | None = None,
                 param: str | None = None):
        super().__init__(message)
        self.status, self.message, self.code, self.param = status, message, code, param


def error_body(status: int, message: str, code: str | None = None,
               param: str | None = None) -> dict:
    kind = ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def public_error(exc: BaseException, context: str = "request") -> APIError:
    """What a client may see of ``exc``: its own message for client errors (``APIError``,
    a prompt the template refused), a generic 500 for anything else, which is logged."""
    if isinstance(exc, APIError):
        return exc
    if isinstance(exc, PromptError):
        return APIError(400, str(exc), "invalid_prompt", "messages")
    log.error("%s failed", context, exc_info=exc)
    return APIError(500, "internal server error", "internal_error")


def error_response(status: int, message: str, code: str | None = None,
                   param: str | None = None) -> JSONResponse:
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(error_body(status, message, code, param), status_code=status,
                        headers=headers)


def _validation_message(exc: RequestValidationError) -> tuple[str, str | None]:
    """The first validation problem as one line, naming the field (``messages.0.role``)."""
    first = exc.errors()[0] if exc.errors() else {"msg": "invalid request", "loc": ()}
    loc = [str(p) for p in first.get("loc", ()) if p != "body"]
    param = ".".join(loc) or None
    if first.get("type") == "json_invalid":
        return "request body is not valid JSON", None
    message = str(first.get("msg", "invalid request")).removeprefix("Value error, ")
    return (f"{param}: {message}" if param else message), param


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception type to an OpenAI-shaped JSON error."""

    @app.exception_handler(APIError)
    async def _api_error(_: Request, exc: APIError):
        return error_response(exc.status, exc.message, exc.code, exc.param)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, exc: RequestValidationError):
        message, param = _validation_message(exc)
        return error_response(400, message, "invalid_request", param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, exc: StarletteHTTPException):
        return error_response(exc.status_code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _bug(_: Request, exc: Exception):
        error = public_error(exc)
        return error_response(error.status, error.message, error.code, error.param)


class BodyLimitMiddleware:
    """Refuse request bodies over ``max_bytes`` with a 413 before any route parses them.

    Checks Content-Length up front and counts streamed bytes too (chunked uploads), by
    buffering at most ``max_bytes`` and replaying the body to the app.
    """

    def __init__(self, app, max_bytes: int):
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] not in ("POST", "PUT", "PATCH"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._too_large(send)
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > self.max_bytes:
                return await self._too_large(send)
        return await self.app(scope, _replay(body, receive), send)

    async def _too_large(self, send) -> None:
        payload = json.dumps(error_body(413, f"request body over {self.max_bytes} bytes",
                                        "body_too_large")).encode()
        await send({"type": "http.response.start", "status": 413,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(payload)).encode())]})
        await send({"type": "http.response.body", "body": payload})


def _replay(body: bytes, receive):
    """A ``receive`` that yields the buffered body once, then defers to the real one."""
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
