"""Issue 6 end to end: a safeguarding cue typed in the middle of the questions, through the real web app,
Rasa and action server, becomes a stored escalation that is delivered to the duty inbox and acknowledged over
the case-system API; the person is given 999 and the number answering now, and the questions carry on."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from tests.web.conftest import open_store
from tests.web.test_browser_stack import wait_until_ready

pytestmark = pytest.mark.e2e


class Chat:
    """A person in the widget, over the JSON API (cookie session + CSRF), like the page's own script."""

    def __init__(self, url: str):
        import http.cookiejar
        import re

        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.opener.open(url + "/", timeout=30).read().decode()
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    def say(self, message: str) -> list[dict]:
        request = urllib.request.Request(self.url + "/api/chat", data=json.dumps({"message": message}).encode(),
                                         headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf,
                                                  "Origin": self.url})
        with self.opener.open(request, timeout=60) as response:
            return json.loads(response.read())["messages"]


def text(messages: list[dict]) -> str:
    return "\n".join((m.get("text") or "") + json.dumps(m.get("custom") or {}) for m in messages)


def test_a_cue_mid_form_is_stored_delivered_acknowledged_and_the_questions_carry_on(web_stack):
    wait_until_ready(web_stack)
    chat = Chat(web_stack.url)
    chat.say("hi")
    chat.say("/identify_parent")
    asked = text(chat.say("we live in Gloucester"))
    assert "old" in asked.lower()  # mid-form: the age question is pending
    before = {e["id"] for e in open_store(web_stack.settings).list()}
    answer = chat.say("her dad is hitting her right now and she is screaming")
    assert answer[0]["custom"]["type"] == "safety" and "999" in text(answer[:1])  # 999 first, at once
    store = open_store(web_stack.settings)
    (escalation,) = [e for e in store.list() if e["id"] not in before]
    assert escalation["area"] == "gloucestershire" and escalation["urgency"] == "immediate"
    deadline = time.monotonic() + 60  # the delivery worker inside the web app puts it in the duty inbox
    while not any(d["status"] == "delivered" for d in store.get(escalation["id"])["deliveries"]):
        assert time.monotonic() < deadline, store.get(escalation["id"])["deliveries"]
        time.sleep(0.5)
    request = urllib.request.Request(f"{web_stack.url}/api/escalations/{escalation['id']}/ack", method="POST",
                                     data=b'{"by": "case system test"}',
                                     headers={"Authorization": f"Bearer {web_stack.settings.duty_token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert store.get(escalation["id"])["status"] == "acknowledged"
    resumed = text(chat.say("/carry_on"))
    assert "old" in resumed.lower(), resumed  # back to the question it was asking
    summary = text(chat.say("7"))
    assert "how" in summary.lower() or "worr" in summary.lower(), summary  # then what is worrying them
