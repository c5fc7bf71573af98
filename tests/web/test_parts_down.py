"""When a part is down or slow (issue 9, item 7): the person still gets a useful answer within 3 seconds
(the area's number, and 999 where there is danger), and the failure shows on /readyz and in the logs.

Rasa down or slow is in test_chat_api.py; here: the action server down, the safeguarding card, and the
stores down or slow on a real PostgreSQL that the test stops (down) or locks (slow) mid-conversation.
The whole stack with the real action server stopped is in test_browser_stack.py."""
from __future__ import annotations

import datetime as dt
import logging
import time

import pytest
import sqlalchemy as sa

from bot.areas import get_area
from bot.contacts import child_at_risk_contacts, talk_to_person_contacts
from tests.web.conftest import closed_port, open_chat, open_store, say, texts

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


def number_now(area: str) -> str:
    return child_at_risk_contacts(get_area(area), dt.datetime.now(dt.timezone.utc))[0].phone.split(" (")[0]


def talk_number(area: str) -> str:
    return talk_to_person_contacts(get_area(area), dt.datetime.now(dt.timezone.utc))[0].phone.split(" (")[0]


async def test_a_safeguarding_message_starts_with_the_safety_card(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Scunthorpe")
    doc = await (await say(client, csrf, "my mum's boyfriend hits me every night")).json()
    card = doc["messages"][0]
    assert card["custom"]["type"] == "safety" and card["custom"]["emergency"] == "999"
    assert "999" in card["text"]
    assert card["custom"]["area_known"] is True
    (contact,) = card["custom"]["contacts"]
    assert contact["area"] == "north-lincolnshire" and contact["phone"].split(" (")[0] == number_now("north-lincolnshire")


async def test_without_an_area_the_safety_card_lists_every_area(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    doc = await (await say(client, csrf, "he is hitting me right now")).json()
    card = doc["messages"][0]["custom"]
    assert card["type"] == "safety" and card["immediate_danger"] is True and card["area_known"] is False
    assert {c["area"] for c in card["contacts"]} == {"buckinghamshire", "bath-and-north-east-somerset",
                                                     "gloucestershire", "north-lincolnshire"}


async def test_an_ordinary_message_has_no_safety_card(make_settings, client_for):
    client = await client_for(make_settings())
    csrf = await open_chat(client)
    doc = await (await say(client, csrf, "we need help with my son's sleep")).json()
    assert all((m["custom"] or {}).get("type") != "safety" for m in doc["messages"])


async def test_action_server_down_adds_the_area_number_and_shows_on_readyz(make_settings, client_for, rasa_recorder, caplog):
    caplog.set_level(logging.WARNING, logger="bot.web.gateway")
    rasa = await rasa_recorder(reply=[{"text": "Let me look that up."}])
    client = await client_for(make_settings(rasa_url=rasa.url, action_url=f"http://127.0.0.1:{closed_port()}"))
    csrf = await open_chat(client)
    started = time.monotonic()
    doc = await (await say(client, csrf, "what help is there for toddlers in Stroud?")).json()
    assert time.monotonic() - started < 3
    answer = texts(doc)
    assert "Let me look that up." in answer and "not working" in answer
    assert talk_number("gloucestershire") in answer and "999" in answer
    assert doc["degraded"] is True
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["checks"]["action_server"]["ok"] is False
    assert body["recent"]["action_server"]["failing_now"] is True
    assert body["recent"]["action_server"]["failures_last_5_minutes"] >= 1
    assert any("action_server failed" in r.getMessage() for r in caplog.records)


async def test_rasa_answering_nothing_gets_the_fallback_and_shows_on_readyz(make_settings, client_for, rasa_recorder):
    """Rasa answers an empty list when a custom action failed (a proxy in front of the action servers once
    refused large trackers this way): the person gets the area's number, and /readyz counts it."""
    rasa = await rasa_recorder(reply=[])
    client = await client_for(make_settings(rasa_url=rasa.url))
    csrf = await open_chat(client)
    doc = await (await say(client, csrf, "we live in Stroud and need help with sleep")).json()
    assert doc["degraded"] is True and talk_number("gloucestershire") in texts(doc)
    body = await (await client.get("/readyz")).json()
    assert body["recent"]["rasa"]["failing_now"] is True and body["recent"]["rasa"]["failures_last_5_minutes"] >= 1
    assert "no messages" in body["recent"]["rasa"]["last_failure"]["detail"]


async def test_the_store_down_still_answers_with_999_and_the_number(make_settings, client_for, postgres, caplog):
    caplog.set_level(logging.WARNING)
    settings = make_settings(database_url=postgres.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    assert (await say(client, csrf, "hello")).status == 200
    postgres.stop()
    started = time.monotonic()
    response = await say(client, csrf, "we're in Gloucester and my dad is hitting my sister right now")
    elapsed = time.monotonic() - started
    assert response.status == 200 and elapsed < 3, elapsed
    doc = await response.json()
    assert doc["degraded"] is True
    assert doc["messages"][0]["custom"]["type"] == "safety"
    answer = texts(doc)
    assert "999" in answer and number_now("gloucestershire") in answer
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and body["checks"]["stores"]["ok"] is False
    assert body["recent"]["stores"]["failing_now"] is True
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert "SAFEGUARDING CUE NOT RECORDED" in logged and "hitting" not in logged
    # a new visitor (no cookie yet) still gets the page and an answer
    client.session.cookie_jar.clear()
    fresh_csrf = await open_chat(client)
    doc = await (await say(client, fresh_csrf, "who can I talk to in Bath?")).json()
    assert "You can talk to a person in Bath and North East Somerset" in texts(doc) and "999" in texts(doc)
    postgres.start()


async def test_a_slow_store_does_not_hold_the_answer_up(make_settings, client_for, postgres, rasa_recorder):
    rasa = await rasa_recorder(reply=[{"text": "Which area do you live in?"}])
    settings = make_settings(database_url=postgres.url, rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    assert (await say(client, csrf, "hello")).status == 200
    store = open_store(settings)
    blocker = store.engine.connect()
    transaction = blocker.begin()
    try:
        # another transaction holds every table the chat writes: reads and writes wait for it
        blocker.exec_driver_sql("LOCK TABLE web_chat_sessions, esc_messages IN ACCESS EXCLUSIVE MODE")
        started = time.monotonic()
        response = await say(client, csrf, "we live in High Wycombe")
        elapsed = time.monotonic() - started
        assert response.status == 200 and elapsed < 3, elapsed
        answer = texts(await response.json())
        assert talk_number("buckinghamshire") in answer and "999" in answer
        body = await (await client.get("/readyz")).json()
        assert body["recent"]["stores"]["failures_last_5_minutes"] >= 1
        assert "over" in body["recent"]["stores"]["last_failure"]["detail"] or "slow" in body["recent"]["stores"]["last_failure"]["detail"]
    finally:
        transaction.rollback()
        blocker.close()
        store.dispose()
    # once the lock is gone the chat carries on normally, with Rasa
    response = await say(client, csrf, "hello again")
    assert response.status == 200 and texts(await response.json()) == "Which area do you live in?"


async def test_erasing_with_the_tracker_store_down_still_erases_the_rest(make_settings, client_for, tmp_path):
    settings = make_settings(tracker_url=f"postgresql+psycopg://nobody@127.0.0.1:{closed_port()}/none")
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we're in Stroud")
    response = await client.post("/api/chat/delete", json={}, headers={"X-CSRF-Token": csrf})
    doc = await response.json()
    assert response.status == 200 and doc["erased"]["messages"] == 1
    assert "could not be deleted just now" in doc["message"]
    with open_store(settings).engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM esc_messages")).scalar() == 0
