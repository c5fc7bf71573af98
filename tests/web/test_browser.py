"""The widget and the duty inbox in headless Chromium, against the real app on a loopback port.

Rasa here is either down (the gateway's own answers) or the recording stand-in from conftest (to make the
server say hostile things); whole conversations with the real Rasa are in test_browser_stack.py.
"""
from __future__ import annotations

import re
import time

import pytest

from tests.web.browser import EXIT_URL, axe_violations, launch, neutral_site
from tests.web.conftest import add_duty_user, open_store

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def playwright():
    with playwright_api.sync_playwright() as p:
        yield p


@pytest.fixture
def browser(playwright):
    contexts = []

    def open_browser(**options):
        context, close = launch(playwright, **options)
        contexts.append(close)
        return context

    yield open_browser
    for close in contexts:
        close()


def csp_errors(page) -> list[str]:
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    return errors


def send(page, text: str) -> None:
    page.get_by_label("Your message").fill(text)
    page.get_by_label("Your message").press("Enter")


def exchange(page, text: str, timeout: float = 5000):
    """Send ``text`` and wait for the whole answer; returns a locator of the new assistant messages."""
    before = page.locator(".from-bot").count()
    send(page, text)
    deadline = time.monotonic() + timeout / 1000
    while page.locator(".from-bot").count() <= before:
        assert time.monotonic() < deadline, f"no answer to {text!r}"
        page.wait_for_timeout(50)
    expect(page.locator("#typing")).to_be_hidden(timeout=timeout)
    return page.locator(f".from-bot >> nth=-1")


# -- the widget --------------------------------------------------------------------------------------------


def test_privacy_notice_first_then_a_conversation_with_the_fallback(make_settings, serve, browser):
    server = serve(make_settings())
    page = browser().new_page()
    errors = csp_errors(page)
    page.goto(server.url + "/")
    notice = page.locator("#privacy")
    expect(notice).to_contain_text("If a child is in danger, call 999")
    expect(notice).to_contain_text("What we keep")
    expect(notice).to_contain_text("Who sees it")
    expect(notice).to_contain_text("How long")
    expect(notice).to_contain_text("When we tell someone")
    send(page, "hello, we live in Stroud")
    expect(page.locator(".from-user .bubble").last).to_have_text("hello, we live in Stroud")
    expect(page.locator(".from-bot").last).to_contain_text("Gloucestershire", timeout=5000)
    expect(page.locator("#typing")).to_be_hidden()
    assert errors == []


def test_hostile_text_from_the_server_and_the_person_is_shown_as_text(make_settings, serve, browser, rasa_in_thread):
    evil = '<img src=x onerror="window.__pwned=1"><script>window.__pwned=2</script>'
    recorder = rasa_in_thread(reply=[
        {"text": evil, "buttons": [{"title": "<b onmouseover=alert(1)>Bold</b>", "payload": "/greet"}]},
        {"custom": {"type": "service_cards", "services": [
            {"name": "<script>window.__pwned=3</script>Family Hub", "description": evil, "phone": "01452 000000",
             "url": "javascript:window.__pwned=4", "hours": "<i>9 to 5</i>", "ages": [0, 5],
             "tel": "javascript:window.__pwned=6", "caution": [evil, {"x": 1}], "email": "a@b.co?cc=<b>x</b>"},
            {"name": "Second", "tel": "tel:01452 000001<img>", "phone": "01452 000001", "caution": "<b>one line</b>"}]}},
    ])
    server = serve(make_settings(rasa_url=recorder.url))
    page = browser(bypass_csp=True).new_page()  # no CSP safety net: the page's own code must be safe
    page.goto(server.url + "/")
    send(page, "<img src=y onerror=\"window.__pwned=5\">hi")
    card = page.locator(".service-card")
    expect(card.first).to_be_visible(timeout=5000)
    expect(page.locator(".from-user .bubble").last).to_have_text("<img src=y onerror=\"window.__pwned=5\">hi")
    expect(page.locator(".from-bot .bubble").first).to_have_text(evil)
    expect(card.first.locator("h3")).to_have_text("<script>window.__pwned=3</script>Family Hub")
    expect(page.get_by_role("button", name="<b onmouseover=alert(1)>Bold</b>")).to_be_visible()
    assert page.locator("#log img, #log script, #log b, #log i").count() == 0
    assert page.evaluate("window.__pwned") is None
    first, second = card.first, card.nth(1)
    assert first.get_by_role("link", name="01452 000000").get_attribute("href") == "tel:01452000000"
    assert second.get_by_role("link", name="01452 000001").get_attribute("href") == "tel:01452000001"
    assert page.locator("#log a[href^='javascript'], #log a[href^='mailto']").count() == 0
    expect(first).to_contain_text("Ages 0 to 5")
    expect(first.locator(".caution li")).to_have_text([evil])  # text only; a line that is not text is dropped
    expect(second.locator(".caution li")).to_have_text(["<b>one line</b>"])


def as_rasa_sends(reply: dict) -> list[dict]:
    """A reply made by ``bot.replies`` as Rasa's REST channel returns it: the text with its buttons, then the card."""
    return [{"text": reply["text"], "buttons": reply.get("buttons", [])}, {"custom": reply["custom"]}]


# Search results shaped as the directory returns them (directory/search.py), made into cards by bot.replies
RESULTS = [
    {"id": "glos-example-hub", "name": "Example Family Hub", "description": "Drop-in advice on talking and listening.",
     "who_for": "parents of children aged 0 to 5", "phone": "+44 (0)1452 427224", "url": "https://example.org/hub",
     "hours": "Tuesdays 09:30-11:30", "area": ["gloucestershire"], "flags": ["stale"],
     "caution": ["These details were last checked more than two years ago and may have changed; confirm them with the service.",
                 "In an emergency call 999."], "complete": True},
    {"id": "national-example-line", "name": "Example Helpline", "description": "Someone to talk to, any time.",
     "who_for": "children and young people under 19, who call it themselves", "phone": "0800 1111",
     "url": "javascript:window.__pwned=1", "hours": "24 hours a day, every day", "area": "national", "caution": []},
    {"id": "glos-example-email", "name": "Example Parenting Group", "description": "", "who_for": None, "phone": None,
     "url": None, "email": "groups@example.org", "hours": "opening hours not stated in the source document",
     "flags": ["no_hours"], "area": ["gloucestershire"], "weak_match": True, "complete": False,
     "caution": ["There is no description of what this service does."]},
]


def test_service_cards_and_the_pathway_show_every_field_they_carry(make_settings, serve, browser, rasa_in_thread):
    """A professional's answer: the pathway (as bot.replies.level_answer makes it) and then the service cards."""
    import datetime as dt

    from bot.pathways import pathway_report, render_pathway
    from bot.replies import say, service_cards

    doc = pathway_report("buckinghamshire", 4, dt.datetime(2026, 11, 29, 22, 0, tzinfo=dt.timezone.utc))  # a Sunday night
    reply = service_cards(RESULTS, "Services that may help:")
    cards = reply["custom"]["services"]
    recorder = rasa_in_thread(reply=as_rasa_sends(say(render_pathway(doc), custom={"type": "pathway", "pathway": doc}))
                              + as_rasa_sends(reply))
    server = serve(make_settings(rasa_url=recorder.url))
    page = browser(viewport={"width": 375, "height": 740}).new_page()
    errors = csp_errors(page)
    page.goto(server.url + "/")
    answer = exchange(page, "my toddler isn't talking yet")
    expect(answer.locator(".bubble")).to_have_text("Services that may help:")  # the plain-text copy is not repeated
    services = answer.get_by_role("list", name="Services")
    expect(services.locator(":scope > li")).to_have_count(3)

    hub = services.get_by_role("article", name="Example Family Hub")
    expect(hub.get_by_role("heading", level=3)).to_have_text("Example Family Hub")

    def value(card, label: str):
        return card.locator(f"dt:text-is('{label}') + dd")

    expect(value(hub, "What it does")).to_have_text("Drop-in advice on talking and listening.")
    expect(value(hub, "Who it is for")).to_have_text("Parents of children aged 0 to 5")
    phone = hub.get_by_role("link", name="+44 (0)1452 427224")
    assert phone.get_attribute("href") == cards[0]["tel"] == "tel:+441452427224"  # the server's link, not a guess
    website = hub.get_by_role("link", name="https://example.org/hub")
    assert website.get_attribute("href") == "https://example.org/hub"
    assert website.get_attribute("rel") == "noopener noreferrer"
    expect(value(hub, "Opening hours")).to_have_text("Tuesdays 09:30-11:30")
    check = hub.get_by_role("list", name="Please check")
    expect(check.get_by_role("listitem")).to_have_text(cards[0]["caution"])

    line = services.get_by_role("article", name="Example Helpline")
    expect(value(line, "Who it is for")).to_have_text(
        "Children and young people under 19, who call it themselves. Anywhere in the UK")
    assert line.get_by_role("link", name="0800 1111").get_attribute("href") == "tel:08001111"
    expect(value(line, "Website")).to_have_text("javascript:window.__pwned=1")  # shown, never a link
    assert line.locator("a[href^='javascript']").count() == 0
    expect(value(line, "Opening hours")).to_have_text("24 hours a day, every day")
    assert line.locator(".caution").count() == 0

    group = services.get_by_role("article", name="Example Parenting Group")
    expect(group).to_contain_text("Not a close match")
    assert group.get_by_role("link", name="groups@example.org").get_attribute("href") == "mailto:groups@example.org"
    assert group.locator("dt:text-is('Opening hours'), dt:text-is('What it does'), dt:text-is('Phone')").count() == 0
    expect(group.get_by_role("list", name="Please check")).to_contain_text("There is no description")
    assert "incomplete" in group.get_attribute("class")

    expect(answer.get_by_role("button", name="Show more")).to_be_visible()

    pathway = page.locator(".pathway-card")
    expect(pathway.get_by_role("heading", level=3)).to_have_text(f"Buckinghamshire: level 4 ({doc['label']})")
    expect(pathway.locator("ol > li")).to_have_text(doc["steps"])
    for t in doc["timescales"]:
        expect(value(pathway, "Timescale: " + t["what"])).to_have_text(t["within"])
    contacts = pathway.get_by_role("list", name="Who to contact").locator(":scope > li")
    expect(contacts).to_have_count(len(doc["contacts"]))
    for item, contact in zip(contacts.all(), doc["contacts"]):
        expect(item.locator("strong")).to_have_text(contact["name"])
        expect(item).to_contain_text(contact["role"])
        expect(value(item, "Hours")).to_have_text(contact["hours"])
        expect(value(item, "When I answered")).to_have_text("Open" if contact["answering_now"] else "Closed")
        tel = "tel:" + re.sub(r"[^0-9+]", "", contact["phone"])
        assert item.get_by_role("link", name=contact["phone"]).get_attribute("href") == tel
        if contact["url"]:
            assert item.get_by_role("link", name=contact["url"]).get_attribute("href") == contact["url"]
    assert [c["answering_now"] for c in doc["contacts"]] == [True, False]  # out of hours: the duty team first
    expect(value(pathway, "Source")).to_have_text(doc["source"])
    assert page.evaluate("document.documentElement.scrollWidth") <= 375  # fits a phone
    assert page.evaluate("window.__pwned") is None
    assert errors == []


def chat_with_a_way_out(make_settings, serve, browser):
    """The widget in a fresh browser whose quick-exit site is answered locally; returns (server, page)."""
    server = serve(make_settings())
    context = browser()
    neutral_site(context)
    page = context.new_page()
    page.goto(server.url + "/")
    return server, page


def test_quick_exit_button_replaces_the_page_in_history(make_settings, serve, browser):
    server, page = chat_with_a_way_out(make_settings, serve, browser)
    send(page, "something private")
    expect(page.locator(".from-bot").last).to_be_visible(timeout=5000)
    started = time.monotonic()
    page.get_by_role("button", name="Leave this site quickly").click()
    page.wait_for_url(EXIT_URL + "**", timeout=3000)
    assert time.monotonic() - started < 2
    page.go_back()
    assert not page.url.startswith(server.url), "Back must not return to the chat"


def test_quick_exit_by_pressing_escape_twice(make_settings, serve, browser):
    server, page = chat_with_a_way_out(make_settings, serve, browser)
    page.get_by_label("Your message").fill("typing something")
    page.keyboard.press("Escape")
    page.wait_for_timeout(1200)  # one press, then a pause: still here
    assert page.url.startswith(server.url)
    page.keyboard.press("Escape")
    page.keyboard.press("Escape")
    page.wait_for_url(EXIT_URL + "**", timeout=3000)
    page.go_back()
    assert not page.url.startswith(server.url)


def test_keyboard_only_use_with_visible_focus(make_settings, serve, browser, rasa_in_thread):
    recorder = rasa_in_thread(reply=[{"text": "Who are you?", "buttons": [
        {"title": "A parent or carer", "payload": "/identify_parent"},
        {"title": "A young person", "payload": "/identify_young_person"}]}])
    server = serve(make_settings(rasa_url=recorder.url))
    page = browser().new_page()
    errors = csp_errors(page)
    page.goto(server.url + "/")
    order = []
    for _ in range(4):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
        style = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert style not in ("none", ""), f"no visible focus on {order[-1]}"
    assert order[0] == "Skip to the message box"
    assert order[1] == "quick-exit"
    while page.evaluate("document.activeElement.textContent.trim()") != "Skip to the message box":
        page.keyboard.press("Shift+Tab")
    page.keyboard.press("Enter")  # the skip link
    assert page.evaluate("document.activeElement.id") == "message"
    page.keyboard.type("hello")
    page.keyboard.press("Enter")
    quick = page.get_by_role("button", name="A parent or carer")
    expect(quick).to_be_visible(timeout=5000)
    assert page.evaluate("document.activeElement.id") == "message"  # focus stays in the box
    # reach the quick reply with Shift+Tab only and choose it with the keyboard
    for _ in range(10):
        if page.evaluate("document.activeElement.textContent.trim()") == "A parent or carer":
            break
        page.keyboard.press("Shift+Tab")
    assert page.evaluate("document.activeElement.textContent.trim()") == "A parent or carer"
    page.keyboard.press("Space")
    expect(page.locator(".from-user .bubble").last).to_have_text("A parent or carer")
    expect(page.locator("#typing")).to_be_hidden(timeout=10_000)  # the answer has come back
    assert recorder.received[-1]["message"] == "/identify_parent"
    # the conversation is announced politely to screen readers
    assert page.get_attribute("#log", "aria-live") == "polite"
    assert errors == []


def test_reduced_motion_stops_the_typing_animation(make_settings, serve, browser):
    server = serve(make_settings())
    page = browser(reduced_motion="reduce").new_page()
    page.goto(server.url + "/")
    assert page.evaluate("getComputedStyle(document.querySelector('.dots span')).animationName") == "none"


@pytest.mark.parametrize("width, height", [(375, 740), (320, 256)])  # a phone; 1280 px at 400% zoom
def test_fits_a_phone_and_400_percent_zoom_without_sideways_scrolling(make_settings, serve, browser, width, height):
    server = serve(make_settings())
    page = browser(viewport={"width": width, "height": height}).new_page()
    page.goto(server.url + "/")
    send(page, "we live in Stroud, what help is there?")
    expect(page.locator(".from-bot").last).to_be_visible(timeout=5000)
    assert page.evaluate("document.documentElement.scrollWidth") <= width
    exit_box = page.get_by_role("button", name="Leave this site quickly").bounding_box()
    assert exit_box and exit_box["x"] >= 0 and exit_box["x"] + exit_box["width"] <= width


def test_axe_finds_no_serious_problems_in_the_widget(make_settings, serve, browser, rasa_in_thread):
    from bot.replies import service_cards

    recorder = rasa_in_thread(reply=[
        *as_rasa_sends(service_cards(RESULTS, "Services that may help:")),
        {"custom": {"type": "service_cards", "services": [
            {"name": "Family Hub", "organization": "Council", "description": "Play and stay sessions", "phone": "01452 000000",
             "url": "https://example.org/hub", "hours": "Mon to Fri 9 to 5", "ages": [0, 5]}]}},
        {"custom": {"type": "pathway", "pathway": {"area_name": "Gloucestershire", "level": 2, "label": "Early help",
                                                   "summary": "Talk to the family", "steps": ["Ask consent", "Refer"],
                                                   "consent": "Needed", "contacts": [{"name": "Hub", "phone": "01452 1"}],
                                                   "source": "Council guidance"}}},
    ])
    server = serve(make_settings(rasa_url=recorder.url))
    page = browser(bypass_csp=True).new_page()
    page.goto(server.url + "/")
    assert axe_violations(page) == []
    send(page, "hello")
    expect(page.locator(".pathway-card")).to_be_visible(timeout=5000)
    expect(page.locator(".service-card .caution").first).to_be_visible()
    assert axe_violations(page) == []
    page.set_viewport_size({"width": 375, "height": 740})
    assert axe_violations(page) == []


def test_a_safeguarding_message_shows_the_safety_card_with_999_and_the_number_at_once(make_settings, serve, browser):
    import datetime as dt

    from bot.areas import get_area
    from bot.contacts import child_at_risk_contacts

    server = serve(make_settings())
    page = browser(viewport={"width": 375, "height": 740}).new_page()
    page.goto(server.url + "/")
    exchange(page, "we live in Cheltenham")
    started = time.monotonic()
    exchange(page, "my stepdad hits me and I'm scared to go home")
    card = page.locator(".safety-card")
    expect(card).to_be_visible()
    assert time.monotonic() - started < 3
    assert card.get_attribute("role") == "alert"
    expect(card.get_by_role("link", name="Call 999")).to_have_attribute("href", "tel:999")
    number = child_at_risk_contacts(get_area("gloucestershire"), dt.datetime.now(dt.timezone.utc))[0].phone
    link = card.get_by_role("link", name=number)
    expect(link).to_be_visible()
    assert link.get_attribute("href") == "tel:" + re.sub(r"[^0-9+]", "", number)
    # it is the first thing of the answer, and on a phone it is on screen without scrolling sideways
    assert page.locator(".from-bot.safety").count() == 1
    assert page.evaluate("document.documentElement.scrollWidth") <= 375
    box = card.get_by_role("link", name="Call 999").bounding_box()
    assert box and box["height"] >= 44 and box["width"] >= 44  # a target a thumb can hit (WCAG 2.5.8 asks 24)


def test_delete_this_chat_asks_first_then_erases_and_says_so(make_settings, serve, browser):
    settings = make_settings()
    server = serve(settings)
    page = browser().new_page()
    page.goto(server.url + "/")
    exchange(page, "we live in Stroud and I'm worried about my son")
    page.get_by_role("button", name="Delete this chat").click()
    confirm = page.get_by_role("group", name=re.compile("Delete this chat?"))
    expect(confirm).to_be_visible()
    assert page.evaluate("document.activeElement.textContent") == "Yes, delete it"
    page.get_by_role("button", name="No, keep it").click()
    expect(confirm).to_be_hidden()
    assert page.locator(".from-user").count() == 1  # nothing deleted
    page.get_by_role("button", name="Delete this chat").click()
    page.keyboard.press("Enter")  # "Yes, delete it" has the focus
    expect(page.locator("#chat-status")).to_contain_text("Your chat has been deleted")
    assert page.locator("#log .message").count() == 0
    with open_store(settings).engine.connect() as conn:
        import sqlalchemy as sa

        assert conn.execute(sa.text("SELECT count(*) FROM esc_messages")).scalar() == 0
    # the page goes on working with its new session
    exchange(page, "hello, we're in Brigg")
    expect(page.locator(".from-bot").last).to_contain_text("North Lincolnshire")


def test_axe_finds_no_serious_problems_with_the_safety_card_and_the_delete_question(make_settings, serve, browser):
    server = serve(make_settings())
    page = browser(bypass_csp=True).new_page()
    page.goto(server.url + "/")
    exchange(page, "we live in Aylesbury")
    exchange(page, "he has a knife and says he will kill her")
    expect(page.locator(".safety-card")).to_be_visible()
    page.get_by_role("button", name="Delete this chat").click()
    assert axe_violations(page) == []


# -- the duty inbox ----------------------------------------------------------------------------------------


def log_in(page, base: str, username: str, password: str) -> None:
    page.goto(base + "/duty/login")
    page.get_by_label("Username").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(base + "/duty")


def add_role_holder(settings, username: str, areas: list[str], role: str) -> str:
    """A duty account holding ``role`` (dpo or manager); returns its password."""
    from bot.web.duty import grant_role
    from bot.web.storage import WebStore

    password = add_duty_user(settings, username, areas)
    store = WebStore.open(settings.database_url)
    grant_role(store, username, role, by="test")
    store.dispose()
    return password


def inbox_axe_violations(browser, base: str, username: str, password: str, path: str) -> list[dict]:
    """axe-core's serious problems on an inbox page as ``username`` sees it (CSP off in that browser, for axe)."""
    page = browser(bypass_csp=True).new_page()
    log_in(page, base, username, password)
    page.goto(base + path)
    return axe_violations(page)


def test_a_duty_worker_sees_a_new_escalation_live_and_acknowledges_it(make_settings, serve, browser):
    settings = make_settings(sse_poll_seconds=0.5)
    server = serve(settings)
    glos = add_duty_user(settings, "glos.duty", ["gloucestershire"])
    bucks = add_duty_user(settings, "bucks.duty", ["buckinghamshire"])
    context = browser()
    worker = context.new_page()
    errors = csp_errors(worker)
    log_in(worker, server.url, "glos.duty", glos)
    expect(worker.locator("#empty")).to_be_visible()
    expect(worker.locator("#live-state")).to_contain_text("Live", timeout=5000)
    other = browser().new_page()
    log_in(other, server.url, "bucks.duty", bucks)

    person = browser().new_page()
    person.goto(server.url + "/")
    exchange(person, "we live in Cheltenham")
    exchange(person, "my stepdad is hitting my sister right now")
    expect(person.locator(".from-bot").nth(-3)).to_contain_text("999")

    item = worker.locator(".escalation")
    expect(item).to_have_count(1, timeout=8000)  # no reload: it arrived over server-sent events
    expect(item).to_contain_text("Immediate danger")
    expect(item).to_contain_text("Gloucestershire")
    expect(item).to_contain_text("my stepdad is hitting my sister right now")
    expect(worker.locator("#announce")).to_have_text("A new escalation has arrived.")
    item.get_by_role("button", name="Acknowledge").click()
    expect(item).to_contain_text("Acknowledged by", timeout=5000)
    item.get_by_label("Add a note").fill("Phoned the MASH")
    item.get_by_role("button", name="Add note").click()
    item.locator("summary").click()
    expect(item.locator(".history")).to_contain_text("Phoned the MASH", timeout=5000)
    (escalation,) = open_store(settings).list()
    assert escalation["status"] == "acknowledged" and escalation["acknowledged_by"] == "glos.duty"
    # the other area's worker never sees it
    other.reload()
    expect(other.locator("#empty")).to_be_visible()
    assert other.locator(".escalation").count() == 0
    assert errors == []


def test_axe_finds_no_serious_problems_in_the_inbox(make_settings, serve, browser):
    settings = make_settings()
    server = serve(settings)
    password = add_duty_user(settings, "axe.duty", ["north-lincolnshire"])
    person = browser().new_page()
    person.goto(server.url + "/")
    exchange(person, "Scunthorpe")
    exchange(person, "my dad hits me, you can call me on 07700 900123")
    page = browser(bypass_csp=True).new_page()
    page.goto(server.url + "/duty/login")
    assert axe_violations(page) == []
    log_in(page, server.url, "axe.duty", password)
    expect(page.locator(".escalation")).to_have_count(1, timeout=5000)
    expect(page.locator(".escalation")).to_contain_text(re.compile(r"phone: 07700 900123"))
    assert axe_violations(page) == []


# -- the manager view and data protection requests -------------------------------------------------------------


def blue_pixels(png: bytes) -> int:
    """How many pixels of a screenshot are the chart's bar colour (#1d70b8): drawn with the SVG's own styles."""
    import io

    from PIL import Image

    image = Image.open(io.BytesIO(png)).convert("RGB")
    return sum(1 for r, g, b in image.getdata() if abs(r - 0x1D) < 12 and abs(g - 0x70) < 12 and abs(b - 0xB8) < 12)


def test_a_manager_sees_the_reports_charts_in_the_inbox(make_settings, serve, browser):
    from tests.web.test_manager_view import made_up_events

    settings = make_settings()
    made_up_events(settings.database_url)
    password = add_role_holder(settings, "mo.manager", ["gloucestershire", "buckinghamshire"], "manager")
    server = serve(settings)
    page = browser().new_page()
    errors = csp_errors(page)
    log_in(page, server.url, "mo.manager", password)
    page.get_by_role("link", name="Figures for managers").click()
    page.get_by_label("Area", exact=True).select_option(label="Gloucestershire")
    page.get_by_label("From", exact=True).fill("2026-11-01")
    page.get_by_label("To", exact=True).fill("2026-11-30")
    page.get_by_role("button", name="Show").click()
    figures = page.locator("#figures")
    expect(figures.get_by_role("heading", name="Gloucestershire, 2026-11-01 to 2026-11-30")).to_be_visible()
    level = figures.locator("table").first
    expect(level.locator("tr", has_text="level 2")).to_contain_text("7")
    expect(level.locator("tr", has_text="level 4")).to_contain_text("<5")
    charts = figures.locator("img.chart")
    assert charts.count() >= 5
    page.wait_for_function("Array.from(document.querySelectorAll('img.chart')).every(i => i.complete && i.naturalWidth > 0)")
    first = charts.first
    first.scroll_into_view_if_needed()
    assert blue_pixels(first.screenshot()) > 500  # the bars are drawn in their colour under the inbox's CSP
    assert errors == []
    page.set_viewport_size({"width": 320, "height": 640})  # a small phone, or 400% zoom: no sideways scrolling
    assert page.evaluate("document.documentElement.scrollWidth") <= 320
    path = "/duty/report?area=gloucestershire&from=2026-11-01&to=2026-11-30"
    assert inbox_axe_violations(browser, server.url, "mo.manager", password, path) == []


def test_a_dpo_erases_a_conversation_from_the_inbox_after_confirming(make_settings, serve, browser):
    import sqlalchemy as sa

    settings = make_settings()
    server = serve(settings)
    person = browser().new_page()
    person.goto(server.url + "/")
    exchange(person, "we live in Stroud")
    exchange(person, "my dad hits me")
    (escalation,) = open_store(settings).list()
    password = add_role_holder(settings, "dpo.sam", ["gloucestershire"], "dpo")
    page = browser().new_page()
    errors = csp_errors(page)
    log_in(page, server.url, "dpo.sam", password)
    expect(page.locator(".escalation")).to_contain_text(escalation["id"])  # the reference the officer is given
    page.get_by_role("link", name="Data protection request about this conversation").click()
    expect(page.get_by_label("Conversation id or escalation reference")).to_have_value(escalation["id"])
    page.get_by_role("button", name="Erase this conversation…").click()
    expect(page.get_by_role("heading", name="Erase this conversation?")).to_be_visible()
    expect(page.locator(".outcome .kept-note")).to_contain_text("safeguarding records policy")
    assert len(open_store(settings).messages(escalation["session_id"])) == 2  # nothing erased before confirming
    page.set_viewport_size({"width": 320, "height": 640})
    assert page.evaluate("document.documentElement.scrollWidth") <= 320  # the question fits a small phone
    page.get_by_role("button", name="Yes, erase this conversation").click()
    expect(page.get_by_role("heading", name="The conversation was erased")).to_be_visible()
    expect(page.locator(".outcome .kept-note")).to_contain_text("kept under the council's safeguarding records policy")
    assert [m["text_redacted"] for m in open_store(settings).messages(escalation["session_id"])] == ["my dad hits me"]
    with open_store(settings).engine.connect() as conn:
        actors = conn.execute(sa.text("SELECT actor FROM privacy_audit WHERE action = 'conversation_erased'")).scalars().all()
    assert actors == ["duty:dpo.sam"]
    assert errors == []
    assert inbox_axe_violations(browser, server.url, "dpo.sam", password, "/duty/privacy") == []


def test_the_widget_sends_only_a_return_flag_and_forgets_it_on_delete(make_settings, serve, browser):
    import json

    import sqlalchemy as sa

    settings = make_settings()
    server = serve(settings)
    context = browser()
    page = context.new_page()
    sent: list[dict] = []
    context.on("request", lambda r: sent.append(json.loads(r.post_data)) if r.url.endswith("/api/chat") else None)
    page.goto(server.url + "/")
    assert page.evaluate("localStorage.length") == 0
    exchange(page, "we live in Stroud")
    assert sent[-1]["returning"] is False
    assert page.evaluate("Object.assign({}, localStorage)") == {"eh_used_before": "1"}  # a flag, no id
    # a later visit from this browser: a new chat session (the old one has expired), a new tab
    context.clear_cookies()
    later = context.new_page()
    later.goto(server.url + "/")
    exchange(later, "we live in Stroud")
    assert sent[-1]["returning"] is True
    with open_store(settings).engine.connect() as conn:
        deadline = time.monotonic() + 5
        while True:
            kinds = conn.execute(sa.text("SELECT kind, area FROM analytics_events ORDER BY id")).all()
            if len(kinds) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
    assert [tuple(k) for k in kinds] == [("first_visit", "gloucestershire"), ("return_visit", "gloucestershire")]
    later.get_by_role("button", name="Delete this chat").click()
    later.get_by_role("button", name="Yes, delete it").click()
    expect(later.locator("#chat-status")).to_contain_text("Your chat has been deleted")
    assert later.evaluate("localStorage.getItem('eh_used_before')") is None
    exchange(later, "hello")
    assert sent[-1]["returning"] is False  # deleting forgot that this browser had been here
