"""Whole conversations in headless Chromium through the real web app, Rasa and action server.

The first run trains the Rasa model (1-2 minutes, cached under var/models)."""
from __future__ import annotations

import datetime as dt
import json
import urllib.error
import urllib.request

import pytest

from bot.areas import get_area
from bot.contacts import child_at_risk_contacts
from bot.runner import ACTION_TOKEN_HEADER
from tests.web.browser import launch
from tests.web.conftest import open_store
from tests.web.test_browser import exchange

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(web_stack):
    wait_until_ready(web_stack)
    with playwright_api.sync_playwright() as p:
        context, close = launch(p)
        try:
            yield context.new_page()
        finally:
            close()


def fresh_chat(page, web_stack) -> None:
    page.context.clear_cookies()
    page.goto(web_stack.url + "/")


def wait_until_ready(web_stack, seconds: float = 180) -> dict:
    """/readyz once it says ready (the safeguarding screen loads in the background at start)."""
    import time

    deadline = time.monotonic() + seconds
    while True:
        try:
            with urllib.request.urlopen(web_stack.url + "/readyz", timeout=10) as response:
                return json.loads(response.read())
        except urllib.error.HTTPError as err:
            doc = json.loads(err.read())
            assert time.monotonic() < deadline, doc
            time.sleep(0.5)


def test_readyz_is_ready_with_the_real_stack(web_stack):
    doc = wait_until_ready(web_stack)
    assert doc["ready"] and all(check["ok"] for check in doc["checks"].values()), doc


def test_a_parent_s_whole_conversation_ends_in_service_cards(page, web_stack):
    fresh_chat(page, web_stack)
    page.get_by_role("button", name="Start chatting").click()
    expect(page.get_by_role("button", name="A parent or carer")).to_be_visible(timeout=10_000)
    page.get_by_role("button", name="A parent or carer").click()
    expect(page.locator(".from-bot").last).to_contain_text("area", timeout=10_000)
    exchange(page, "we live in Stroud", timeout=10_000)
    exchange(page, "she's 2", timeout=10_000)
    exchange(page, "my toddler isn't talking yet and I'm worried she's behind", timeout=10_000)
    expect(page.locator("#log")).to_contain_text("Stroud, Gloucestershire")
    page.get_by_role("button", name="Yes, that's right").click()
    cards = page.locator(".service-card")
    expect(cards.first).to_be_visible(timeout=15_000)
    first = cards.first
    expect(first.locator("h3")).not_to_be_empty()
    expect(first).to_contain_text("What it does")
    phone_links = page.locator(".service-card a[href^='tel:']")
    assert phone_links.count() >= 1
    expect(page.locator("#log")).to_contain_text("01452")  # and a Gloucestershire number for a person


def test_a_safeguarding_message_shows_999_and_the_duty_number_at_once(page, web_stack):
    fresh_chat(page, web_stack)
    exchange(page, "we live in Gloucester", timeout=10_000)
    before = {e["id"] for e in open_store(web_stack.settings).list()}
    exchange(page, "my mum's boyfriend is hitting me right now", timeout=4_000)
    log_text = page.locator("#log").inner_text()
    answer = log_text.split("my mum's boyfriend is hitting me right now", 1)[1]
    assert "999" in answer.splitlines()[1] or "999" in answer[:200]
    number = child_at_risk_contacts(get_area("gloucestershire"), dt.datetime.now(dt.timezone.utc))[0].phone
    assert number.split(" (")[0] in answer
    new = [e for e in open_store(web_stack.settings).list() if e["id"] not in before]
    assert len(new) == 1 and new[0]["area"] == "gloucestershire" and new[0]["urgency"] == "immediate"


def tracker_events(web_stack, sender: str) -> int:
    import sqlalchemy as sa

    engine = sa.create_engine(web_stack.settings.tracker_url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar()
    finally:
        engine.dispose()


def test_delete_this_chat_empties_rasa_s_tracker_store(page, web_stack):
    fresh_chat(page, web_stack)
    exchange(page, "hello", timeout=10_000)
    exchange(page, "we live in Stroud", timeout=10_000)
    store = open_store(web_stack.settings)
    sender = _newest_sender(store)
    assert tracker_events(web_stack, sender) > 0, "Rasa kept this conversation in its tracker store"
    page.get_by_role("button", name="Delete this chat").click()
    page.get_by_role("button", name="Yes, delete it").click()
    expect(page.locator("#chat-status")).to_contain_text("Your chat has been deleted", timeout=5_000)
    assert tracker_events(web_stack, sender) == 0
    assert store.messages(sender) == []


def _newest_sender(store) -> str:
    import sqlalchemy as sa

    with store.engine.connect() as conn:
        return conn.execute(sa.text("SELECT session_id FROM esc_messages ORDER BY id DESC LIMIT 1")).scalar()


def test_zz_stopping_the_action_server_mid_conversation_still_answers(page, web_stack):
    """Runs last in this module: it stops the real action server (issue 9, item 7)."""
    import time

    fresh_chat(page, web_stack)
    exchange(page, "hello", timeout=10_000)
    page.get_by_role("button", name="A parent or carer").click()
    expect(page.locator(".from-bot").last).to_contain_text("area", timeout=10_000)
    (name, process), = [(n, p) for n, p in web_stack.stack.processes if n == "action-server"]
    import os
    import signal

    os.killpg(process.pid, signal.SIGTERM)
    process.wait(timeout=15)
    try:
        _answers_without_the_action_server(page, web_stack)
    finally:  # later modules share this stack: bring the action server back as the runner started it
        web_stack.stack.processes.remove((name, process))
        restarted = web_stack.stack._spawn(name, process.args, {"EARLYHELP_ACTION_TOKEN": _token(web_stack),
                                                                "EARLYHELP_HOME": str(web_stack.stack.state)})
        from bot.runner import wait_for

        wait_for(f"{web_stack.stack.action_url}/health", restarted, name, 600)


def _token(web_stack) -> str:
    import yaml

    endpoints = yaml.safe_load((web_stack.stack.state / "endpoints.yml").read_text())
    return endpoints["action_endpoint"]["headers"][ACTION_TOKEN_HEADER]


def _answers_without_the_action_server(page, web_stack) -> None:
    import time

    started = time.monotonic()
    exchange(page, "we live in Stroud", timeout=4_000)
    exchange(page, "she's 2", timeout=4_000)
    last = exchange(page, "my toddler isn't talking yet", timeout=4_000)
    assert time.monotonic() - started < 9  # three answers, each well within 3 seconds
    log_text = page.locator("#log").inner_text()
    answer = log_text.split("my toddler isn't talking yet", 1)[1]
    assert "talk to a person" in answer and "999" in answer
    assert "Gloucestershire" in answer
    with urllib.request.urlopen(web_stack.url + "/healthz", timeout=5) as response:
        assert response.status == 200
    try:
        urllib.request.urlopen(web_stack.url + "/readyz", timeout=5)
        raise AssertionError("readyz must say not ready")
    except urllib.error.HTTPError as err:
        code, doc = err.code, json.loads(err.read())
    assert code == 503 and doc["checks"]["action_server"]["ok"] is False and doc["checks"]["rasa"]["ok"] is True
    assert doc["recent"]["action_server"]["failing_now"] is True
