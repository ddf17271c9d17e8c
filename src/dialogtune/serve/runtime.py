"""Starting the server: load the models, build the app, run uvicorn (foreground or thread).

uvicorn handles SIGTERM/SIGINT itself: it stops accepting connections, lets in-flight
requests finish (their exchanges are committed to the log as they complete), then runs the
app's shutdown, which drains the workers and checkpoints the SQLite WAL. Both waits are
bounded by ``drain_seconds``: a stuck generation is cancelled, then abandoned.
"""

from __future__ import annotations

import ipaddress
import logging
import threading
import time
from pathlib import Path

log = logging.getLogger("dialogtune.serve")


def check_safe_source(source: str | Path, allow_pickle: bool = False) -> None:
    """Refuse what could run code on load, before loading anything: remote code (never
    served), or pickle-only weight folders (unless ``allow_pickle``).

    A run's own weights are always safetensors; its base model (or a plain model folder
    given as ``--chat``) must have safetensors weights too. Aliases and hub ids pass here
    (the loaders ask transformers for safetensors only).
    """
    from ..config import read_run_config
    from ..errors import DialogtuneError
    from ..models.loading import check_safe_weights
    from ..runs.layout import RunDir

    path = Path(source)
    if RunDir(path).is_run():
        cfg = read_run_config(path)
        if cfg.model.trust_remote_code:
            raise DialogtuneError(f"{path}: the run needs trust_remote_code, which the server "
                                  "refuses (it would execute code from the model folder)")
        return check_safe_source(cfg.model.name, allow_pickle) if cfg.model.name else None
    check_safe_weights(path, allow_pickle)


def load_models(intent_run: str | Path | None, chat: str | Path | None,
                allow_pickle: bool = False, backend: str = "torch"):
    """(intent or NLU predictor | None, ChatPredictor | None), each loaded once, safe
    sources only. ``backend="onnx"`` serves the intent run's ONNX export, which loads no
    Python code or pickle (a graph, JSON and tokenizer files)."""
    from ..inference.chat import ChatPredictor
    from ..inference.intent import load_classifier
    from ..inference.onnx import check_backend
    from ..models.loading import LoadPolicy

    torch_intent = intent_run if check_backend(backend) == "torch" else None
    for source in (torch_intent, chat):
        if source:
            check_safe_source(source, allow_pickle)
    policy = LoadPolicy(trust_remote_code=False, allow_pickle=allow_pickle)
    intent = load_classifier(intent_run, policy, backend) if intent_run else None
    chat_model = ChatPredictor.load(chat, policy) if chat else None
    return intent, chat_model


def load_chats(sources: list[str | Path], allow_pickle: bool = False, precision: str = "auto"):
    """(the chat predictors of ``sources``, in order; ``reloader(name)``, which loads the
    one named ``name`` anew from its source). Two sources of the same name (folder name)
    are refused: a request's ``model`` could not tell them apart. ``precision``: the
    weights' format (``auto``: bf16 where it is measurably faster, see ``ChatPredictor``)."""
    from ..errors import DialogtuneError
    from ..inference.chat import ChatPredictor
    from ..models.loading import LoadPolicy

    for source in sources:
        check_safe_source(source, allow_pickle)
    policy = LoadPolicy(trust_remote_code=False, allow_pickle=allow_pickle)
    chats = [ChatPredictor.load(source, policy, precision) for source in sources]
    origin = dict(zip((str(chat.name) for chat in chats), sources))
    if len(origin) < len(chats):
        raise DialogtuneError("two --chat models have the same name (their folder names): "
                              f"{', '.join(str(chat.name) for chat in chats)}")

    def reloader(name: str):
        check_safe_source(origin[name], allow_pickle)  # the folder may have changed since
        return ChatPredictor.load(origin[name], policy, precision)

    return chats, reloader


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def run_server(settings, intent_predictor=None, chat_predictor=None, reloader=None) -> None:
    """Serve in the foreground until SIGTERM/SIGINT (SIGHUP: reload, see ``create_app``)."""
    import uvicorn

    from .app import create_app

    if not is_loopback(settings.host) and not settings.api_key:
        log.warning("listening on %s without --api-key: anyone who can reach this machine "
                    "can use the models", settings.host)
    app = create_app(settings, intent_predictor, chat_predictor, reloader)
    # in-flight requests get drain_seconds; then uvicorn cancels them, which cancels their
    # generations, and the app's shutdown gives the workers drain_seconds more at most
    config = uvicorn.Config(app, host=settings.host, port=settings.port, log_level="info",
                            timeout_graceful_shutdown=settings.drain_seconds,
                            server_header=False)
    uvicorn.Server(config).run()


class BackgroundServer:
    """Run an app with uvicorn on a free loopback port in a thread (tests, embedding).

    ``with BackgroundServer(app) as server: httpx.get(server.url + "/health")``
    """

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0):
        import uvicorn

        service = getattr(app.state, "service", None)  # shut down as run_server does
        drain = service.settings.drain_seconds if service is not None else None
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                timeout_graceful_shutdown=drain)
        self.server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self.server.run, daemon=True,
                                        name="dialogtune-uvicorn")
        self.url = ""

    def __enter__(self) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + 60
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the server did not start")
            time.sleep(0.02)
        host, port = self.server.servers[0].sockets[0].getsockname()[:2]
        self.url = f"http://{host}:{port}"
        return self

    def __exit__(self, *_exc) -> None:
        self.server.should_exit = True
        self._thread.join(30)
