"""Helpers for the scale tests: a person in the chat widget over plain HTTP, and nginx's pool logs."""
from __future__ import annotations

import json
import time
import re
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field

from bot.scaled import ScaledStack


@dataclass
class WebChat:
    """One person in the chat widget, over HTTP through nginx: opens the page (cookie and CSRF token),
    then posts each message to /api/chat like the widget does."""

    base: str
    cookie: str = ""
    csrf: str = ""
    log: list[tuple[str, list[dict]]] = field(default_factory=list)

    def open(self) -> "WebChat":
        with urllib.request.urlopen(f"{self.base}/", timeout=30) as response:
            page = response.read().decode()
            self.cookie = "; ".join(c.split(";", 1)[0] for c in response.headers.get_all("Set-Cookie") or [])
        found = re.search(r'<meta name="csrf-token" content="([^"]+)"', page)
        assert found and self.cookie, "the chat page gives a session cookie and a CSRF token"
        self.csrf = found.group(1)
        return self

    def say(self, message: str) -> list[dict]:
        request = urllib.request.Request(
            f"{self.base}/api/chat", data=json.dumps({"message": message}).encode(), method="POST",
            headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf, "Cookie": self.cookie})
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                replies = json.loads(response.read())["messages"]
        except urllib.error.HTTPError as err:
            raise AssertionError(f"HTTP {err.code} for {message!r}: {err.read()[:300]!r}\n{self.transcript()}") from None
        self.log.append((message, replies))
        return replies

    @staticmethod
    def text(replies: list[dict]) -> str:
        return "\n".join(r.get("text") or "" for r in replies)

    @staticmethod
    def customs(replies: list[dict], kind: str) -> list[dict]:
        return [r["custom"] for r in replies if (r.get("custom") or {}).get("type") == kind]

    def transcript(self) -> str:
        return "\n".join(f"> {m}\n{self.text(r)}" for m, r in self.log)


def pool_log(stack: ScaledStack, pool: str) -> list[dict]:
    """nginx's access log for one pool ("public", "rasa" or "actions"): when, status, which instance(s)."""
    path = stack.state / f"nginx-{pool}-access.log"
    rows = []
    for line in path.read_text().splitlines() if path.exists() else []:
        found = re.match(r'(\S+) (\d+) (\S+) (\S+) (\d+) (\S+) "([^"]*)" "([^"]*)"', line)
        if found:
            rows.append({"at": float(found.group(1)), "uri": found.group(4), "status": int(found.group(5)),
                         "upstreams": [a.strip() for a in found.group(7).split(",")]})
    return rows


def instance_of(stack: ScaledStack, address: str) -> str:
    port = int(address.rsplit(":", 1)[1])
    return next(name for name, p in stack.instance_ports.items() if p == port)


def rasa_say(url: str, sender: str, message: str) -> list[dict]:
    request = urllib.request.Request(f"{url}/webhooks/rest/webhook", method="POST",
                                     data=json.dumps({"sender": sender, "message": message}).encode(),
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


@dataclass
class RasaChat:
    """One conversation over nginx's Rasa pool (Rasa's REST webhook), as tests/e2e talks to one Rasa."""

    url: str
    sender: str = field(default_factory=lambda: f"scale-{uuid.uuid4().hex}")
    log: list[tuple[str, list[dict]]] = field(default_factory=list)

    def say(self, message: str) -> list[dict]:
        replies = rasa_say(self.url, self.sender, message)
        self.log.append((message, replies))
        return replies

    text = staticmethod(WebChat.text)
    customs = staticmethod(WebChat.customs)
    transcript = WebChat.transcript


def wait_log(stack: ScaledStack, pool: str, uri: str, count: int, timeout: float = 10.0) -> list[dict]:
    """The pool's log rows for ``uri`` once there are at least ``count`` of them: nginx writes a line just
    after it has sent the response, so the client can be a moment ahead of the log."""
    deadline = time.monotonic() + timeout
    while True:
        rows = [r for r in pool_log(stack, pool) if r["uri"] == uri]
        if len(rows) >= count or time.monotonic() > deadline:
            return rows
        time.sleep(0.05)
