"""The real action server started by bot.runner refuses any call without the run's token in its header.

Rasa's own ``token`` travels in the URL, and URLs reach proxies' error logs, so ours goes in a header; a
token given in the URL alone is refused like no token at all. Rasa itself (the conversations in
test_conversations.py) gets through, so the endpoints it reads carry the header."""
from __future__ import annotations

import json
import urllib.error
import urllib.request

import pytest
import yaml

from actions.server import TOKEN_HEADER

pytestmark = pytest.mark.e2e


def _call(stack, query: str = "", headers: dict | None = None) -> int:
    body = json.dumps({"next_action": "action_restart", "sender_id": "auth-test", "tracker": {"sender_id": "auth-test",
                       "slots": {}, "latest_message": {}, "events": [], "paused": False, "latest_event_time": None,
                       "followup_action": None, "active_loop": {}, "latest_action_name": None}, "domain": {}}).encode()
    request = urllib.request.Request(f"{stack.action_url}/webhook{query}", data=body,
                                     headers={"Content-Type": "application/json", **(headers or {})})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as err:
        return err.code


def test_the_action_server_wants_the_token_in_its_header(stack):
    endpoints = yaml.safe_load((stack.state / "endpoints.yml").read_text())
    token = endpoints["action_endpoint"]["headers"][TOKEN_HEADER]
    assert "token" not in endpoints["action_endpoint"] and token not in endpoints["action_endpoint"]["url"]
    assert _call(stack) == 403
    assert _call(stack, query=f"?token={token}") == 403
    assert _call(stack, headers={TOKEN_HEADER: token + "x"}) == 403
    assert _call(stack, headers={TOKEN_HEADER: token}) != 403
