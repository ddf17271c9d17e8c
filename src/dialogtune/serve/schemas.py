"""Request and response models on the wire: the OpenAI chat format plus dialogtune's own.

Requests ignore unknown fields (OpenAI clients send many optional ones) but validate the
ones the server acts on, so a bad value is a 400 with the field named, never a 500.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import (BaseModel, ConfigDict, Field, ValidationInfo, field_validator,
                      model_validator)

from .tool_schemas import (ID_PATTERN, DeltaToolCall, RequestToolCall, ToolCallOut, ToolDef,
                           check_tool_choice, check_tools)


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class ChatMessage(_Request):
    """One chat turn; list-of-parts content (``[{"type": "text", ...}]``) is joined to text.

    An assistant turn may carry the ``tool_calls`` it made (its content then may be null);
    a ``tool`` turn is the result of one call, named by ``tool_call_id``."""

    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[dict[str, Any]] | None = ""
    tool_calls: list[RequestToolCall] | None = Field(None, min_length=1, max_length=64)
    tool_call_id: str | None = Field(None, pattern=ID_PATTERN)

    @field_validator("content")
    @classmethod
    def _flatten(cls, value):
        if value is None:
            return ""
        if isinstance(value, list):
            if any(part.get("type") != "text" for part in value):
                raise ValueError("only text content parts are supported")
            return "".join(str(part.get("text", "")) for part in value)
        return value

    @model_validator(mode="after")
    def _tool_fields(self):
        if self.tool_calls and self.role != "assistant":
            raise ValueError("only assistant messages carry tool_calls")
        if self.role == "tool" and not self.tool_call_id:
            raise ValueError("a tool message needs the tool_call_id of the call it answers")
        return self

    def as_dict(self) -> dict:
        role = "system" if self.role == "developer" else self.role
        message: dict[str, Any] = {"role": role, "content": self.content}
        if self.tool_calls:
            message["tool_calls"] = [call.as_dict() for call in self.tool_calls]
        if role == "tool":
            message["tool_call_id"] = self.tool_call_id
        return message


class StreamOptions(_Request):
    include_usage: bool = False


class ChatCompletionRequest(_Request):
    """``POST /v1/chat/completions``; ``model`` names one of the served chat models
    (absent: the first)."""

    model: str | None = None
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(None, ge=1)
    max_completion_tokens: int | None = Field(None, ge=1)
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: str | list[str] | None = None
    # torch.manual_seed's own range: outside it, seeding raises inside the generation
    seed: int | None = Field(None, ge=-(2**63), le=2**64 - 1)
    stream: bool = False
    stream_options: StreamOptions | None = None
    n: int = Field(1, ge=1, le=1)
    tools: list[ToolDef] | None = None
    tool_choice: Any = None  # checked below, after tools (see tool_schemas)

    @field_validator("tools")
    @classmethod
    def _tools(cls, value):
        return check_tools(value)

    @field_validator("tool_choice")
    @classmethod
    def _tool_choice(cls, value, info: ValidationInfo):
        return check_tool_choice(value, info.data.get("tools"))

    @field_validator("stop")
    @classmethod
    def _stops(cls, value):
        stops = [value] if isinstance(value, str) else list(value or [])
        if len(stops) > 4 or any(not s for s in stops):
            raise ValueError("stop takes up to 4 non-empty strings")
        return stops

    def token_budget(self, default: int) -> int:
        return self.max_completion_tokens or self.max_tokens or default


class IntentRequest(_Request):
    """``POST /v1/intents`` with exactly one of ``text`` or ``texts``."""

    text: str | None = None
    texts: list[str] | None = None
    top_k: int | None = Field(None, ge=1, le=50)

    @model_validator(mode="after")
    def _one_of(self):
        if (self.text is None) == (self.texts is None):
            raise ValueError("give exactly one of 'text' or 'texts'")
        if self.texts is not None and not self.texts:
            raise ValueError("'texts' is empty")
        return self

    def items(self) -> list[str]:
        return [self.text] if self.text is not None else list(self.texts or [])


class CorrectedSlot(_Request):
    """One slot of a corrected NLU reading: character offsets into the user's text (end
    exclusive), checked against the logged text when the feedback arrives."""

    slot: str = Field(min_length=1, max_length=200)
    start: int = Field(ge=0)
    end: int = Field(ge=1)


class FeedbackRequest(_Request):
    """``POST /v1/feedback``: a thumbs up/down and/or a correction for one logged exchange."""

    completion_id: str = Field(min_length=1, max_length=200)
    rating: Literal["up", "down"] | None = None
    corrected_reply: str | None = Field(
        None, description="The reply the assistant should have given (training data; at "
                          "most ServeSettings.max_correction_chars characters, 4000 by default)")
    corrected_intent: str | None = Field(None, max_length=200)
    # NLU runs: every slot of the last user turn ([] = it has none)
    corrected_slots: list[CorrectedSlot] | None = Field(None, max_length=100)
    comment: str | None = Field(None, max_length=2000)

    @model_validator(mode="after")
    def _something(self):
        if not (self.rating or self.corrected_reply or self.corrected_intent
                or self.corrected_slots is not None):
            raise ValueError("give a rating, a corrected_reply, a corrected_intent or "
                             "corrected_slots")
        return self


class RankedIntent(BaseModel):
    intent: str
    probability: float


# NLU runs only: absent (not null) in the answers of an intent run, which stay as they were
def _absent_if_none():
    return Field(None, exclude_if=lambda value: value is None)


_nlu_only = _absent_if_none


class SlotValue(BaseModel):
    """A predicted slot (NLU runs): offsets into the text, end exclusive."""

    slot: str
    value: str
    start: int
    end: int
    confidence: float


class IntentResult(BaseModel):
    id: str
    text: str
    intent: str
    confidence: float
    out_of_scope: bool
    intents: list[RankedIntent]
    latency_ms: float
    slots: list[SlotValue] | None = _nlu_only()


class IntentResponse(BaseModel):
    object: Literal["list"] = "list"
    model: str
    threshold: float | None
    data: list[IntentResult]


class TurnIntent(BaseModel):
    """The NLU reading of a chat request's last user turn, sent beside the reply."""

    intent: str | None = None
    confidence: float | None = None
    out_of_scope: bool = False
    fallback: bool = False
    slots: list[SlotValue] | None = _nlu_only()


class Usage(BaseModel):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class ReplyMessage(BaseModel):
    """The reply: its words (null when it only calls tools) and the calls it makes."""

    role: Literal["assistant"] = "assistant"
    content: str | None
    tool_calls: list[ToolCallOut] | None = _absent_if_none()


FinishReason = Literal["stop", "length", "tool_calls"]


class Choice(BaseModel):
    index: int = 0
    message: ReplyMessage
    finish_reason: FinishReason
    logprobs: None = None


class ChatCompletion(BaseModel):
    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: Usage
    dialogtune: TurnIntent


class Delta(BaseModel):
    role: Literal["assistant"] | None = None
    content: str | None = None
    tool_calls: list[DeltaToolCall] | None = None


class ChunkChoice(BaseModel):
    index: int = 0
    delta: Delta
    finish_reason: FinishReason | None = None
    logprobs: None = None


class ChatCompletionChunk(BaseModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    dialogtune: TurnIntent | None = None


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str = "dialogtune"
    task: Literal["chat", "intent"]
    precision: Literal["fp32", "bf16"] | None = None  # chat models: the weights' format


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class ReloadRequest(_Request):
    """``POST /v1/admin/reload``: the chat model to load anew (absent: every one)."""

    model: str | None = None


class Reloaded(BaseModel):
    id: str
    seconds: float


class ReloadResponse(BaseModel):
    object: Literal["list"] = "list"
    data: list[Reloaded]


class FeedbackResponse(BaseModel):
    object: Literal["feedback"] = "feedback"
    id: int
    completion_id: str


class ErrorBody(BaseModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(BaseModel):
    error: ErrorBody
