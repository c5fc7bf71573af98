"""The public chat API over real HTTP: sessions, CSRF, limits, errors, headers, the safeguarding gateway
and the failure rule. Rasa is either down (a closed port) or the recording stand-in from conftest."""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import time

import pytest

from bot.areas import get_area
from bot.contacts import child_at_risk_contacts
from tests.web.conftest import open_chat, open_store, say, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def no_trace(body: str) -> None:
    assert "Traceback" not in body and "File \"" not in body and "Error:" not in body.split('"error"')[0]


# -- sessions ------------------------------------------------------------------------------------------


async def test_the_page_sets_a_strict_httponly_session_cookie(make_settings, client_for):
    client = await client_for(make_settings())
    response = await client.get("/")
    cookie = response.headers["Set-Cookie"]
    assert "eh_chat=" in cookie and "HttpOnly" in cookie and "SameSite=Strict" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    assert 'name="csrf-token"' in await response.text()


async def test_the_cookie_is_secure_behind_https(make_settings, client_for):
    client = await client_for(make_settings(trust_proxy=True))
    response = await client.get("/", headers={"X-Forwarded-Proto": "https"})
    assert "Secure" in response.headers["Set-Cookie"]
    assert "max-age=" in response.headers["Strict-Transport-Security"]


async def test_no_cookie_no_chat(make_settings, client_for):
    client = await client_for(make_settings())
    response = await client.post("/api/chat", json={"message": "hello"})
    assert response.status == 401
    doc = await response.json()
    assert "Open the chat page first" in doc["error"]


async def test_a_forged_or_tampered_cookie_is_refused(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    good = client.session.cookie_jar.filter_cookies(client.make_url("/"))["eh_chat"].value
    value, mac = good.rsplit(".", 1)
    client.session.cookie_jar.update_cookies({"eh_chat": f"{value}x.{mac}"}, client.make_url("/"))
    response = await say(client, csrf, "hello")
    assert response.status == 401


async def test_chat_without_the_csrf_token_or_from_another_site_is_refused(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    response = await client.post("/api/chat", json={"message": "hello"})
    assert response.status == 403 and "security token" in (await response.json())["error"]
    response = await client.post("/api/chat", json={"message": "hello"}, headers={"X-CSRF-Token": "nope" * 10})
    assert response.status == 403
    response = await client.post("/api/chat", json={"message": "hello"},
                                 headers={"X-CSRF-Token": csrf, "Origin": "https://evil.example"})
    assert response.status == 403
    response = await say(client, csrf, "hello")
    assert response.status == 200


async def test_a_forged_sender_is_ignored(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    response = await say(client, csrf, "hello there", sender="victim-session", recipient_id="victim-session")
    assert response.status == 200
    assert texts(await response.json()) == "Hello from the test Rasa"
    (forwarded,) = rasa.received
    assert forwarded["sender"] != "victim-session" and forwarded["sender"].startswith("web-")
    store = open_store(settings)
    assert store.messages("victim-session") == []
    assert [m["text_redacted"] for m in store.messages(forwarded["sender"])] == ["hello there"]
    # the same browser keeps its sender; another browser gets another
    await say(client, csrf, "again")
    assert rasa.received[1]["sender"] == forwarded["sender"]
    other = await client_for(settings)
    await say(other, await open_chat(other), "hi")
    assert rasa.received[2]["sender"] != forwarded["sender"]


async def test_reset_starts_a_new_session_and_the_old_one_stops_working(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()
    client = await client_for(make_settings(rasa_url=rasa.url))
    csrf = await open_chat(client)
    old_cookie = client.session.cookie_jar.filter_cookies(client.make_url("/"))["eh_chat"].value
    await say(client, csrf, "hello")
    response = await client.post("/api/chat/reset", json={}, headers={"X-CSRF-Token": csrf})
    assert response.status == 200
    new_csrf = (await response.json())["csrf"]
    assert new_csrf != csrf
    await say(client, new_csrf, "hello again")
    assert rasa.received[0]["sender"] != rasa.received[1]["sender"]
    client.session.cookie_jar.update_cookies({"eh_chat": old_cookie}, client.make_url("/"))
    assert (await say(client, csrf, "still me?")).status == 401


# -- bad requests -------------------------------------------------------------------------------------


async def test_an_oversized_message_gets_413_with_a_clear_error(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    secret = "PRIVATE-" + "x" * 2000
    response = await say(client, csrf, secret)
    assert response.status == 413
    body = await response.text()
    assert "too long" in body and "2000" in body and "PRIVATE" not in body
    no_trace(body)
    huge = await client.post("/api/chat", data=b'{"message": "' + b"y" * 400_000 + b'"}',
                             headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert huge.status == 413
    assert "yyyy" not in await huge.text()
    assert (await say(client, csrf, "z" * 2000)).status == 200


@pytest.mark.parametrize("body, status", [
    (b'{"message": "unterminated', 400),
    (b"[1, 2, 3]", 400),
    (b'"just a string"', 400),
    (b"\xff\xfe\x00garbage", 400),
    (b'{"message": 42}', 400),
    (b'{"message": "   "}', 400),
    (b'{"nothing": "here"}', 400),
    (b'{"message": "hi", "message_id": "../../etc"}', 400),
])
async def test_malformed_bodies_get_400_json_without_a_stack_trace(make_settings, client_for, body, status):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    response = await client.post("/api/chat", data=body, headers={"X-CSRF-Token": csrf, "Content-Type": "application/json"})
    assert response.status == status
    assert response.content_type == "application/json"
    text = await response.text()
    assert "error" in (await response.json())
    no_trace(text)
    assert "unterminated" not in text and "garbage" not in text


async def test_a_body_that_is_not_json_gets_415(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    response = await client.post("/api/chat", data="message=hi", headers={"X-CSRF-Token": csrf,
                                                                       "Content-Type": "application/x-www-form-urlencoded"})
    assert response.status == 415 and "JSON" in (await response.json())["error"]


async def test_unknown_routes_and_methods_answer_json_on_the_api(make_settings, client_for):
    client = await client_for(make_settings())
    assert (await client.get("/api/nothing")).status == 404
    response = await client.get("/api/chat")
    assert response.status == 405 and "error" in await response.json()


async def test_rate_limit_per_session(make_settings, client_for):
    from bot.web.settings import Rate

    client = await client_for(make_settings(rate_session=Rate(3, 60)))
    csrf = await open_chat(client)
    statuses = [(await say(client, csrf, f"message {i}")).status for i in range(4)]
    assert statuses == [200, 200, 200, 429]
    response = await say(client, csrf, "one more")
    assert response.status == 429 and int(response.headers["Retry-After"]) >= 1
    assert "wait" in (await response.json())["error"]
    # another session (a new cookie) is not affected
    client.session.cookie_jar.clear()
    fresh = await open_chat(client)
    assert (await say(client, fresh, "hello")).status == 200


async def test_rate_limit_per_address_across_sessions(make_settings, client_for):
    from bot.web.settings import Rate

    client = await client_for(make_settings(rate_address=Rate(5, 60)))
    statuses = []
    for i in range(3):
        client.session.cookie_jar.clear()
        csrf = await open_chat(client)
        statuses += [(await say(client, csrf, f"hi {i}-{j}")).status for j in range(2)]
    assert statuses == [200] * 5 + [429]


async def test_start_again_and_delete_count_towards_the_address_limit(make_settings, client_for):
    from bot.web.settings import Rate

    client = await client_for(make_settings(rate_address=Rate(4, 60)))
    csrf = await open_chat(client)
    statuses = []
    for path in ("/api/chat/reset", "/api/chat/delete", "/api/chat/reset", "/api/chat/delete", "/api/chat/reset"):
        response = await client.post(path, json={}, headers={"X-CSRF-Token": csrf})
        statuses.append(response.status)
        if response.status == 200:
            csrf = (await response.json())["csrf"]
    assert statuses == [200, 200, 200, 200, 429]
    assert (await say(client, csrf, "hello")).status == 429


# -- headers ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/healthz", "/static/chat.js", "/static/app.css", "/duty/login", "/nowhere", "/widget.js"])
async def test_security_headers_everywhere(make_settings, client_for, path):
    client = await client_for(make_settings())
    response = await client.get(path)
    csp = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "style-src 'self'" in csp
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"


async def test_pages_have_no_inline_script_or_style(make_settings, client_for):
    client = await client_for(make_settings())
    for path in ("/", "/duty/login"):
        html = await (await client.get(path)).text()
        assert "<script>" not in html and "<style" not in html and " style=" not in html
        assert " on" + "click=" not in html.lower()


async def test_the_embeddable_script_can_be_loaded_by_a_council_page(make_settings, client_for):
    client = await client_for(make_settings())
    response = await client.get("/widget.js")
    assert response.status == 200 and "javascript" in response.headers["Content-Type"]
    assert response.headers["Cross-Origin-Resource-Policy"] == "cross-origin"
    assert "innerHTML" not in await response.text()


# -- the safeguarding gateway ------------------------------------------------------------------------------


def gloucestershire_number_now() -> str:
    return child_at_risk_contacts(get_area("gloucestershire"), dt.datetime.now(dt.timezone.utc))[0].phone


async def test_danger_gets_999_the_area_number_and_a_stored_escalation_in_the_same_cycle(make_settings, client_for):
    settings = make_settings()  # Rasa down: the gateway's own answer
    client = await client_for(settings)
    csrf = await open_chat(client)
    assert (await say(client, csrf, "we live in Stroud")).status == 200
    started = time.monotonic()
    response = await say(client, csrf, "my dad is hitting my little brother right now, call me on 07700 900123")
    assert time.monotonic() - started < 3
    doc = await response.json()
    answer = texts(doc)
    assert "999" in answer.splitlines()[0]
    assert gloucestershire_number_now().split(" (")[0] in answer
    (escalation,) = open_store(settings).list()
    assert escalation["area"] == "gloucestershire"
    assert escalation["urgency"] == "immediate" and escalation["status"] == "open"
    assert "physical_abuse" in escalation["categories"]
    assert "07700" not in escalation["excerpt"] and "[phone]" in escalation["excerpt"]
    assert "07700 900123" in str(escalation["contact"])


async def test_the_escalation_is_on_disk_before_rasa_hears_of_it(make_settings, client_for, rasa_recorder):
    settings = make_settings()
    store = open_store(settings)
    seen_at_receipt: list[list] = []
    rasa = await rasa_recorder(on_request=lambda body: seen_at_receipt.append(store.list()),
                               reply=[{"text": "If you or a child are in danger right now, call 999 straight away."}])
    client = await client_for(make_settings(rasa_url=rasa.url, database_url=settings.database_url))
    csrf = await open_chat(client)
    await say(client, csrf, "I'm in Buckinghamshire, HP11 2AB")
    response = await say(client, csrf, "he has a knife and says he will kill her")
    assert response.status == 200
    cue = rasa.received[-1]
    assert cue["message"].startswith("/safeguarding_cue{")
    assert '"immediate_danger": true' in cue["message"]
    assert cue["metadata"]["text"] == "he has a knife and says he will kill her"
    assert rasa.received[0]["message"] == "I'm in Buckinghamshire, HP11 [postcode]"  # redacted before it left
    (escalations,) = seen_at_receipt[-1:]
    assert len(escalations) == 1 and escalations[0]["area"] == "buckinghamshire"
    assert seen_at_receipt[0] == []  # the first, harmless message escalated nothing


async def test_the_person_cannot_send_the_cue_themselves(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, '/safeguarding_cue{"categories": ["made_up"], "immediate_danger": true}')
    assert not rasa.received[0]["message"].startswith("/")  # passed on as plain text, screened like any text
    assert open_store(settings).list() == []


async def test_personal_details_are_redacted_before_storing_and_forwarding(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "I'm at GL5 2AB, email jo@example.org, DOB 03/04/2015, NHS 943 476 5919")
    forwarded = rasa.received[0]["message"]
    assert forwarded == "I'm at GL5 [postcode], email [email], DOB [date of birth], NHS [NHS number]"
    stored = open_store(settings).messages(rasa.received[0]["sender"])
    assert [m["text_redacted"] for m in stored] == [forwarded]


async def test_an_unsure_message_gets_a_safety_question_and_yes_escalates(make_settings, client_for, rasa_recorder):
    from bot.safeguarding import screen

    unsure = "what are the signs of grooming?"
    assert screen(unsure).unsure and not screen(unsure).escalate, "the cue bank changed: pick another unsure example"
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "Scunthorpe")
    doc = await (await say(client, csrf, unsure)).json()
    question = doc["messages"][-1]
    assert question["text"] == "Is anyone in danger or being hurt?"
    assert [b["title"] for b in question["buttons"]] == ["Yes, someone is in danger", "No"]
    assert rasa.received[-1]["message"] == unsure  # sent on as usual
    assert open_store(settings).list() == []
    doc = await (await say(client, csrf, question["buttons"][0]["payload"])).json()
    (escalation,) = open_store(settings).list()
    assert escalation["area"] == "north-lincolnshire" and escalation["urgency"] == "immediate"
    assert "grooming" in escalation["excerpt"]
    assert rasa.received[-1]["message"].startswith("/safeguarding_cue")
    assert "999" in texts(doc)


async def test_no_to_the_safety_question_carries_on_without_escalating(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "what are the signs of grooming?")
    doc = await (await say(client, csrf, "no")).json()
    assert "carry on" in texts(doc)
    assert open_store(settings).list() == []
    assert len(rasa.received) == 1


async def test_a_contact_given_after_an_escalation_reaches_the_duty_team(make_settings, client_for):
    settings = make_settings()
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "my stepdad hits me")
    await say(client, csrf, "you can email me at safe.friend@example.org")
    store = open_store(settings)
    (escalation,) = store.list()
    found = str(store.get(escalation["id"])["contact"]) + str(store.audit(escalation["id"]))
    assert "safe.friend@example.org" in found
    assert all("safe.friend" not in m["text_redacted"] for m in store.messages(escalation["session_id"]))


async def test_a_number_alone_after_an_escalation_is_thanked_and_not_sent_on_to_rasa(make_settings, client_for,
                                                                                      rasa_recorder):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "my stepdad hits me")
    forwarded = len(rasa.received)
    doc = await (await say(client, csrf, "call me on 07700 900123 please")).json()
    assert "passed your contact details to the duty team" in texts(doc) and "999" in texts(doc)
    assert [b["payload"] for b in doc["messages"][0]["buttons"]] == ["/carry_on", "/start_again"]
    assert len(rasa.received) == forwarded  # nothing in it for the questions: not forwarded
    (escalation,) = open_store(settings).list()
    assert "07700 900123" in str(open_store(settings).get(escalation["id"])["contact"])
    # a number with more to say goes on to Rasa as well, thanked first
    doc = await (await say(client, csrf, "she is 6, my number is 07700 900124")).json()
    assert "passed your contact details" in doc["messages"][0]["text"] and len(rasa.received) == forwarded + 1


# -- the failure rule ------------------------------------------------------------------------------------------


async def test_rasa_down_still_answers_within_3_seconds_with_the_area_number(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    started = time.monotonic()
    doc = await (await say(client, csrf, "hello, we're in Brigg")).json()
    assert time.monotonic() - started < 3
    answer = texts(doc)
    assert "North Lincolnshire" in answer and "01724" in answer and "999" in answer


async def test_rasa_slow_still_answers_within_3_seconds(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder(delay=10)
    client = await client_for(make_settings(rasa_url=rasa.url))
    csrf = await open_chat(client)
    started = time.monotonic()
    response = await say(client, csrf, "I'm worried about my son, we live in Bath")
    elapsed = time.monotonic() - started
    assert response.status == 200 and elapsed < 3, elapsed
    answer = texts(await response.json())
    assert "Bath and North East Somerset" in answer and "999" in answer


async def test_rasa_slow_and_danger_gives_999_first(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder(delay=10)
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    started = time.monotonic()
    doc = await (await say(client, csrf, "he's hitting her right now and she's only 4")).json()
    assert time.monotonic() - started < 3
    assert "999" in doc["messages"][0]["text"]
    assert len(open_store(settings).list()) == 1


# -- health ---------------------------------------------------------------------------------------------------


async def test_healthz_and_readyz_when_rasa_is_down(make_settings, client_for):
    client = await client_for(make_settings())
    assert (await (await client.get("/healthz")).json())["ok"] is True
    response = await client.get("/readyz")
    assert response.status == 503
    doc = await response.json()
    assert doc["ready"] is False
    assert doc["checks"]["rasa"]["ok"] is False and doc["checks"]["stores"]["ok"] is True
    assert doc["checks"]["action_server"]["ok"] is False


async def test_readyz_is_ready_when_everything_answers(make_settings, client_for, rasa_recorder):
    rasa = await rasa_recorder()  # answers both / and /health, standing in for Rasa and the action server
    client = await client_for(make_settings(rasa_url=rasa.url, action_url=rasa.url))
    deadline = time.monotonic() + 120  # the safeguarding screen loads in the background at start
    while True:
        response = await client.get("/readyz")
        doc = await response.json()
        if doc["ready"] or time.monotonic() > deadline:
            break
        assert set(doc["checks"]) == {"rasa", "action_server", "stores", "safeguarding_screen", "redaction"}
        assert set(name for name, check in doc["checks"].items() if not check["ok"]) <= {"safeguarding_screen", "redaction"}
        assert response.status == 503
        await asyncio.sleep(0.2)
    assert response.status == 200 and doc["ready"] is True and doc["checks"]["safeguarding_screen"]["ok"] is True
    assert doc["checks"]["redaction"] == {"ok": True, "degraded": False, "detail": "names found by the entity model"}


async def test_message_text_is_never_logged_at_info(make_settings, client_for, caplog):
    import logging

    caplog.set_level(logging.INFO)
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    await say(client, csrf, "my secret worry about Zebedee hitting me")
    await asyncio.sleep(0)
    assert caplog.records, "the gateway logs each turn"
    assert all("Zebedee" not in r.getMessage() for r in caplog.records)


async def test_yes_to_the_guided_harm_question_escalates_and_still_reaches_the_triage(make_settings, client_for, rasa_recorder):
    """The button "Yes" to "Has anyone hurt the child...?" is a disclosure: the duty team hears of it, the widget
    shows the safety card, and Rasa gets the answer itself so the triage gives the safeguarding level."""
    from bot.replies import followup_question
    from bot.triage import load_bank

    harm = load_bank().questions["harm"].render("parent")
    yes = next(b["payload"] for b in followup_question(harm)["buttons"] if b["title"] == "Yes")
    no = next(b["payload"] for b in followup_question(harm)["buttons"] if b["title"] == "No")
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "Scunthorpe")
    await say(client, csrf, no)
    assert open_store(settings).list() == [] and rasa.received[-1]["message"] == no
    doc = await (await say(client, csrf, yes)).json()
    (escalation,) = open_store(settings).list()
    assert escalation["area"] == "north-lincolnshire"
    assert "hurt" in escalation["excerpt"]
    assert rasa.received[-1]["message"] == yes  # the triage still records the answer
    assert doc["messages"][0]["custom"]["type"] == "safety" and "999" in json.dumps(doc["messages"][0])


async def test_the_widgets_buttons_are_never_taken_for_a_cue_but_words_after_a_slash_are(make_settings, client_for,
                                                                                         rasa_recorder):
    """Screening "/identify_young_person" read "young person" as online grooming: every young person who
    pressed the button was escalated. Button payloads are not the person's words."""
    import yaml

    from bot.paths import REPO_ROOT

    domain = yaml.safe_load((REPO_ROOT / "domain.yml").read_text())
    payloads = {b["payload"] for variants in domain["responses"].values() for v in variants
                for b in v.get("buttons") or [] if "{" not in b["payload"]}
    payloads |= {"/identify_young_person", "/identify_parent", "/identify_professional", "/carry_on", "/start_again"}
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    for payload in sorted(payloads):
        assert (await say(client, csrf, payload)).status == 200
    assert open_store(settings).list() == []
    await say(client, csrf, "/my stepdad hits me")
    assert len(open_store(settings).list()) == 1
