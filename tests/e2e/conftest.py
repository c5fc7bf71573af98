"""One person talking to the real assistant (the session's `stack`, tests/conftest.py) over Rasa's REST webhook."""
from __future__ import annotations

import json
import urllib.request
import uuid
from dataclasses import dataclass, field

import pytest


@dataclass
class Conversation:
    """One person talking to the assistant over Rasa's REST webhook."""

    url: str
    sender: str = field(default_factory=lambda: f"test-{uuid.uuid4().hex}")
    log: list[tuple[str, list[dict]]] = field(default_factory=list)

    def say(self, message: str, metadata: dict | None = None) -> list[dict]:
        body = {"sender": self.sender, "message": message}
        if metadata:
            body["metadata"] = metadata
        request = urllib.request.Request(
            f"{self.url}/webhooks/rest/webhook", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            replies = json.loads(response.read())
        self.log.append((message, replies))
        return replies

    @staticmethod
    def text(replies: list[dict]) -> str:
        return "\n".join(r.get("text") or "" for r in replies)

    @staticmethod
    def buttons(replies: list[dict]) -> list[str]:
        return [b["title"] for r in replies for b in r.get("buttons", [])]

    @staticmethod
    def questions(replies: list[dict]) -> list[dict]:
        """The guided follow-up questions in these replies (buttons whose payload is /answer_question)."""
        return [r for r in replies if any(b["payload"].startswith("/answer_question") for b in r.get("buttons", []))]

    def answer_questions(self, replies: list[dict], pick: dict[str, str] | None = None) -> list[dict]:
        """Click through guided questions (the first button, or the title ``pick`` gives for a question id)
        until the answer comes; returns the replies that hold it."""
        for _ in range(4):
            asked = self.questions(replies)
            if not asked:
                return replies
            buttons = asked[-1]["buttons"]
            chosen = buttons[0]
            for button in buttons:
                payload = json.loads(button["payload"].removeprefix("/answer_question"))
                if (pick or {}).get(payload["question"]) == button["title"]:
                    chosen = button
            replies = self.say(chosen["payload"])
        raise AssertionError("more than three guided questions were asked")

    def transcript(self) -> str:
        return "\n".join(f"> {m}\n{self.text(r)}" for m, r in self.log)


@pytest.fixture
def conversation(stack) -> Conversation:
    return Conversation(stack.rasa_url)
