"""Server settings: what the ``serve`` command configures, with safe limits by default.

Limits exist so a single client cannot exhaust memory or the generation worker; every
limit violation becomes a 4xx JSON error in the OpenAI error shape.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ServeSettings:
    """Everything ``create_app`` needs besides the models themselves."""

    host: str = "127.0.0.1"          # localhost only unless asked otherwise
    port: int = 8000
    # Host header names accepted (DNS rebinding guard); None: loopback names plus the bound
    # host (see hosts.default_allowed_hosts); ("*",): any
    allowed_hosts: tuple[str, ...] | None = None
    api_key: str | None = None       # Bearer key checked on every /v1 route when set
    log_db: str | None = None        # SQLite conversation log; None disables logging/feedback
    oos_threshold: float | None = None  # overrides the run's calibrated threshold when set
    fallback_intent: str = "out_of_scope"
    fallback_reply: str | None = None   # answer out-of-scope turns with this, not generation
    top_k: int = 3
    max_body_bytes: int = 1_000_000
    max_messages: int = 64
    max_chars: int = 32_000          # total characters of all messages / texts in a request
    max_tokens_limit: int = 1024     # the largest max_tokens a request may ask for
    default_max_tokens: int = 256
    max_texts: int = 256             # texts per /v1/intents request
    max_correction_chars: int = 4000  # longest corrected_reply a feedback may carry
    max_queue: int = 256             # waiting generation requests before 429
    max_intent_queue: int = 256      # waiting /v1/intents (and chat NLU) requests before 429
    intent_batch_size: int = 64      # largest micro-batch of utterances per forward pass
    intent_threads: int | None = 1   # torch threads classifying (1: best on shared cores)
    generation_threads: int | None = None  # torch threads generating (None: the idle cores)
    # replies decoded together, one forward pass a step (inference/batching.py); 1: the
    # one-at-a-time worker. 8: benchmarks/serve_load.py's concurrent clients (RESULTS.md)
    generation_batch: int = 8
    generation_timeout: float | None = 300.0  # seconds one generation may run; then cut short
    drain_seconds: float = 30.0      # on shutdown: wait this long for queued work, then cancel
