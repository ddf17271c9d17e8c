"""Tool calling on the wire: OpenAI's ``tools``, ``tool_choice`` and ``tool_calls`` shapes.

Requests are checked here, so a bad tool definition, a call whose arguments are not a JSON
object or a ``tool_choice`` naming no offered function is a 400 naming the field (see
``errors``), before anything is rendered or queued.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

NAME_PATTERN = r"^[a-zA-Z0-9_-]{1,64}$"  # OpenAI's rule for function names
# call ids reach some chat templates: letters, digits and _.:- only, so never a special token
ID_PATTERN = r"^[a-zA-Z0-9_.:-]{1,200}$"
CHOICES = ("auto", "none", "required")
MAX_TOOLS = 128


class _Request(BaseModel):
    model_config = ConfigDict(extra="ignore")


class FunctionDef(_Request):
    """One offered function; ``parameters`` must be a JSON schema of an object."""

    name: str = Field(pattern=NAME_PATTERN)
    description: str | None = Field(None, max_length=4000)
    parameters: dict[str, Any] | None = None
    strict: bool | None = None

    @field_validator("parameters")
    @classmethod
    def _schema(cls, value):
        if value is None:
            return value
        from jsonschema import Draft202012Validator
        from jsonschema.exceptions import SchemaError

        if value.get("type", "object") != "object":
            raise ValueError("must be a JSON schema with \"type\": \"object\"")
        try:
            Draft202012Validator.check_schema(value)
        except SchemaError as exc:
            raise ValueError(f"not a valid JSON schema: {exc.message}") from None
        return value


class ToolDef(_Request):
    """``{"type": "function", "function": {...}}``."""

    type: Literal["function"]
    function: FunctionDef

    def as_dict(self) -> dict:
        return {"type": "function", "function": self.function.model_dump(exclude_none=True)}


class CallFunction(_Request):
    name: str = Field(pattern=NAME_PATTERN)
    arguments: str | dict[str, Any] = "{}"

    @field_validator("arguments")
    @classmethod
    def _json_object(cls, value):
        """Arguments as OpenAI sends them: a string holding a JSON object."""
        if isinstance(value, dict):
            return json.dumps(value, ensure_ascii=False)
        try:
            parsed = json.loads(value) if value.strip() else {}
        except json.JSONDecodeError as exc:
            raise ValueError(f"not valid JSON ({exc.msg})") from None
        if not isinstance(parsed, dict):
            raise ValueError("must be a JSON object")
        return value if value.strip() else "{}"


class RequestToolCall(_Request):
    """A call an earlier assistant turn made (in the request's history)."""

    id: str = Field(pattern=ID_PATTERN)
    type: Literal["function"] = "function"
    function: CallFunction

    def as_dict(self) -> dict:
        return {"id": self.id, "type": "function",
                "function": {"name": self.function.name,
                             "arguments": self.function.arguments}}


def check_tools(value):
    """``tools``: at most ``MAX_TOOLS`` functions, each name once."""
    if value is None:
        return value
    if len(value) > MAX_TOOLS:
        raise ValueError(f"at most {MAX_TOOLS} tools")
    names = [tool.function.name for tool in value]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValueError(f"function names must be unique; repeated: {', '.join(repeated)}")
    return value


def check_tool_choice(value, tools: list[ToolDef] | None):
    """``auto``, ``none``, ``required`` or ``{"type": "function", "function": {"name"}}``
    naming an offered function; ``required`` and a named function need ``tools``."""
    if value is None or value in ("auto", "none"):
        return value
    if isinstance(value, str) and value not in CHOICES:
        raise ValueError(f"must be one of {', '.join(CHOICES)} or "
                         '{"type": "function", "function": {"name": ...}}')
    name = _named(value)
    if not tools:
        raise ValueError("needs 'tools': no function is offered")
    offered = [tool.function.name for tool in tools]
    if name is not None and name not in offered:
        raise ValueError(f"names function '{name}', which is not in tools "
                         f"(offered: {', '.join(offered)})")
    return value


def _named(value) -> str | None:
    """The function a ``tool_choice`` object names (None for ``required``)."""
    if value == "required":
        return None
    function = value.get("function") if isinstance(value, dict) else None
    name = function.get("name") if isinstance(function, dict) else None
    if not isinstance(value, dict) or value.get("type") != "function" \
            or not isinstance(name, str) or not name:
        raise ValueError('a named choice is {"type": "function", "function": {"name": ...}}')
    return name


# --- responses ------------------------------------------------------------------------

class CallFunctionOut(BaseModel):
    name: str
    arguments: str  # a JSON object, as a string (OpenAI's form)


class ToolCallOut(BaseModel):
    id: str
    type: Literal["function"] = "function"
    function: CallFunctionOut


class DeltaFunction(BaseModel):
    name: str | None = None
    arguments: str | None = None


class DeltaToolCall(BaseModel):
    """A streamed call: ``index`` says which call; here each call comes whole in one."""

    index: int
    id: str | None = None
    type: Literal["function"] | None = None
    function: DeltaFunction
