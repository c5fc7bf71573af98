"""Fuzzing POST /api/chat with hypothesis against the real app on a loopback port: never a 500, always a
JSON answer, never a stack trace, never the request echoed back in an error."""
from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.web.settings import Rate
from tests.web.conftest import CSRF

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
bodies = st.one_of(
    st.dictionaries(st.sampled_from(["message", "sender", "message_id", "metadata", "csrf", "x"]), json_values, max_size=4)
    .map(lambda d: json.dumps(d).encode()),
    st.builds(lambda m, extra: json.dumps({"message": m, **extra}).encode(),
              st.text(max_size=2100), st.dictionaries(st.text(max_size=8), json_values, max_size=2)),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.binary(max_size=300),
)


class Browser:
    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        with self.opener.open(base + "/", timeout=10) as response:
            self.csrf = CSRF.search(response.read().decode()).group(1)

    def post(self, path: str, body: bytes, content_type: str = "application/json") -> tuple[int, str, str]:
        request = urllib.request.Request(self.base + path, data=body, method="POST",
                                         headers={"Content-Type": content_type, "X-CSRF-Token": self.csrf})
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    import secrets

    from tests.web.conftest import ServerThread, closed_port, free_port
    from bot.web import Settings

    folder = tmp_path_factory.mktemp("fuzz")
    server = ServerThread(Settings(
        port=free_port(), rasa_url=f"http://127.0.0.1:{closed_port()}", action_url=f"http://127.0.0.1:{closed_port()}",
        secret_key=secrets.token_urlsafe(48), database_url=f"sqlite:///{folder / 'fuzz.db'}",
        rate_session=Rate(10_000, 60), rate_address=Rate(10_000, 60), run_delivery_worker=False,
    )).start()
    yield Browser(server.url)
    server.stop()


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=bodies)
def test_chat_never_fails_with_a_500(browser, body):
    status, content_type, text = browser.post("/api/chat", body)
    assert status in (200, 400, 413, 415), (status, text[:300])
    assert content_type.startswith("application/json")
    doc = json.loads(text)
    assert "Traceback" not in text
    if status == 200:
        assert isinstance(doc["messages"], list) and doc["messages"]
        assert all(set(m) == {"text", "buttons", "custom"} for m in doc["messages"])
    else:
        assert isinstance(doc["error"], str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(content_type=st.sampled_from(["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]),
       body=st.binary(max_size=200))
def test_other_content_types_are_refused_cleanly(browser, content_type, body):
    status, kind, text = browser.post("/api/chat", body, content_type)
    assert status == 415 and kind.startswith("application/json") and "Traceback" not in text
