"""Whole conversations in headless Chromium through the real web app, Rasa and action server.

The first run trains the Rasa model (1-2 minutes, cached under var/models)."""
from __future__ import annotations

import datetime as dt
import json
import urllib.request

import pytest

from bot.areas import get_area
from bot.contacts import child_at_risk_contacts
from tests.web.browser import launch
from tests.web.conftest import open_store
from tests.web.test_browser import exchange

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def page(web_stack):
    with playwright_api.sync_playwright() as p:
        context, close = launch(p)
        try:
            yield context.new_page()
        finally:
            close()


def fresh_chat(page, web_stack) -> None:
    page.context.clear_cookies()
    page.goto(web_stack.url + "/")


def test_readyz_is_ready_with_the_real_stack(web_stack):
    with urllib.request.urlopen(web_stack.url + "/readyz", timeout=10) as response:
        doc = json.loads(response.read())
    assert response.status == 200 and doc["ready"], doc


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
