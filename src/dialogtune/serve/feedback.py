"""Feedback on logged exchanges: checked, then recorded with where it came from.

Feedback becomes training data (``data export-logs``), so a correction is bounded in size,
corrected slots must fit the logged user turn by the NLU readers' own rules, and each row
keeps its provenance.
"""

from __future__ import annotations

import asyncio

from ..data.conversation_log import ConversationStore, Provenance
from .errors import APIError
from .schemas import FeedbackRequest
from .settings import ServeSettings


async def record_feedback(store: ConversationStore | None, settings: ServeSettings,
                          request: FeedbackRequest, provenance: Provenance | None) -> dict:
    """Record a rating or correction (404 for an unknown id, 400 without a log)."""
    if store is None:
        raise APIError(400, "feedback needs the conversation log: start the server with "
                       "--log-db FILE", "logging_disabled")
    limit = settings.max_correction_chars
    if request.corrected_reply and len(request.corrected_reply) > limit:
        raise APIError(400, f"corrected_reply exceeds {limit} characters",
                       "correction_too_long", "corrected_reply")
    try:
        slots = await asyncio.to_thread(checked_slots, store, request)
        row_id = await asyncio.to_thread(
            store.add_feedback, request.completion_id, request.rating,
            request.corrected_reply, request.corrected_intent, request.comment, provenance,
            slots)
    except KeyError:
        raise APIError(404, f"no logged exchange with id '{request.completion_id}'",
                       "unknown_completion_id", "completion_id") from None
    return {"object": "feedback", "id": row_id, "completion_id": request.completion_id}


def checked_slots(store: ConversationStore, request: FeedbackRequest) -> list[dict] | None:
    """``corrected_slots`` as stored, once checked against the logged user turn: in
    bounds, not overlapping, not cutting a word; a 400 naming the slot otherwise.
    KeyError for an unknown exchange."""
    if request.corrected_slots is None:
        return None
    from ..data.formats.nlu_spans import check_spans
    from ..data.records import Span

    text = store.user_text(request.completion_id)
    spans = [Span(s.slot, s.start, s.end) for s in request.corrected_slots]
    if spans and text is None:
        raise APIError(400, "the exchange has no user turn to put slots on",
                       "invalid_slots", "corrected_slots")
    problem = check_spans(text or "", spans) if spans else None
    if problem is not None:
        raise APIError(400, f"corrected_slots[{problem[0]}]: {problem[1]}",
                       "invalid_slots", f"corrected_slots[{problem[0]}]")
    return [{"slot": s.slot, "start": s.start, "end": s.end} for s in spans]
