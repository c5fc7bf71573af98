"""The duty inbox: log in, see open escalations for your areas live, acknowledge, add a note, close.

* Accounts are made with ``earlyhelp users add``; passwords are argon2id hashes.
* A login lasts while used (``EARLYHELP_DUTY_SESSION_MINUTES`` idle, 8 hours at most); the cookie is
  signed, HttpOnly, SameSite=Strict and limited to ``/duty``.
* Every form carries a CSRF token bound to the login (the login form one bound to a pre-login cookie).
* Five failed logins for an account lock it for 15 minutes.
* A worker sees escalations of their own areas and those whose area is unknown; anything else answers 404.
* Every view and every action is written to the access log (``web_duty_access``); actions also go to the
  escalation's own audit log through the store.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import secrets

from aiohttp import web

from bot.web.keys import BROADCASTER, ESCALATIONS, LOGIN_LIMIT, SETTINGS, WEB_STORE
from bot.web.pages import page
from bot.web.security import DUTY_COOKIE, client_address, same_secret, set_cookie, sign, unsign
from bot.web.storage import DutyLogin, LockedOut, token_hash

log = logging.getLogger("bot.web.duty")
routes = web.RouteTableDef()
LOGIN_NONCE_COOKIE = "eh_login"
_seen: dict[str, set[tuple[str, str]]] = {}  # per login: escalations (and status) whose view was logged


def _limits(app: web.Application) -> tuple[dt.timedelta, dt.timedelta]:
    settings = app[SETTINGS]
    return dt.timedelta(minutes=settings.duty_session_minutes), dt.timedelta(hours=settings.duty_session_max_hours)


async def current_login(request: web.Request) -> tuple[str, DutyLogin] | None:
    token = unsign(request.app[SETTINGS].secret_key, "duty", request.cookies.get(DUTY_COOKIE))
    if token is None:
        return None
    idle, absolute = _limits(request.app)
    login = await asyncio.to_thread(request.app[WEB_STORE].duty_session, token, idle, absolute)
    return (token, login) if login else None


def _login_csrf(request: web.Request, nonce: str) -> str:
    return sign(request.app[SETTINGS].secret_key, "login-csrf", nonce).rsplit(".", 1)[1]


def _area_names() -> dict[str, str]:
    from bot.areas import load_areas

    return {a.id: a.name for a in load_areas().values()}


def visible(login: DutyLogin, escalation: dict | None) -> bool:
    return escalation is not None and (escalation["area"] is None or escalation["area"] in login.user.areas)


def _login_page(request: web.Request, message: str = "", status: int = 200, username: str = "") -> web.Response:
    nonce = secrets.token_urlsafe(24)
    response = page("login.html", status=status, csrf=_login_csrf(request, nonce), message=message,
                    message_class="error" if message else "hidden", username=username)
    set_cookie(request, response, LOGIN_NONCE_COOKIE, nonce, path="/duty")
    return response


@routes.get("/duty/login")
async def login_form(request: web.Request) -> web.Response:
    if await current_login(request):
        raise web.HTTPSeeOther("/duty")
    return _login_page(request)


@routes.post("/duty/login")
async def login(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    if request.app[LOGIN_LIMIT].hit(client_address(request)):
        return _login_page(request, "Too many attempts from this address. Wait a minute and try again.", 429)
    form = await request.post()
    nonce = request.cookies.get(LOGIN_NONCE_COOKIE, "")
    given = str(form.get("csrf", ""))
    if not nonce or not same_secret(given, _login_csrf(request, nonce)):
        return _login_page(request, "The form had expired. Please try again.", 403)
    username = str(form.get("username", "")).strip()[:64]
    password = str(form.get("password", ""))[:1024]
    store = request.app[WEB_STORE]
    window = dt.timedelta(minutes=settings.lockout_minutes)
    try:
        user = await asyncio.to_thread(store.authenticate, username, password, attempts=settings.lockout_attempts, window=window)
    except LockedOut as locked:
        minutes = max(1, int((locked.until - dt.datetime.now(dt.timezone.utc)).total_seconds() // 60) + 1)
        return _login_page(request, f"Too many failed attempts: this account is locked for {minutes} more minute(s).",
                           429, username)
    if user is None:
        return _login_page(request, "That username and password did not match.", 401, username)
    token, _csrf = await asyncio.to_thread(store.start_duty_session, user)
    response = web.Response(status=303, headers={"Location": "/duty"})
    set_cookie(request, response, DUTY_COOKIE, sign(settings.secret_key, "duty", token), path="/duty")
    response.del_cookie(LOGIN_NONCE_COOKIE, path="/duty")
    return response


def _check_csrf(login: DutyLogin, given: str) -> bool:
    return same_secret(given, login.csrf)


@routes.post("/duty/logout")
async def logout(request: web.Request) -> web.Response:
    found = await current_login(request)
    if found is None:
        raise web.HTTPSeeOther("/duty/login")
    token, login = found
    form = await request.post()
    if not _check_csrf(login, str(form.get("csrf", ""))):
        return web.Response(status=403, text="The form had expired. Reload the page and try again.")
    await asyncio.to_thread(request.app[WEB_STORE].end_duty_session, token, login.user.username)
    _seen.pop(token_hash(token), None)
    response = web.Response(status=303, headers={"Location": "/duty/login"})
    response.del_cookie(DUTY_COOKIE, path="/duty")
    return response


@routes.get("/duty")
async def inbox(request: web.Request) -> web.Response:
    found = await current_login(request)
    if found is None:
        raise web.HTTPSeeOther("/duty/login")
    _token, login = found
    names = _area_names()
    areas = ", ".join(names.get(a, a) for a in login.user.areas)
    await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "inbox_opened", None, {"areas": list(login.user.areas)})
    return page("duty.html", csrf=login.csrf, username=login.user.username, areas=areas)


def _history(escalation_id: str, store) -> list[dict]:
    return [
        {"at": row["at"], "actor": row["actor"], "action": row["action"],
         "note": row["detail"].get("text") if row["action"] == "note" else None}
        for row in store.audit(escalation_id)
    ]


def _view(escalation: dict, store, names: dict[str, str]) -> dict:
    created = dt.datetime.fromisoformat(escalation["created_at"])
    return {
        "id": escalation["id"],
        "area": escalation["area"],
        "area_name": names.get(escalation["area"] or "", "Area not known"),
        "urgency": escalation["urgency"],
        "status": escalation["status"],
        "created_at": escalation["created_at"],
        "age_seconds": max(0, int((dt.datetime.now(dt.timezone.utc) - created).total_seconds())),
        "categories": escalation["categories"],
        "excerpt": escalation["excerpt"],
        "contact": escalation["contact"],
        "acknowledged_by": escalation["acknowledged_by"],
        "acknowledged_at": escalation["acknowledged_at"],
        "reminders": escalation.get("reminders", 0),
        "history": _history(escalation["id"], store),
    }


def _visible_list(login: DutyLogin, store, web_store, token: str) -> list[dict]:
    names = _area_names()
    shown = [e for e in store.list() if e["status"] != "closed" and visible(login, e)]
    seen = _seen.setdefault(token_hash(token), set())
    for e in shown:
        key = (e["id"], e["status"])
        if key not in seen:
            seen.add(key)
            web_store.log(login.user.username, "viewed", e["id"], {"status": e["status"]})
            store.record_view(e["id"], login.user.username)
    return [_view(e, store, names) for e in shown]


@routes.get("/duty/escalations")
async def escalations_json(request: web.Request) -> web.Response:
    found = await current_login(request)
    if found is None:
        return web.json_response({"error": "Please log in again."}, status=401)
    token, login = found
    items = await asyncio.to_thread(_visible_list, login, request.app[ESCALATIONS], request.app[WEB_STORE], token)
    return web.json_response({"escalations": items, "user": login.user.username, "areas": list(login.user.areas)})


@routes.get("/duty/events")
async def events(request: web.Request) -> web.StreamResponse:
    found = await current_login(request)
    if found is None:
        return web.json_response({"error": "Please log in again."}, status=401)
    token, _login = found
    broadcaster = request.app[BROADCASTER]
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store",
                                           "X-Accel-Buffering": "no"})
    await response.prepare(request)
    broadcaster.listeners += 1
    idle, absolute = _limits(request.app)
    try:
        version = broadcaster.version
        await response.write(f"retry: 3000\nevent: changed\ndata: {json.dumps({'version': version})}\n\n".encode())
        while not broadcaster.closing:
            new = await broadcaster.wait(version, timeout=15)
            if broadcaster.closing:
                break
            # a login that was ended or expired stops its stream (checked without extending it)
            still = await asyncio.to_thread(request.app[WEB_STORE].duty_session, token, idle, absolute, False)
            if still is None:
                await response.write(b"event: logout\ndata: {}\n\n")
                break
            if new != version:
                version = new
                await response.write(f"event: changed\ndata: {json.dumps({'version': version})}\n\n".encode())
            else:
                await response.write(b": keep-alive\n\n")
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    finally:
        broadcaster.listeners -= 1
    return response


async def _act(request: web.Request, action: str) -> web.Response:
    found = await current_login(request)
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    if found is None:
        if wants_json:
            return web.json_response({"error": "Please log in again."}, status=401)
        raise web.HTTPSeeOther("/duty/login")
    _token, login = found
    form = await request.post()
    if not _check_csrf(login, str(form.get("csrf", ""))):
        await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "csrf_rejected", None, {"action": action})
        if wants_json:
            return web.json_response({"error": "The form had expired. Reload the page and try again."}, status=403)
        return web.Response(status=403, text="The form had expired. Reload the page and try again.")
    escalation_id = request.match_info["id"]
    store = request.app[ESCALATIONS]
    escalation = await asyncio.to_thread(store.get, escalation_id)
    if not visible(login, escalation):
        raise web.HTTPNotFound(text="No such escalation in your areas.")
    who = login.user.username
    if action == "ack":
        await asyncio.to_thread(store.acknowledge, escalation_id, who)
        done = "Acknowledged."
    elif action == "close":
        await asyncio.to_thread(store.close, escalation_id, who)
        done = "Closed."
    else:
        text = str(form.get("note", "")).strip()
        if not text or len(text) > 4000:
            message = "A note needs some text (at most 4,000 characters)."
            if wants_json:
                return web.json_response({"error": message}, status=400)
            return web.Response(status=400, text=message)
        await asyncio.to_thread(store.add_note, escalation_id, who, text)
        done = "Note added."
    await asyncio.to_thread(request.app[WEB_STORE].log, who, action, escalation_id)
    request.app[BROADCASTER].bump()
    if wants_json:
        return web.json_response({"ok": True, "message": done})
    raise web.HTTPSeeOther(f"/duty#esc-{escalation_id}")


@routes.post("/duty/escalations/{id}/ack")
async def acknowledge(request: web.Request) -> web.Response:
    return await _act(request, "ack")


@routes.post("/duty/escalations/{id}/note")
async def note(request: web.Request) -> web.Response:
    return await _act(request, "note")


@routes.post("/duty/escalations/{id}/close")
async def close(request: web.Request) -> web.Response:
    return await _act(request, "close")
