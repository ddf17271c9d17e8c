"""The conversation logic behind ``dialogtune chat`` / ``generate``, with a fake model."""

from __future__ import annotations

from dialogtune.data.records import Dialogue, Message
from dialogtune.inference.dialogue import ChatSession, reply_to_dialogues


class Echo:
    """Replies with the count of messages it was shown, streamed in two pieces."""

    name = "echo"

    def __init__(self):
        self.seen = []

    def stream(self, messages, max_new_tokens, temperature, top_p):
        self.seen.append([m["role"] for m in messages])
        yield "saw "
        yield f"{len(messages)} "

    def chat(self, messages, max_new_tokens, temperature, seed=None):
        self.seen.append([m["role"] for m in messages])
        return f"reply to {messages[-1]['content']}"


def test_session_remembers_streams_and_resets_to_the_system_message():
    model = Echo()
    session = ChatSession(model, system="be brief")
    assert "".join(session.send("hi")) == "saw 2 "
    assert list(session.send("again")) == ["saw ", "4 "]
    assert session.history[-1] == {"role": "assistant", "content": "saw 4"}
    session.reset()
    assert session.history == [{"role": "system", "content": "be brief"}]
    "".join(session.send("new"))
    assert model.seen == [["system", "user"], ["system", "user", "assistant", "user"],
                          ["system", "user"]]


def test_replies_answer_what_precedes_a_final_assistant_turn():
    dialogues = [Dialogue([Message("user", "a"), Message("assistant", "old")], extra={"id": "d1"}),
                 Dialogue([Message("user", "b")], extra={"id": "d2"})]
    records = reply_to_dialogues(Echo(), dialogues)
    assert [r["reply"] for r in records] == ["reply to a", "reply to b"]
    assert records[0]["messages"][-1] == {"role": "assistant", "content": "reply to a"}
    assert records[0]["id"] == "d1" and len(records[0]["messages"]) == 2
