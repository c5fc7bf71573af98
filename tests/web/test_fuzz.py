"""Fuzzing the HTTP API with hypothesis against the real app on a loopback port: the chat API, "start
again" and "delete this chat", the duty login and actions, and the case-system API. Never a 500, never a
stack trace, JSON from every /api/ address, and nothing hostile echoed back unescaped."""
from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.request

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.web.conftest import CSRF, add_duty_user

TOKEN = "fuzz-token-" + "x" * 30
PASSWORD = "correct horse battery"
HOSTILE = st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' OR 1=1 --", "../../etc/passwd",
                           "\x00", "%00", "{{csrf}}", "\u202e", "A" * 300]) | st.text(max_size=80)

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

    def post(self, path: str, body: bytes, content_type: str = "application/json", headers: dict | None = None,
             method: str = "POST") -> tuple[int, str, str]:
        sent = {"Content-Type": content_type, "X-CSRF-Token": self.csrf, **(headers or {})}
        request = urllib.request.Request(self.base + path, data=body, method=method, headers=sent)
        try:
            with self.opener.open(request, timeout=10) as response:
                return response.status, response.headers.get("Content-Type", ""), response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("Content-Type", ""), err.read().decode()


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from tests.web.conftest import ServerThread, fuzz_settings

    settings = fuzz_settings(tmp_path_factory.mktemp("fuzz"), duty_token=TOKEN)
    server = ServerThread(settings).start()
    add_duty_user(settings, "fuzz.duty", ["gloucestershire"], PASSWORD)
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


def json_without_trace(status: int, content_type: str, text: str) -> dict:
    assert status < 500, (status, text[:300])
    assert content_type.startswith("application/json"), (status, content_type, text[:200])
    assert "Traceback" not in text and 'File "' not in text
    return json.loads(text)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(path=st.sampled_from(["/api/chat/reset", "/api/chat/delete"]), body=bodies)
def test_start_again_and_delete_never_fail(browser, path, body):
    status, kind, text = browser.post(path, body)
    doc = json_without_trace(status, kind, text)
    if status == 200:
        browser.csrf = doc["csrf"]  # both start a new session: the page would take its new token
    else:
        assert isinstance(doc["error"], str)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(username=HOSTILE, password=HOSTILE, csrf=HOSTILE, extra=st.dictionaries(st.text(max_size=10), HOSTILE, max_size=3))
def test_the_duty_login_form_never_fails_or_reflects_markup(browser, username, password, csrf, extra):
    from urllib.parse import urlencode

    body = urlencode({**extra, "username": username, "password": password, "csrf": csrf}).encode()
    status, kind, text = browser.post("/duty/login", body, "application/x-www-form-urlencoded")
    assert status in (401, 403, 429), (status, text[:200])
    assert kind.startswith("text/html") and "Traceback" not in text
    assert "<script>alert" not in text and "<img src=x" not in text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth=st.one_of(st.just(f"Bearer {TOKEN}"), st.just(f"bearer  {TOKEN} "),
                     *(h.filter(str.isprintable) for h in (HOSTILE.map(lambda t: "Bearer " + t), HOSTILE))),
       status_filter=st.one_of(st.none(), st.sampled_from(["open", "acknowledged", "closed"]), HOSTILE),
       area=st.one_of(st.none(), st.sampled_from(["gloucestershire", "nowhere"]), HOSTILE))
def test_the_case_system_list_never_fails(browser, auth, status_filter, area):
    from urllib.parse import urlencode

    query = urlencode({k: v for k, v in {"status": status_filter, "area": area}.items() if v is not None})
    try:
        headers = {"Authorization": auth}
        auth.encode("latin-1")
    except UnicodeEncodeError:
        headers = {}
    status, kind, text = browser.post("/api/escalations?" + query, None, headers=headers, method="GET")
    doc = json_without_trace(status, kind, text)
    good = headers.get("Authorization", "").strip().lower() == f"bearer {TOKEN}".lower() or \
        headers.get("Authorization", "").split(" ", 1)[-1].strip() == TOKEN
    if not good:
        assert status == 401
    else:
        assert status in (200, 400) and ("escalations" in doc or "error" in doc)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(escalation_id=HOSTILE.filter(lambda t: t.strip() and "/" not in t and "?" not in t and "#" not in t), body=bodies)
def test_the_case_system_ack_never_fails(browser, escalation_id, body):
    from urllib.parse import quote

    status, kind, text = browser.post(f"/api/escalations/{quote(escalation_id, safe='')}/ack", body,
                                      headers={"Authorization": f"Bearer {TOKEN}"})
    doc = json_without_trace(status, kind, text)
    assert status in (400, 404, 413, 415), (status, doc)
    assert escalation_id not in doc.get("error", "") or len(escalation_id) < 3


@pytest.fixture(scope="module")
def duty(browser):
    """The fuzz server's duty inbox, logged in as a Gloucestershire worker (cookie and CSRF token)."""
    from urllib.parse import urlencode

    import re

    with browser.opener.open(browser.base + "/duty/login", timeout=10) as response:
        csrf = re.search(r'name="csrf" value="([^"]+)"', response.read().decode()).group(1)
    body = urlencode({"username": "fuzz.duty", "password": PASSWORD, "csrf": csrf}).encode()
    status, _kind, text = browser.post("/duty/login", body, "application/x-www-form-urlencoded")
    assert status == 200 and "Open escalations" in text  # followed the redirect to the inbox
    return CSRF.search(text).group(1)


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(action=st.sampled_from(["ack", "note", "close"]), escalation_id=HOSTILE.filter(lambda t: t.strip() and "/" not in t),
       note=HOSTILE, use_token=st.booleans())
def test_duty_actions_never_fail(browser, duty, action, escalation_id, note, use_token):
    from urllib.parse import quote, urlencode

    body = urlencode({"csrf": duty if use_token else "wrong", "note": note}).encode()
    status, kind, text = browser.post(f"/duty/escalations/{quote(escalation_id, safe='')}/{action}", body,
                                      "application/x-www-form-urlencoded", headers={"Accept": "application/json"})
    doc = json_without_trace(status, kind, text) if kind.startswith("application/json") else None
    assert status < 500 and "Traceback" not in text
    if status == 404:
        return  # no such escalation in this worker's areas (or an id the router cannot take, such as "{x}")
    assert not use_token and status == 403 and doc and "expired" in doc["error"]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cookie=st.binary(min_size=1, max_size=120).filter(lambda b: not any(c in b for c in b"\r\n\x00;")),
       csrf=HOSTILE.filter(str.isprintable))
def test_forged_cookies_and_tokens_are_refused_not_crashed(browser, cookie, csrf):
    import http.client
    from urllib.parse import urlsplit

    where = urlsplit(browser.base)
    for path in ("/api/chat", "/api/chat/delete", "/duty"):
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=10)
        try:
            connection.putrequest("POST" if path.startswith("/api") else "GET", path)
            connection.putheader("Cookie", b"eh_chat=" + cookie + b"; eh_duty=" + cookie)
            connection.putheader("Content-Type", "application/json")
            connection.putheader("X-CSRF-Token", csrf.encode("utf-8"))
            connection.putheader("Content-Length", "17")
            connection.endheaders(b'{"message": "hi"}')
            response = connection.getresponse()
            text = response.read().decode("utf-8", "replace")
        finally:
            connection.close()
        assert response.status in (303, 400, 401, 403), (path, response.status, text[:200])
        assert "Traceback" not in text
