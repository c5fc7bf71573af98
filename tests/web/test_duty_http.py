"""The duty inbox and the case-system API over real HTTP, with real accounts and a real store."""
from __future__ import annotations

import asyncio
import json
import re
import secrets

import pytest

from tests.web.conftest import add_duty_user, open_chat, open_store, say

FORM_CSRF = re.compile(r'name="csrf" value="([^"]+)"')
META_CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


async def login(client, username: str, password: str):
    page = await (await client.get("/duty/login")).text()
    token = FORM_CSRF.search(page).group(1)
    return await client.post("/duty/login", data={"csrf": token, "username": username, "password": password},
                             allow_redirects=False)


async def inbox_csrf(client) -> str:
    response = await client.get("/duty")
    assert response.status == 200
    return META_CSRF.search(await response.text()).group(1)


async def escalate(settings, client_for, text: str, where: str | None = None) -> dict:
    """A person in a chat says something that escalates; returns the escalation."""
    person = await client_for(settings)
    csrf = await open_chat(person)
    if where:
        await say(person, csrf, where)
    before = {e["id"] for e in open_store(settings).list()}
    assert (await say(person, csrf, text)).status == 200
    (new,) = [e for e in open_store(settings).list() if e["id"] not in before]
    return new


async def test_the_inbox_needs_a_login(make_settings, client_for):
    client = await client_for(make_settings())
    response = await client.get("/duty", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/duty/login"
    for path in ("/duty/escalations", "/duty/events"):  # the inbox's script is told in JSON, and goes to log in
        response = await client.get(path)
        assert response.status == 401 and await response.json() == {"error": "Please log in again."}
    response = await client.post("/duty/escalations/x/ack", headers={"Accept": "application/json"})
    assert response.status == 401 and (await response.json())["error"] == "Please log in again."
    response = await client.post("/duty/escalations/x/ack", allow_redirects=False)
    assert response.status == 303 and response.headers["Location"] == "/duty/login"


async def test_login_form_csrf_is_required(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "jo", ["gloucestershire"])
    client = await client_for(settings)
    await client.get("/duty/login")
    response = await client.post("/duty/login", data={"csrf": "forged", "username": "jo", "password": password},
                                 allow_redirects=False)
    assert response.status == 403
    assert "eh_duty" not in response.cookies


async def test_login_sets_a_strict_cookie_for_the_inbox_only(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "jo", ["gloucestershire"])
    client = await client_for(settings)
    response = await login(client, "jo", password)
    assert response.status == 303 and response.headers["Location"] == "/duty"
    cookie = [v for v in response.headers.getall("Set-Cookie") if v.startswith("eh_duty=")][0]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Path=/duty" in cookie
    assert (await client.get("/duty")).status == 200


async def test_five_failures_lock_the_account_for_15_minutes(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "sam", ["buckinghamshire"])
    client = await client_for(settings)
    for _ in range(5):
        assert (await login(client, "sam", "wrong password!")).status == 401
    response = await login(client, "sam", password)
    assert response.status == 429
    assert "locked" in await response.text()
    other = await client_for(settings)  # a different browser fares no better
    assert (await login(other, "sam", password)).status == 429
    from bot.web.storage import WebStore

    log = [r["action"] for r in WebStore.open(settings.database_url).access_log("sam")]
    assert log.count("login_failed") == 5 and "locked_out" in log


async def test_a_login_expires_when_idle(make_settings, client_for):
    settings = make_settings(duty_session_minutes=1 / 60)  # one second
    password = add_duty_user(settings, "kim", ["gloucestershire"])
    client = await client_for(settings)
    await login(client, "kim", password)
    assert (await client.get("/duty", allow_redirects=False)).status == 200
    await asyncio.sleep(1.3)
    assert (await client.get("/duty", allow_redirects=False)).status == 303


async def test_workers_see_their_areas_and_unknown_areas_only(make_settings, client_for):
    settings = make_settings()
    glos = await escalate(settings, client_for, "my dad hits me", "we live in Stroud")
    bucks = await escalate(settings, client_for, "my dad hits me", "we live in Aylesbury")
    unknown = await escalate(settings, client_for, "my dad hits me")
    assert (glos["area"], bucks["area"], unknown["area"]) == ("gloucestershire", "buckinghamshire", None)
    password = add_duty_user(settings, "glos.duty", ["gloucestershire"])
    client = await client_for(settings)
    await login(client, "glos.duty", password)
    doc = await (await client.get("/duty/escalations")).json()
    assert {e["id"] for e in doc["escalations"]} == {glos["id"], unknown["id"]}
    shown = {e["id"]: e for e in doc["escalations"]}
    assert shown[glos["id"]]["area_name"] == "Gloucestershire"
    assert shown[glos["id"]]["history"][0]["action"] == "created"
    csrf = await inbox_csrf(client)
    response = await client.post(f"/duty/escalations/{bucks['id']}/ack", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 404
    assert open_store(settings).get(bucks["id"])["status"] == "open"


async def test_acknowledge_note_and_close_with_csrf_and_audit(make_settings, client_for):
    settings = make_settings()
    esc = await escalate(settings, client_for, "he has a knife and says he will kill her", "Cheltenham")
    password = add_duty_user(settings, "ali", ["gloucestershire"])
    client = await client_for(settings)
    await login(client, "ali", password)
    csrf = await inbox_csrf(client)
    assert [e["id"] for e in (await (await client.get("/duty/escalations")).json())["escalations"]] == [esc["id"]]
    # no token, a wrong token: refused, nothing changes
    assert (await client.post(f"/duty/escalations/{esc['id']}/ack", data={}, allow_redirects=False)).status == 403
    assert (await client.post(f"/duty/escalations/{esc['id']}/ack", data={"csrf": csrf[:-2] + "xx"},
                              allow_redirects=False)).status == 403
    store = open_store(settings)
    assert store.get(esc["id"])["status"] == "open"
    response = await client.post(f"/duty/escalations/{esc['id']}/ack", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    assert store.get(esc["id"])["status"] == "acknowledged" and store.get(esc["id"])["acknowledged_by"] == "ali"
    response = await client.post(f"/duty/escalations/{esc['id']}/note", data={"csrf": csrf, "note": "Called MASH, <b>ok</b>"},
                                 headers={"Accept": "application/json"})
    assert (await response.json())["ok"] is True
    response = await client.post(f"/duty/escalations/{esc['id']}/close", data={"csrf": csrf}, allow_redirects=False)
    assert response.status == 303
    history = [(r["action"], r["actor"]) for r in store.audit(esc["id"])]
    assert ("acknowledged", "ali") in history and ("note", "ali") in history and ("closed", "ali") in history
    assert store.audit(esc["id"])[-2]["detail"]["text"] == "Called MASH, <b>ok</b>"
    # a closed escalation leaves the inbox; every view and action is in the access log
    doc = await (await client.get("/duty/escalations")).json()
    assert doc["escalations"] == []
    from bot.web.storage import WebStore

    actions = [r["action"] for r in WebStore.open(settings.database_url).access_log("ali", esc["id"])]
    assert actions[0] == "viewed" and {"ack", "note", "close"} <= set(actions)


async def test_logout_needs_csrf_and_ends_the_login(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "lee", ["north-lincolnshire"])
    client = await client_for(settings)
    await login(client, "lee", password)
    csrf = await inbox_csrf(client)
    assert (await client.post("/duty/logout", data={"csrf": "no"}, allow_redirects=False)).status == 403
    assert (await client.post("/duty/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    assert (await client.get("/duty", allow_redirects=False)).status == 303


async def test_server_sent_events_announce_a_new_escalation(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "eve", ["gloucestershire"])
    worker = await client_for(settings)
    await login(worker, "eve", password)
    person = await client_for(settings)  # another app instance: seen through the store poll
    csrf = await open_chat(person)
    events = await worker.get("/duty/events")
    assert events.headers["Content-Type"].startswith("text/event-stream")

    async def next_event() -> str:
        lines = []
        while True:
            line = (await events.content.readline()).decode()
            if line == "\n" and lines:
                return "".join(lines)
            if line.startswith("event:") or line.startswith("data:"):
                lines.append(line)

    first = await asyncio.wait_for(next_event(), 5)
    assert "event: changed" in first
    await say(person, csrf, "my dad hits me")
    second = await asyncio.wait_for(next_event(), 10)
    assert "event: changed" in second
    assert json.loads(second.split("data:", 1)[1])["version"] > json.loads(first.split("data:", 1)[1])["version"]
    doc = await (await worker.get("/duty/escalations")).json()
    assert len(doc["escalations"]) == 1
    events.close()


# -- the case-system API ---------------------------------------------------------------------------------------


async def test_the_case_system_api_is_off_without_a_token(make_settings, client_for):
    client = await client_for(make_settings())
    response = await client.get("/api/escalations")
    assert response.status == 503 and "EARLYHELP_DUTY_TOKEN" in (await response.json())["error"]


async def test_the_case_system_api_with_a_bearer_token(make_settings, client_for):
    token = secrets.token_urlsafe(32)
    settings = make_settings(duty_token=token)
    esc = await escalate(settings, client_for, "my dad hits me", "Scunthorpe")
    client = await client_for(settings)
    assert (await client.get("/api/escalations")).status == 401
    response = await client.get("/api/escalations", headers={"Authorization": "Bearer " + token[:-1] + "x"})
    assert response.status == 401 and response.headers["WWW-Authenticate"].startswith("Bearer")
    auth = {"Authorization": f"Bearer {token}"}
    doc = await (await client.get("/api/escalations?status=open", headers=auth)).json()
    assert [e["id"] for e in doc["escalations"]] == [esc["id"]]
    assert (await client.get("/api/escalations?status=weird", headers=auth)).status == 400
    response = await client.post(f"/api/escalations/{esc['id']}/ack", json={"by": "Liquidlogic"}, headers=auth)
    assert response.status == 200
    assert (await response.json())["escalation"]["acknowledged_by"] == "api: Liquidlogic"
    assert (await client.post("/api/escalations/nope/ack", headers=auth)).status == 404
    doc = await (await client.get("/api/escalations?status=open", headers=auth)).json()
    assert doc["escalations"] == []


# -- the pages' shared chrome (bot.web.pages parts) ---------------------------------------------------------------


async def test_every_inbox_page_has_the_one_top_bar_and_marks_itself_in_the_menu(make_settings, client_for):
    from bot.web.duty import grant_role
    from bot.web.storage import WebStore

    settings = make_settings()
    password = add_duty_user(settings, "mo.both", ["gloucestershire"])
    store = WebStore.open(settings.database_url)
    for role in ("dpo", "manager"):
        grant_role(store, "mo.both", role, by="test")
    client = await client_for(settings)
    await login(client, "mo.both", password)
    csrf = await inbox_csrf(client)
    for path, current in [("/duty", "/duty"), ("/duty/privacy", "/duty/privacy"), ("/duty/report", "/duty/report"),
                          ("/duty/report?area=nowhere", "/duty/report")]:  # the last a 400 page: the same chrome
        page = await (await client.get(path)).text()
        assert page.count('<header class="topbar">') == 1 and page.count('<nav class="duty-nav"') == 1, path
        assert page.count('<link rel="stylesheet" href="/static/app.css">') == 1 and "{{" not in page
        assert "Logged in as <strong>mo.both</strong>" in page
        assert f'<form method="post" action="/duty/logout">\n    <input type="hidden" name="csrf" value="{csrf}">' in page
        links = re.findall(r'<a href="(/duty[^"]*)"(?: class="([^"]*)")? aria-current="(page|false)">', page)
        assert [(href, cls) for href, cls, _ in links] == [("/duty", ""), ("/duty/privacy", ""), ("/duty/report", "")]
        assert [href for href, _, mark in links if mark == "page"] == [current], path


async def test_a_page_refused_for_a_role_has_the_top_bar_and_hides_the_roles_pages(make_settings, client_for):
    settings = make_settings()
    password = add_duty_user(settings, "pat", ["gloucestershire"])
    client = await client_for(settings)
    await login(client, "pat", password)
    response = await client.get("/duty/report")
    page = await response.text()
    assert response.status == 403 and response.content_type == "text/html"
    assert "does not have the manager role (see the commissioners&#x27; figures" in page
    assert "Logged in as <strong>pat</strong>" in page
    assert '<a href="/duty/privacy" class="hidden"' in page and '<a href="/duty/report" class="hidden"' in page
    assert 'aria-current="page"' not in page


def test_template_parts_are_joined_once_and_values_never_read_as_parts(tmp_path, monkeypatch):
    from bot.web import pages

    (tmp_path / "_top.html").write_text("<header>{{who}}</header>\n{{> _inner.html}}\n")
    (tmp_path / "_inner.html").write_text("<nav>{{where}}</nav>\n")
    (tmp_path / "one.html").write_text("{{> _top.html}}\n<main>{{body}}</main>\n")
    (tmp_path / "loop.html").write_text("{{> loop.html}}\n")
    (tmp_path / "odd.html").write_text("{{> ../one.html}} {{>_inner.html}}")
    monkeypatch.setattr(pages, "TEMPLATES", tmp_path)
    pages._template.cache_clear()
    try:
        hostile = "{{> _inner.html}} {{who}} <script>"
        assert pages.render("one.html", who="<b>", where="x", body=hostile) == (
            "<header>&lt;b&gt;</header>\n<nav>x</nav>\n<main>{{&gt; _inner.html}} {{who}} &lt;script&gt;</main>\n")
        assert pages.render("one.html", who="a", where=pages.Markup("<i>made</i>"), body="") == (
            "<header>a</header>\n<nav><i>made</i></nav>\n<main></main>\n")
        with pytest.raises(KeyError, match="where"):
            pages.render("one.html", who="a", body="")  # a part's field is required like the page's own
        with pytest.raises(ValueError, match="deeper"):
            pages.render("loop.html")
        assert pages.render("odd.html", where="w") == "{{> ../one.html}} <nav>w</nav>\n"  # only a name in templates/
    finally:
        pages._template.cache_clear()
