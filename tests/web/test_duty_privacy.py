"""A data protection officer's requests in the duty inbox (export, erase with a confirmation step), over real
HTTP with the real web app, real accounts and real SQLite; and the CLI's export, erase and purge on a real
PostgreSQL cluster."""
from __future__ import annotations

import datetime as dt
import html
import http.cookiejar
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from bot.errors import BadInput
from bot.escalation.store import EscalationStore
from bot.privacy.erase import Erasure, erasures, privacy_audit, session_hash
from bot.web.duty import grant_role, revoke_role, roles_of
from bot.web.storage import WebStore
from tests.web.conftest import add_duty_user, open_chat, open_store, say
from tests.web.test_duty_http import escalate, inbox_csrf, login

EARLYHELP = Path(sys.executable).parent / "earlyhelp"
FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def rasa_like_tracker(url: str, rows: list[tuple[str, str, dict]]) -> None:
    """Rows in a table shaped like Rasa 3.6's SQLTrackerStore ``events`` (rasa/core/tracker_store.py SQLEvent)."""
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE IF NOT EXISTS events (id SERIAL PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
                             "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
                             "action_name VARCHAR(255), data TEXT)" if engine.dialect.name == "postgresql" else
                             "CREATE TABLE IF NOT EXISTS events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
                             "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
                             "action_name VARCHAR(255), data TEXT)")
        for i, (sender, kind, data) in enumerate(rows):
            conn.execute(sa.text("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (:s, :k, :t, :d)"),
                         {"s": sender, "k": kind, "t": 1_700_000_000 + i, "d": json.dumps({"event": kind, **data})})
    engine.dispose()


def tracker_senders(url: str) -> list[str]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        found = [r[0] for r in conn.exec_driver_sql("SELECT sender_id FROM events ORDER BY id")]
    engine.dispose()
    return found


def session_ids(settings) -> set[str]:
    from bot.escalation.schema import messages

    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        found = set(conn.execute(sa.select(messages.c.session_id)).scalars())
    engine.dispose()
    return found


def chat_sessions(settings, sender: str) -> int:
    from bot.web.storage import chat_sessions as table

    engine = sa.create_engine(settings.database_url)
    with engine.connect() as conn:
        found = conn.execute(sa.select(sa.func.count()).select_from(table).where(table.c.sender_id == sender)).scalar_one()
    engine.dispose()
    return found


def web_store(settings) -> WebStore:
    return WebStore.open(settings.database_url)


async def two_conversations(settings, client_for) -> tuple[dict, str]:
    """A Gloucestershire conversation that raised an escalation, and another one that did not (its session id)."""
    esc = await escalate(settings, client_for, "my dad hits me", "we live in Stroud")
    before = session_ids(settings)
    other = await client_for(settings)
    csrf = await open_chat(other)
    assert (await say(other, csrf, "hello, we are in Cheltenham")).status == 200
    (other_session,) = session_ids(settings) - before
    rasa_like_tracker(settings.tracker_url, [
        (esc["session_id"], "user", {"text": "we live in Stroud"}),
        (esc["session_id"], "slot", {"name": "area", "value": "gloucestershire"}),
        (esc["session_id"], "bot", {"text": "How old is the child?"}),
        (other_session, "user", {"text": "hello, we are in Cheltenham"}),
    ])
    return esc, other_session


@dataclass
class Request:
    """Two conversations (``two_conversations``) and a data protection officer of one area, logged in."""

    settings: object
    esc: dict
    other: str
    client: object
    csrf: str
    username: str


@pytest.fixture
def dpo_request(make_settings, client_for, tmp_path):
    async def make(username: str, area: str = "gloucestershire") -> Request:
        settings = make_settings(tracker_url=f"sqlite:///{tmp_path / 'tracker.db'}")
        esc, other = await two_conversations(settings, client_for)
        password = add_duty_user(settings, username, [area])
        grant_role(web_store(settings), username, "dpo", by="test")
        client = await client_for(settings)
        await login(client, username, password)
        csrf = FORM_CSRF.search(await (await client.get("/duty/privacy")).text()).group(1)
        return Request(settings, esc, other, client, csrf, username)

    return make


async def test_privacy_pages_need_a_login_and_the_dpo_role(make_settings, client_for, tmp_path):
    settings = make_settings(tracker_url=f"sqlite:///{tmp_path / 'tracker.db'}")
    esc, _other = await two_conversations(settings, client_for)
    client = await client_for(settings)
    response = await client.get("/duty/privacy", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/duty/login"
    password = add_duty_user(settings, "jo.duty", ["gloucestershire"])
    await login(client, "jo.duty", password)
    csrf = await inbox_csrf(client)
    page = await (await client.get("/duty")).text()
    assert 'href="/duty/privacy" class="hidden"' in page  # no link for a worker without the role
    response = await client.get("/duty/privacy")
    assert response.status == 403 and "dpo" in await response.text()
    for action in ("erase", "export"):
        response = await client.post(f"/duty/privacy/{action}", data={"csrf": csrf, "ref": esc["id"], "confirm": "yes"})
        assert response.status == 403
    assert len(open_store(settings).messages(esc["session_id"])) == 2  # nothing erased
    assert tracker_senders(settings.tracker_url).count(esc["session_id"]) == 3
    refused = [r for r in web_store(settings).access_log("jo.duty") if r["action"] == "role_refused"]
    assert len(refused) == 3 and refused[0]["detail"]["role"] == "dpo"
    # once granted, the page opens; once revoked, it is refused again
    grant_role(web_store(settings), "jo.duty", "dpo", by="test")
    assert (await client.get("/duty/privacy")).status == 200
    assert 'href="/duty/privacy" class=""' in await (await client.get("/duty")).text()
    assert revoke_role(web_store(settings), "jo.duty", "dpo", by="test")
    assert (await client.get("/duty/privacy")).status == 403


def test_roles_are_named_and_only_for_existing_accounts(make_settings):
    settings = make_settings()
    add_duty_user(settings, "kim", ["gloucestershire"])
    store = web_store(settings)
    for username, role in (("kim", "admin"), ("nobody", "dpo")):
        try:
            grant_role(store, username, role, by="test")
        except BadInput as err:
            assert role in str(err) or username in str(err)
        else:
            raise AssertionError(f"granted {role} to {username}")
    grant_role(store, "kim", "manager", by="test")
    grant_role(store, "kim", "manager", by="test")  # twice is once
    assert roles_of(store, "kim") == {"manager"}
    assert [r["action"] for r in store.access_log("kim")][-2:] == ["role_granted", "role_granted"]


async def test_erase_shows_what_goes_asks_to_confirm_then_erases_like_the_cli(dpo_request):
    asked = await dpo_request("dpo.sam")
    settings, esc, other, client, csrf = asked.settings, asked.esc, asked.other, asked.client, asked.csrf
    page = await (await client.get(f"/duty/privacy?ref={esc['id']}")).text()  # the link on the escalation's card
    assert "safeguarding records policy" in page and f'value="{esc["id"]}"' in page
    page = await (await client.get("/duty/privacy", params={"ref": '"><script>x</script>'})).text()
    assert "<script>x" not in page and 'name="ref" type="text" required maxlength="200" autocomplete="off" spellcheck="false" value=""' in page

    # a forged form does nothing
    response = await client.post("/duty/privacy/erase", data={"csrf": "forged", "ref": esc["id"], "confirm": "yes"})
    assert response.status == 403
    # the first step, by the escalation's reference: what would go and what is kept; nothing erased yet
    response = await client.post("/duty/privacy/erase", data={"csrf": csrf, "ref": esc["id"]})
    page = await response.text()
    assert response.status == 200 and "Erase this conversation?" in page and 'name="confirm"' not in page
    assert "<td>messages the web app recorded</td><td>1</td>" in page
    assert "<td>entries in the assistant&#x27;s conversation store (Rasa)</td><td>3</td>" in page
    assert "1 escalation(s) already sent to the duty team" in page and "safeguarding records policy" in page
    assert "value='yes'" in page and esc["session_id"] in page
    assert len(open_store(settings).messages(esc["session_id"])) == 2
    assert tracker_senders(settings.tracker_url).count(esc["session_id"]) == 3
    assert chat_sessions(settings, esc["session_id"]) == 1

    # confirmed: erased with the CLI's function, the escalation and its message kept, others untouched
    response = await client.post("/duty/privacy/erase", data={"csrf": csrf, "ref": esc["session_id"], "confirm": "yes"})
    page = await response.text()
    assert response.status == 200 and "The conversation was erased" in page
    assert "kept under the council&#x27;s safeguarding records policy" in page
    assert [m["text_redacted"] for m in open_store(settings).messages(esc["session_id"])] == ["my dad hits me"]
    assert open_store(settings).get(esc["id"])["status"] == "open"
    assert tracker_senders(settings.tracker_url) == [other]
    assert chat_sessions(settings, esc["session_id"]) == 0  # the chat, if still open, is ended
    assert len(open_store(settings).messages(other)) == 1 and chat_sessions(settings, other) == 1

    # audited exactly as the CLI audits: the same table, action and detail, the officer named; no session id
    engine = sa.create_engine(settings.database_url)
    (row,) = [r for r in erasures(engine) if r["action"] == "conversation_erased"]
    assert row["actor"] == "duty:dpo.sam" and row["session_hash"] == session_hash(esc["session_id"])
    assert set(row["detail"]) == set(Erasure().to_dict())
    assert row["detail"]["messages"] == 1 and row["detail"]["tracker_events"] == 3 and row["detail"]["kept_messages"] == 1
    log = web_store(settings).access_log("dpo.sam")
    assert [r["action"] for r in log if r["action"].startswith("privacy_erase")] == ["privacy_erase_asked", "privacy_erased"]
    assert esc["session_id"] not in json.dumps(log)

    # asked again: nothing left to erase but the kept escalation, so the officer is told what stays
    response = await client.post("/duty/privacy/erase", data={"csrf": csrf, "ref": esc["id"]})
    assert "<td>messages the web app recorded</td><td>0</td>" in await response.text()


async def test_export_gives_a_file_of_what_is_stored_and_is_audited(dpo_request):
    asked = await dpo_request("dpo.ash")
    settings, esc, client, csrf = asked.settings, asked.esc, asked.client, asked.csrf
    response = await client.post("/duty/privacy/export", data={"csrf": csrf, "ref": esc["id"]})
    assert response.status == 200 and response.headers["Content-Type"].startswith("application/json")
    assert response.headers["Content-Disposition"].startswith('attachment; filename="conversation-')
    doc = json.loads(await response.text())
    assert doc["session"] == esc["session_id"]
    assert [t["text_redacted"] for t in doc["recorded_turns"]] == ["we live in Stroud", "my dad hits me"]
    assert [e["id"] for e in doc["escalations"]] == [esc["id"]]
    assert [e["event"] for e in doc["assistant_tracker"]] == ["user", "slot", "bot"]
    assert "Cheltenham" not in json.dumps(doc)  # nobody else's conversation
    engine = sa.create_engine(settings.database_url)
    (row,) = [r for r in erasures(engine) if r["action"] == "conversation_exported"]
    assert row["actor"] == "duty:dpo.ash" and row["detail"] == {"recorded_turns": 2, "escalations": 1, "tracker_events": 3}
    assert len(open_store(settings).messages(esc["session_id"])) == 2  # exporting erases nothing


@pytest.mark.parametrize("action, ref, confirm, status, says", [
    ("erase", "ESCALATION", "yes", 404, "No conversation with that reference in your areas."),  # another area's
    ("export", "ESCALATION", None, 404, "No conversation with that reference in your areas."),
    ("erase", "web-0123456789abcdef", "yes", 404, "Nothing is stored under that reference"),
    ("erase", "<script>alert(1)</script>", None, 400, "Give a conversation id (it starts web-)"),
])
async def test_other_areas_unknown_and_malformed_references_are_refused(dpo_request, action, ref, confirm, status, says):
    asked = await dpo_request("dpo.bucks", "buckinghamshire")
    ref = asked.esc["id"] if ref == "ESCALATION" else ref
    fields = {"csrf": asked.csrf, "ref": ref, **({"confirm": confirm} if confirm else {})}
    response = await asked.client.post(f"/duty/privacy/{action}", data=fields)
    page = await response.text()
    assert response.status == status and f'<p class="error" role="alert">{says}' in page
    assert "<script>alert" not in page and f'value="{html.escape(ref, quote=True)}"' in page  # put back, escaped
    assert len(open_store(asked.settings).messages(asked.esc["session_id"])) == 2
    engine = sa.create_engine(asked.settings.database_url)
    assert [r for r in erasures(engine) if r["action"].startswith("conversation_")] == []
    engine.dispose()


# -- the CLI on PostgreSQL --------------------------------------------------------------------------------------


def cli(env: dict, *args: str) -> tuple[int, dict]:
    done = subprocess.run([str(EARLYHELP), "privacy", *args, "--json"], capture_output=True, text=True, timeout=120,
                          env=env)
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_export_erase_and_purge_on_postgresql(postgres, tmp_path, monkeypatch, capsys):
    """DATABASE_URL=postgresql://... puts the project's tables and Rasa's tracker in one PostgreSQL database
    (bot.privacy.erase.tracker_url): the CLI exports, erases and purges there as on SQLite."""
    from bot.privacy.retention import load_policy

    url = postgres.url
    env = {**os.environ, "EARLYHELP_HOME": str(tmp_path), "DATABASE_URL": url.replace("+psycopg", "")}
    env.pop("EARLYHELP_TRACKER_URL", None)
    old = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store = EscalationStore.open(url, channels=["inbox"], clock=lambda: old)
    store.record_turn("web-old", "we are in Stroud", area="gloucestershire", categories=[], immediate_danger=False,
                      escalate=False)
    store.record_turn("web-old", "he hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.dispose()
    store = EscalationStore.open(url, channels=["inbox"])  # today
    store.record_turn("web-abc", "we live in GL5 [postcode]", area="gloucestershire", categories=[],
                      immediate_danger=False, escalate=False)
    store.record_turn("web-abc", "her dad hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.dispose()
    rasa_like_tracker(url, [("web-abc", "user", {"text": "we live in GL5 [postcode]"}),
                            ("web-abc", "slot", {"name": "area", "value": "gloucestershire"}),
                            ("web-old", "user", {"text": "we are in Stroud"})])

    code, exported = cli(env, "export", "--session", "web-abc", "--actor", "dpo")
    assert code == 0 and exported["tracker_error"] is None
    assert [t["text_redacted"] for t in exported["recorded_turns"]] == ["we live in GL5 [postcode]", "her dad hits her"]
    assert [e["event"] for e in exported["assistant_tracker"]] == ["user", "slot"]
    code, erased = cli(env, "erase", "--session", "web-abc", "--actor", "dpo")
    assert code == 0 and erased["kept_for_safeguarding"] and "safeguarding" in erased["note"]
    assert (erased["tracker_events"], erased["messages"], erased["kept_messages"]) == (2, 1, 1)
    assert tracker_senders(url) == ["web-old"]

    # the retention purge: web-old is past Gloucestershire's period (its tracker timestamp is from 2023)
    assert load_policy().conversation_days("gloucestershire") < (dt.datetime.now(dt.timezone.utc) - old).days
    code, due = cli(env, "purge", "--dry-run")
    assert code == 0 and due["conversations"] == 1 and due["messages"] == 0
    code, done = cli(env, "purge")
    assert code == 0 and done["conversations"] == 1 and done["messages"] == 1 and done["kept_messages"] == 1
    assert done["tracker_events"] == 1 and tracker_senders(url) == []
    store = EscalationStore.open(url, channels=["inbox"])
    assert [m["text_redacted"] for m in store.messages("web-old")] == ["he hits her"]  # kept with its escalation
    assert [m["text_redacted"] for m in store.messages("web-abc")] == ["her dad hits her"]
    store.dispose()
    code, audit = cli(env, "audit")
    assert [a["action"] for a in audit["audit"]] == ["conversation_exported", "conversation_erased", "retention_purge"]
    assert "web-abc" not in json.dumps(audit) and "hits" not in json.dumps(audit)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(sa.select(sa.func.count()).select_from(privacy_audit)).scalar_one() == 3
    engine.dispose()

    # roles for the inbox are granted on the same database by the CLI (its main(), in this process), and audited
    from bot.cli import main

    monkeypatch.setenv("DATABASE_URL", env["DATABASE_URL"])
    store = WebStore.open(url)
    store.add_user("dpo.pat", "correct horse battery", ["gloucestershire"])
    store.dispose()
    capsys.readouterr()
    assert main(["privacy", "roles", "grant", "--username", "dpo.pat", "--role", "dpo", "--actor", "it", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["granted"] is True
    assert main(["privacy", "roles", "grant", "--username", "nobody", "--role", "dpo", "--json"]) == 2
    assert "nobody" in json.loads(capsys.readouterr().out)["error"]
    assert main(["privacy", "roles", "list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(r["username"], r["role"], r["granted_by"]) for r in listed["roles"]] == [("dpo.pat", "dpo", "it")]
    store = WebStore.open(url)
    assert roles_of(store, "dpo.pat") == {"dpo"}
    assert "role_granted" in [r["action"] for r in store.access_log("dpo.pat")]
    store.dispose()


# -- hostile input to the new inbox pages (hypothesis, real app on a loopback port) --------------------------------

HOSTILE = st.sampled_from(['<script>alert(1)</script>', '"><img src=x onerror=alert(1)>', "' OR 1=1 --",
                           "../../etc/passwd", "\x00", "%00", "{{csrf}}", "\u202e", "A" * 300, "web-" + "0" * 32,
                           "2026-02-30", "9999-12-31", "-1"]) | st.text(max_size=60)


class Officer:
    """A logged-in duty account with both roles, driving the real app with urllib."""

    def __init__(self, base: str, username: str, password: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.get("/duty/login")[1]
        token = FORM_CSRF.search(page).group(1)
        self.post("/duty/login", {"csrf": token, "username": username, "password": password})
        self.csrf = FORM_CSRF.search(self.get("/duty/privacy")[1]).group(1)
        self._ordinary: dict[str, str] = {}

    def ordinary(self, path: str) -> str:
        """The page ``path`` gives for plain values (a GET, or a form posted with an unknown reference)."""
        if path not in self._ordinary:
            if path.startswith("/duty/privacy/"):
                self._ordinary[path] = self.post(path, {"csrf": self.csrf, "ref": "no-such-reference"})[1]
            else:
                self._ordinary[path] = self.get(path)[1]
        return self._ordinary[path]

    def _open(self, request) -> tuple[int, str]:
        try:
            with self.opener.open(request, timeout=20) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as err:
            return err.code, err.read().decode()

    def get(self, path: str) -> tuple[int, str]:
        return self._open(urllib.request.Request(self.base + path))

    def post(self, path: str, fields: dict) -> tuple[int, str]:
        body = urllib.parse.urlencode(fields).encode()
        return self._open(urllib.request.Request(self.base + path, data=body, method="POST",
                                                 headers={"Content-Type": "application/x-www-form-urlencoded"}))


@pytest.fixture(scope="module")
def officer(tmp_path_factory):
    from tests.web.conftest import ServerThread, fuzz_settings

    settings = fuzz_settings(tmp_path_factory.mktemp("duty-fuzz"))
    server = ServerThread(settings).start()
    password = add_duty_user(settings, "fuzz.dpo", ["gloucestershire"])
    store = WebStore.open(settings.database_url)
    grant_role(store, "fuzz.dpo", "dpo", by="test")
    grant_role(store, "fuzz.dpo", "manager", by="test")
    store.dispose()
    yield Officer(server.url, "fuzz.dpo", password)
    server.stop()


def _no_raw(text: str, page: str, ordinary: str) -> bool:
    """``text`` with markup in it is not in ``page`` as it was sent. A short value ("<", "<a", "&") is in
    any HTML page anyway, so a value found in ``ordinary`` (the same page for a plain request) proves
    nothing and passes; anything longer than the page's own markup must have been escaped."""
    return not any(c in text for c in "<>\"'&") or text not in page or text in ordinary


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ref=HOSTILE, confirm=st.sampled_from([None, "yes", "no", "<b>"]), action=st.sampled_from(["erase", "export"]))
def test_privacy_forms_refuse_hostile_references_clearly(officer, ref, confirm, action):
    fields = {"csrf": officer.csrf, "ref": ref, **({"confirm": confirm} if confirm is not None else {})}
    status, page = officer.post(f"/duty/privacy/{action}", fields)
    assert status in (400, 404), (status, page[:300])  # nothing is stored in this database: never erased, never a 500
    assert "Traceback" not in page and _no_raw(ref, page, officer.ordinary(f"/duty/privacy/{action}"))


@hypothesis_settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(area=HOSTILE | st.just("gloucestershire"), start=HOSTILE | st.just("2026-11-01"), end=HOSTILE | st.just("2026-11-30"))
def test_the_manager_view_refuses_hostile_queries_clearly(officer, area, start, end):
    status, page = officer.get("/duty/report?" + urllib.parse.urlencode({"area": area, "from": start, "to": end}))
    assert status in (200, 400), (status, page[:300])
    ordinary = officer.ordinary("/duty/report")
    assert "Traceback" not in page and all(_no_raw(v, page, ordinary) for v in (area, start, end))
    if status == 400:
        assert 'class="error" role="alert"' in page
