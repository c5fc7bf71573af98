"""The assistant scaled out: two Rasa instances, two action servers and two web apps behind nginx, on
PostgreSQL (trackers, escalations, directory, sessions) and Redis (Rasa's lock store).

Whole conversations go through nginx's Rasa pool, as tests/e2e talks to Rasa (the heavy turns, triage
and directory search, can take seconds on a busy 2-core machine, past the web app's 2.9 s answer
deadline); the web app's own path (page, cookie, CSRF, screening, escalation recorded in PostgreSQL)
goes through nginx's public port. The tests run in file order on one stack: the last one kills instances.
"""
from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import sqlalchemy as sa

from bot.escalation.store import EscalationStore
from tests.scale.support import RasaChat, WebChat, instance_of, pool_log, rasa_say, wait_log

WEBHOOK = "/webhooks/rest/webhook"

pytestmark = pytest.mark.e2e

PARENT_IN_STROUD = ("/identify_parent", "we live in Stroud", "she's 2",
                    "my toddler isn't talking yet and I'm worried she's behind")


def check(chat, condition: bool, what: str) -> None:
    assert condition, f"{what}\n--- transcript ---\n{chat.transcript()}"


def served_by(scaled, rows: list[dict]) -> list[str]:
    """Which instance answered each request (the last one tried, when nginx retried on another)."""
    return [instance_of(scaled, r["upstreams"][-1]) for r in rows]


def logged(scaled, pool: str, uri: str) -> int:
    """How many rows the pool's log has for ``uri`` once the count has settled: nginx writes a request's line
    just after sending its response, so the previous test's last line may still be on its way (counted
    before it was written, it made a later slice one row too long)."""
    count, since = -1, time.monotonic()
    while True:
        now = len([r for r in pool_log(scaled, pool) if r["uri"] == uri])
        if now != count:
            count, since = now, time.monotonic()
        elif time.monotonic() - since >= 0.3:
            return count
        time.sleep(0.05)


def escalations(scaled) -> list[dict]:
    store = EscalationStore.open(scaled.database_url, channels=["inbox"])
    try:
        return store.list()
    finally:
        store.dispose()


def recorded_turns(scaled, session_id: str) -> list[dict]:
    store = EscalationStore.open(scaled.database_url, channels=["inbox"])
    try:
        return store.messages(session_id)
    finally:
        store.dispose()


def test_parent_conversation_through_nginx_uses_both_rasa_and_action_servers(scaled):
    chat = RasaChat(scaled.rasa_url)
    before = logged(scaled, "rasa", WEBHOOK)
    started = time.time()
    replies = chat.say("hi")
    check(chat, "999" in chat.text(replies) and "who are you" in chat.text(replies).lower(), "greets, 999, asks who")
    chat.say("/identify_parent")
    replies = chat.say("we live in Stroud")
    check(chat, "old" in chat.text(replies).lower(), "asks the child's age after the town")
    chat.say("she's 2")
    replies = chat.say("my toddler isn't talking yet and I'm worried she's behind")
    summary = chat.text(replies)
    check(chat, "Stroud, Gloucestershire" in summary and "2 years old" in summary, "reads back town, area and age")
    replies = chat.say("/affirm")
    answer = chat.text(replies)
    check(chat, "Gloucestershire" in answer and "level" in answer.lower(), "names the level in the area")
    cards = chat.customs(replies, "service_cards")
    check(chat, cards and cards[0]["services"], "shows service cards from the directory on PostgreSQL")
    areas = {json.dumps(s.get("area")) for s in cards[0]["services"]}
    check(chat, all("gloucestershire" in a or "national" in a for a in areas), f"only local or national services: {areas}")
    check(chat, "01452" in answer, "gives a Gloucestershire number to talk to a person")
    rasa = wait_log(scaled, "rasa", WEBHOOK, before + len(chat.log))[before:]
    assert len(rasa) == len(chat.log) and set(served_by(scaled, rasa)) == {"rasa-1", "rasa-2"}
    actions = [r for r in pool_log(scaled, "actions") if r["uri"] == "/webhook" and r["at"] >= started]
    assert set(served_by(scaled, actions)) == {"action-server-1", "action-server-2"}


def test_professional_gets_the_pathway_through_nginx(scaled):
    chat = RasaChat(scaled.rasa_url)
    replies = chat.say("I'm a teacher, where do I refer a family for early help?")
    check(chat, "council area" in chat.text(replies).lower(), "knows it's a professional; asks the area")
    chat.say("Scunthorpe")
    chat.say("9")
    chat.say("pupil's attendance has dropped to 80%, mum says she is struggling with his behaviour and money")
    replies = chat.say("yes")
    pathways = [c["pathway"] for c in chat.customs(replies, "pathway")]
    check(chat, pathways and pathways[0]["area"] == "north-lincolnshire", "gives North Lincolnshire's pathway")
    check(chat, "01724" in chat.text(replies), "with the area's number")


def test_the_widget_path_through_nginx_records_an_escalation_in_postgresql(scaled):
    chat = WebChat(scaled.public_url).open()
    before = len(escalations(scaled))
    turns_before = logged(scaled, "public", "/api/chat")
    replies = chat.say("hello")
    check(chat, "999" in chat.text(replies), "the greeting offers 999")
    chat.say("/identify_parent")
    chat.say("we live in Stroud")
    replies = chat.say("her dad is hitting her right now")
    text = chat.text(replies)
    check(chat, "999" in text and text.index("999") < text.index("Gloucestershire"), "999 first, then the area's number")
    turns = wait_log(scaled, "public", "/api/chat", turns_before + len(chat.log))[turns_before:]
    assert set(served_by(scaled, turns)) == {"web-1", "web-2"}, "both web apps took turns"
    after = escalations(scaled)
    assert len(after) == before + 1, "one escalation, recorded in PostgreSQL"
    new = [e for e in after if e["area"] == "gloucestershire" and e["urgency"] == "immediate"]
    assert new, after
    assert len(recorded_turns(scaled, new[-1]["session_id"])) == len(chat.log), "every turn of the session recorded"


def user_texts(scaled, sender: str) -> list[str]:
    """The user turns of one conversation as Rasa stored them in PostgreSQL, in stored order."""
    engine = sa.create_engine(scaled.database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT data FROM events WHERE sender_id = :s AND type_name = 'user' ORDER BY id"),
                                {"s": sender}).scalars().all()
    finally:
        engine.dispose()
    return [json.loads(row)["text"] for row in rows]


def test_two_turns_sent_at_once_are_processed_in_order(scaled):
    """Two turns of one conversation reach the two Rasa instances at (nearly) the same moment; the Redis
    lock store makes the second wait for the first, so it is answered as the conversation's next step.
    Without a shared lock both would start from the same tracker: the second would be answered as if the
    first had never been said, and the stored events would interleave. (Checked by hand on 2026-11-28:
    with the lock store left out of endpoints.yml this test fails, the second turn being answered "Sorry,
    I couldn't tell which area that is".)"""
    alive = [n for n in ("rasa-1", "rasa-2") if scaled.process(n).poll() is None]
    assert len(alive) == 2, "needs both Rasa instances (this test must run before the crash test)"
    overlapped = False
    for _attempt in range(3):
        sender = f"lock-{uuid.uuid4().hex}"
        before = logged(scaled, "rasa", WEBHOOK)
        rasa_say(scaled.rasa_url, sender, "/identify_parent")  # the form now asks for the area
        before = len(wait_log(scaled, "rasa", WEBHOOK, before + 1))
        done: dict[str, tuple[float, list[dict]]] = {}

        def send(key: str, message: str) -> None:
            replies = rasa_say(scaled.rasa_url, sender, message)
            done[key] = (time.monotonic(), replies)

        first = threading.Thread(target=send, args=("first", "we live in Stroud"))
        second = threading.Thread(target=send, args=("second", "she's 2"))
        first.start()
        time.sleep(0.03)  # in flight together, yet the first surely took its ticket first
        sent_second = time.monotonic()
        second.start()
        first.join(60)
        second.join(60)
        assert set(done) == {"first", "second"}, "both turns were answered"
        pair = wait_log(scaled, "rasa", WEBHOOK, before + 2)[before:]
        assert len(pair) == 2 and len(set(served_by(scaled, pair))) == 2, f"the two went to different instances: {pair}"
        first_text = "\n".join(r.get("text") or "" for r in done["first"][1]).lower()
        second_text = "\n".join(r.get("text") or "" for r in done["second"][1]).lower()
        assert "how old" in first_text, f"the town is taken and the age asked: {first_text!r}"
        assert "in your own words" in second_text, f"the age is taken as the answer to the age question: {second_text!r}"
        assert user_texts(scaled, sender) == ["/identify_parent", "we live in Stroud", "she's 2"], "stored in order"
        assert done["second"][0] >= done["first"][0], "the second turn finished after the first"
        if done["first"][0] > sent_second:  # the first was still being processed when the second was sent
            overlapped = True
            break
    assert overlapped, "the two turns never overlapped in three attempts: the test could not tell"


def test_killing_one_rasa_and_one_action_server_mid_conversation(scaled):
    chat = RasaChat(scaled.rasa_url)
    before = logged(scaled, "rasa", WEBHOOK)
    for message in PARENT_IN_STROUD[:2]:
        chat.say(message)
    # kill the instances that served the latest turn, so the next turns must be taken by the others
    last_rasa = served_by(scaled, wait_log(scaled, "rasa", WEBHOOK, before + 2))[-1]
    last_action = (served_by(scaled, [r for r in pool_log(scaled, "actions") if r["uri"] == "/webhook"]) or ["action-server-1"])[-1]
    rasa_before = len(wait_log(scaled, "rasa", WEBHOOK, before + 2))
    scaled.kill(last_rasa)
    scaled.kill(last_action)
    killed_at = time.time()

    replies = chat.say(PARENT_IN_STROUD[2])
    check(chat, "in your own words" in chat.text(replies).lower(), "takes the age and asks the next question")
    replies = chat.say(PARENT_IN_STROUD[3])
    summary = chat.text(replies)
    check(chat, "Stroud, Gloucestershire" in summary and "2 years old" in summary,
          "the slots set before the crash are intact: town, area and age read back")
    replies = chat.say("/affirm")
    check(chat, "Gloucestershire" in chat.text(replies) and chat.customs(replies, "service_cards"),
          "the answer and its services, from the surviving action server")

    # the widget's path after the crash: the escalation is recorded, the person told 999 first
    escalations_before = len(escalations(scaled))
    web = WebChat(scaled.public_url).open()
    web.say("/identify_parent")
    web.say("Cheltenham")
    replies = web.say("her dad is hitting her right now")
    text = web.text(replies)
    check(web, "999" in text and text.index("999") < text.index("Gloucestershire"), "999 first, then the area's number")
    assert len(escalations(scaled)) == escalations_before + 1, "the escalation after the crash is recorded in PostgreSQL"

    rasa_after = wait_log(scaled, "rasa", WEBHOOK, rasa_before + 6)[rasa_before:]
    # 499: the web app stopped waiting at its 2.9 s deadline and answered itself (a busy machine); never a 5xx
    assert len(rasa_after) == 6 and all(r["status"] in (200, 499) for r in rasa_after), rasa_after
    assert set(served_by(scaled, rasa_after)) == {"rasa-1", "rasa-2"} - {last_rasa}
    actions_after = [r for r in pool_log(scaled, "actions") if r["at"] >= killed_at and r["uri"] == "/webhook"]
    assert actions_after and all(r["status"] == 200 for r in actions_after), actions_after
    assert set(served_by(scaled, actions_after)) == {"action-server-1", "action-server-2"} - {last_action}
