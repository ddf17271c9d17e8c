"""Tool calling for the serving tests: a function schema, the Python function behind it,
and a chat model that calls it when told to.

``ToolChat`` wraps a real (tiny, random) ``ChatPredictor``: asked with a named or
``required`` ``tool_choice`` it makes that call, as a constrained decoder would; otherwise
the real model writes the words (with the tools in its prompt). The server code under test
is the real one either way; only the model's choice to call is scripted.
"""

from __future__ import annotations

import json

from dialogtune.data.tool_calls import ToolCall

BALANCE_TOOL = {"type": "function", "function": {
    "name": "get_balance", "description": "The balance of one of the user's accounts.",
    "parameters": {"type": "object", "properties": {
        "account": {"type": "string", "enum": ["checking", "savings"]}},
        "required": ["account"]}}}
TRANSFER_TOOL = {"type": "function", "function": {
    "name": "transfer", "description": "Send money to someone.",
    "parameters": {"type": "object", "properties": {
        "amount": {"type": "number"}, "recipient": {"type": "string"}},
        "required": ["amount", "recipient"]}}}
TOOLS = [BALANCE_TOOL, TRANSFER_TOOL]
BALANCES = {"checking": 125.0, "savings": 2300.5}


def get_balance(account: str) -> dict:
    """The backend function the client runs for a ``get_balance`` call."""
    return {"account": account, "balance": BALANCES[account], "currency": "USD"}


def run_tool(name: str, arguments: str) -> str:
    """A client's tool runner: the result of a call as the JSON text of a tool message."""
    functions = {"get_balance": get_balance}
    return json.dumps(functions[name](**json.loads(arguments)))


def schema_arguments(function: dict) -> dict:
    """Arguments that satisfy ``function``'s schema: each required key's first enum value,
    else a value of its type."""
    samples = {"string": "Maria", "number": 20, "integer": 2, "boolean": True}
    properties = function.get("parameters", {}).get("properties", {})
    return {key: properties[key].get("enum", [samples.get(properties[key].get("type"), "x")])[0]
            for key in function.get("parameters", {}).get("required", [])}


class ToolChat:
    """A ``ChatPredictor`` that calls the function ``tool_choice`` names (the first one for
    ``required``, and for ``auto`` when ``eager`` and the last turn is the user's) after
    ``words`` of the real model's text; anything else: the real model's words."""

    def __init__(self, chat, words: int = 0, eager: bool = False):
        self.chat, self.words, self.eager = chat, words, eager
        self.name, self.tokenizer = chat.name, chat.tokenizer
        self.check_prompt, self.stream = chat.check_prompt, chat.stream
        self.asked: list[dict] = []  # the keywords of each stream_respond call

    def stream_respond(self, messages, tools=None, tool_choice="auto", **options):
        self.asked.append({"tools": tools, "tool_choice": tool_choice, **options})
        eager = self.eager and tool_choice in (None, "auto") and messages[-1]["role"] == "user"
        function = _chosen(tools, "required" if eager else tool_choice)
        if function is None:
            yield from self.chat.stream_respond(messages, tools=tools, tool_choice=tool_choice,
                                                **options)
            return
        if self.words:
            yield from self.chat.stream(messages, **{**_text_options(options),
                                                     "max_new_tokens": self.words})
        yield ToolCall(function["name"], schema_arguments(function), "call_1")


def _chosen(tools, tool_choice) -> dict | None:
    functions = [tool["function"] for tool in tools or []]
    if not functions or tool_choice in (None, "auto", "none"):
        return None
    if tool_choice == "required":
        return functions[0]
    return next(f for f in functions if f["name"] == tool_choice["function"]["name"])


def _text_options(options: dict) -> dict:
    return {k: v for k, v in options.items() if k in ("temperature", "top_p", "seed", "cancel",
                                                      "deadline")}
