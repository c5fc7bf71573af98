"""The person's privacy in the widget (issue 9, items 1, 3 and 4): a name, phone number and postcode typed
in a chat never reach the tracker store, the logs or the analytics tables; "Delete this chat" erases the
conversation from Rasa's tracker store and the web app's own records (a message already escalated stays,
and the answer says so), and the promise before the chat is readable by a child of 11.

The tracker store here is a SQLite file with the table Rasa's SQL tracker store creates (``events``);
the same erasure against the real Rasa is in test_browser_stack.py."""
from __future__ import annotations

import asyncio
import html.parser
import json
import logging
import re

import pytest
import readability
import sqlalchemy as sa

from bot.privacy.erase import erasures, session_hash
from tests.web.conftest import open_chat, open_store, say

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def redaction_engine_loaded():
    """Load the redaction engine before any chat, as the deployed app does at start-up (the first message must
    not spend the 3-second answer budget on loading it)."""
    from bot.privacy.redact import engine_status, load_engine

    assert load_engine(), engine_status()

RASA_EVENTS = """CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, type_name VARCHAR(255) NOT NULL,
    timestamp FLOAT, intent_name VARCHAR(255), action_name VARCHAR(255), data TEXT)"""


@pytest.fixture
def tracker(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'rasa-tracker.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql(RASA_EVENTS)
    yield engine
    engine.dispose()


def add_events(engine, sender: str, texts: list[str]) -> None:
    with engine.begin() as conn:
        for i, text in enumerate(texts):
            conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, 'user', :t, :d)"),
                         {"s": sender, "t": float(i), "d": json.dumps({"event": "user", "text": text})})


def events_of(engine, sender: str) -> int:
    with engine.connect() as conn:
        return conn.execute(sa.text("SELECT count(*) FROM events WHERE sender_id = :s"), {"s": sender}).scalar()


def every_stored_value(engine) -> str:
    """Every value in every table of a database, as one string."""
    parts = []
    with engine.connect() as conn:
        for table in sa.inspect(engine).get_table_names():
            for row in conn.execute(sa.text(f'SELECT * FROM "{table}"')):
                parts.append(f"{table}: {tuple(row)}")
    return "\n".join(parts)


SECRETS = ["Jake", "Pennington", "07700", "900123", "2AB", "2ab"]


async def test_a_name_phone_and_postcode_never_reach_the_tracker_logs_or_analytics(make_settings, client_for, rasa_recorder,
                                                                                   tracker, caplog):
    """What Rasa is sent is what its tracker store keeps: the stand-in Rasa stores each request in the tracker's
    events table as Rasa's SQL tracker store does (text and metadata), and then nothing personal is anywhere."""
    caplog.set_level(logging.DEBUG)

    def keep_like_rasa(body: dict) -> None:
        add_events(tracker, body["sender"], [body["message"]])
        if body.get("metadata"):
            add_events(tracker, body["sender"], [json.dumps(body["metadata"])])

    rasa = await rasa_recorder(on_request=keep_like_rasa)
    settings = make_settings(rasa_url=rasa.url, tracker_url=str(tracker.url))
    client = await client_for(settings)
    csrf = await open_chat(client)
    typed = ["we live in Stroud, GL5 2AB", "my son Jake Pennington won't go to school", "you can call me on 07700 900123"]
    for text in typed:
        response = await say(client, csrf, text, returning=False)
        assert response.status == 200
    forwarded = [r["message"] for r in rasa.received]
    assert forwarded == ["we live in Stroud, GL5 [postcode]", "my son [name] won't go to school", "you can call me on [phone]"]

    store = open_store(settings)
    for _ in range(40):  # the visit event is written after the answer, in a thread
        with store.engine.connect() as conn:
            if sa.inspect(store.engine).has_table("analytics_events") and \
                    conn.execute(sa.text("SELECT count(*) FROM analytics_events")).scalar():
                break
        await asyncio.sleep(0.05)
    web_tables = every_stored_value(store.engine)
    assert "analytics_events: " in web_tables and "gloucestershire" in web_tables  # the analytics path did run
    assert "[name]" in web_tables and "GL5 [postcode]" in web_tables  # the turns were recorded, redacted
    tracker_rows = every_stored_value(tracker)
    assert "[phone]" in tracker_rows
    logs = "\n".join(f"{r.name} {r.getMessage()} {r.args!r}" for r in caplog.records)
    assert logs  # the turn was logged (without the text)
    for secret in SECRETS:
        assert secret not in web_tables, secret
        assert secret not in tracker_rows, secret
        assert secret not in logs, secret
        assert secret not in json.dumps(rasa.received), secret


async def test_delete_erases_the_tracker_and_the_recorded_turns(make_settings, client_for, rasa_recorder, tracker):
    rasa = await rasa_recorder()
    settings = make_settings(rasa_url=rasa.url, tracker_url=str(tracker.url))
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Stroud")
    await say(client, csrf, "my son won't sleep")
    sender = rasa.received[0]["sender"]
    add_events(tracker, sender, ["we live in Stroud", "my son won't sleep"])
    add_events(tracker, "web-someone-else", ["hello"])
    store = open_store(settings)
    assert len(store.messages(sender)) == 2

    response = await client.post("/api/chat/delete", json={}, headers={"X-CSRF-Token": csrf})
    doc = await response.json()
    assert response.status == 200 and doc["ok"] is True
    assert doc["erased"] == {"tracker_events": 2, "messages": 2}
    assert doc["kept_for_safeguarding"] is False and "deleted" in doc["message"]
    assert events_of(tracker, sender) == 0 and events_of(tracker, "web-someone-else") == 1
    assert store.messages(sender) == []
    # the old session is over; the page's new token starts a fresh conversation with a new sender id
    assert (await say(client, csrf, "hello")).status == 403
    assert (await say(client, doc["csrf"], "hello")).status == 200
    assert rasa.received[-1]["sender"] != sender
    # audited with counts and a hash of the session, never the id or the text
    (row,) = erasures(store.engine)
    assert row["actor"] == "the person, in the chat" and row["action"] == "conversation_erased"
    assert row["session_hash"] == session_hash(sender) and sender not in json.dumps(row["detail"])
    assert row["detail"]["tracker_events"] == 2 and "Stroud" not in json.dumps(row["detail"])


async def test_an_escalated_message_is_kept_and_the_person_is_told(make_settings, client_for, tracker):
    settings = make_settings(tracker_url=str(tracker.url))
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Bath")
    await say(client, csrf, "my uncle touches me and says it's a secret")
    await say(client, csrf, "thanks")
    store = open_store(settings)
    (escalation,) = store.list()
    response = await client.post("/api/chat/delete", json={}, headers={"X-CSRF-Token": csrf})
    doc = await response.json()
    assert doc["kept_for_safeguarding"] is True and doc["erased"]["messages"] == 2
    assert "safety team" in doc["message"] and "keep" in doc["message"]
    kept = store.messages(escalation["session_id"])
    assert [m["text_redacted"] for m in kept] == ["my uncle touches me and says it's a secret"]
    assert store.get(escalation["id"])["status"] == "open"


async def test_delete_needs_the_session_and_its_token(make_settings, client_for, tracker):
    settings = make_settings(tracker_url=str(tracker.url))
    client = await client_for(settings)
    assert (await client.post("/api/chat/delete", json={})).status == 401
    csrf = await open_chat(client)
    await say(client, csrf, "hello")
    assert (await client.post("/api/chat/delete", json={})).status == 403
    assert (await client.post("/api/chat/delete", json={}, headers={"X-CSRF-Token": csrf,
                                                                   "Origin": "https://evil.example"})).status == 403
    with open_store(settings).engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM esc_messages")).scalar() == 1


# -- the promise -----------------------------------------------------------------------------------------------


class _Section(html.parser.HTMLParser):
    """The text of the element with id="privacy"."""

    def __init__(self):
        super().__init__()
        self.depth = 0
        self.parts: list[str] = []

    def handle_starttag(self, tag, attrs):
        if self.depth:
            self.depth += 1
            if tag in ("li", "p", "h2"):
                self.parts.append("\n")
        elif dict(attrs).get("id") == "privacy":
            self.depth = 1

    def handle_endtag(self, tag):
        if self.depth:
            self.depth -= 1

    def handle_data(self, data):
        if self.depth:
            self.parts.append(data)


def promise_text(page: str) -> str:
    parser = _Section()
    parser.feed(page)
    return re.sub(r"[ \t]+", " ", "".join(parser.parts)).strip()


def grades(text: str) -> dict[str, float]:
    """Reading grades from the ``readability`` library: one sentence per line, tokens split by spaces."""
    sentences = [s for s in re.split(r"(?<=[.!?:])\s+|\n+", text) if s.strip()]
    tokenised = "\n".join(" ".join(re.findall(r"[\w']+|[^\w\s]", s)) for s in sentences)
    return dict(readability.getmeasures(tokenised, lang="en")["readability grades"])


def test_the_grading_tells_hard_text_from_easy():
    hard = ("Notwithstanding the foregoing, personal information processed pursuant to statutory safeguarding "
            "obligations may be disclosed to appropriate multi-agency partners without prior consent.")
    assert grades(hard)["Kincaid"] > 12
    assert grades("We keep what you type. We delete it soon.")["Kincaid"] < 3


async def test_the_promise_says_what_is_kept_who_sees_it_and_when_we_tell(make_settings, client_for):
    client = await client_for(make_settings())
    text = promise_text(await (await client.get("/")).text())
    for needed in ("call 999", "What we keep", "How long", "Who sees it", "When we tell someone", "Delete this chat",
                   "being hurt", "not safe", "straight away", "We do not ask for your name"):
        assert needed in text, needed


async def test_the_promise_has_a_reading_age_of_11_or_under(make_settings, client_for):
    client = await client_for(make_settings())
    text = promise_text(await (await client.get("/")).text())
    measured = grades(text)
    # UK reading age is about the US school grade plus 5: a grade of 6 or under reads at 11 or under
    for formula in ("Kincaid", "ARI", "Coleman-Liau"):
        assert measured[formula] + 5 <= 11, (formula, measured[formula])
    longest = max(len(s.split()) for s in re.split(r"(?<=[.!?:])\s+", text))
    assert longest <= 20
