"""The public side: the chat page, the embeddable launcher, the chat API, and health checks.

The session lives in a signed, HttpOnly, SameSite=Strict cookie set by the chat page; the Rasa sender id
is chosen here and never by the client. Every chat request also carries the session's CSRF token (in the
``X-CSRF-Token`` header) and, from a browser, an Origin of this site.

Return visits: the widget sends ``"returning": true|false`` with its messages (whether this browser had
used the assistant before this chat; a flag in the browser, no id). When a chat's area first becomes
known, one analytics event is written, ``return_visit`` or ``first_visit``, with the day and the area
only (``bot.analytics``), after the answer has gone, so a slow store never holds the answer up.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import re
import secrets
import time
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bot.web.keys import ADDRESS_LIMIT, ESCALATIONS, GATEWAY, HTTP, SESSION_LIMIT, SETTINGS, WARM, WEB_STORE
from bot.web.pages import STATIC, page
from bot.web.security import (CHAT_COOKIE, client_address, json_error, read_json, same_secret, set_cookie, sign,
                              too_many, unsign)
from bot.web.gateway import StoreUnavailable
from bot.web.storage import ChatSession

log = logging.getLogger("bot.web")
routes = web.RouteTableDef()
MESSAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")


def _idle(request: web.Request) -> dt.timedelta:
    return dt.timedelta(hours=request.app[SETTINGS].chat_session_hours)


async def current_session(request: web.Request) -> ChatSession | None:
    session_id = unsign(request.app[SETTINGS].secret_key, "chat", request.cookies.get(CHAT_COOKIE))
    if session_id is None:
        return None
    return await asyncio.to_thread(request.app[WEB_STORE].chat_session, session_id, _idle(request))


def _give_cookie(request: web.Request, response: web.StreamResponse, session: ChatSession) -> None:
    set_cookie(request, response, CHAT_COOKIE, sign(request.app[SETTINGS].secret_key, "chat", session.id))


def same_origin(request: web.Request) -> bool:
    """True unless the browser says the request came from another site."""
    origin = request.headers.get("Origin")
    if origin is None:
        return True
    if origin == "null":
        return False
    parts = urlsplit(origin)
    return parts.netloc.lower() == (request.host or "").lower()


@routes.get("/")
async def chat_page(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        if request.app[ADDRESS_LIMIT].hit("new-session:" + client_address(request)):
            return web.Response(status=429, text="Too many new chats from this address. Please wait a minute.\n"
                                "If a child is in danger, call 999.", content_type="text/plain")
        try:
            session = await request.app[GATEWAY].in_store(request.app[WEB_STORE].new_chat_session, seconds=1.5)
        except StoreUnavailable:
            # the page still works: its messages get the answers that need no store (999 and the numbers)
            session = ChatSession(id=secrets.token_urlsafe(32), sender_id="", csrf=secrets.token_urlsafe(32))
    settings = request.app[SETTINGS]
    response = page("widget.html", csrf=session.csrf, exit_url=settings.exit_url, max_chars=settings.max_message_chars)
    _give_cookie(request, response, session)
    return response


@routes.get("/widget.js")
async def widget_js(request: web.Request) -> web.StreamResponse:
    response = web.FileResponse(STATIC / "widget.js", headers={"Content-Type": "text/javascript; charset=utf-8"})
    response.headers["Cross-Origin-Resource-Policy"] = "cross-origin"
    response.headers["Cache-Control"] = "public, max-age=3600"
    return response


async def _checked_session(request: web.Request, body_token: str | None = None) -> ChatSession | web.Response:
    if not same_origin(request):
        return json_error(403, "This chat only accepts messages from its own page.")
    session = await current_session(request)
    if session is None:
        return json_error(401, "No chat session. Open the chat page first: it starts a session (a cookie).")
    token = request.headers.get("X-CSRF-Token") or body_token or ""
    if not same_secret(token, session.csrf):
        return json_error(403, "The page's security token is missing or out of date. Reload the chat page.")
    return session


async def _session_or_store_down(request: web.Request, body_token: str | None = None) -> ChatSession | web.Response | None:
    """The checked session, an error response, or None when the store cannot be read in time."""
    gateway = request.app[GATEWAY]
    session_id = unsign(request.app[SETTINGS].secret_key, "chat", request.cookies.get(CHAT_COOKIE))
    if not same_origin(request):
        return json_error(403, "This chat only accepts messages from its own page.")
    if session_id is None:
        return json_error(401, "No chat session. Open the chat page first: it starts a session (a cookie).")
    try:
        session = await gateway.in_store(request.app[WEB_STORE].chat_session, session_id, _idle(request))
    except StoreUnavailable:
        return None
    if session is None:
        return json_error(401, "No chat session. Open the chat page first: it starts a session (a cookie).")
    token = request.headers.get("X-CSRF-Token") or body_token or ""
    if not same_secret(token, session.csrf):
        return json_error(403, "The page's security token is missing or out of date. Reload the chat page.")
    return session


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.Response:
    started = time.monotonic()
    settings = request.app[SETTINGS]
    wait = request.app[ADDRESS_LIMIT].hit(client_address(request))
    if wait:
        return too_many(wait)
    checked = await _session_or_store_down(request)
    if isinstance(checked, web.Response):
        return checked
    session = checked
    doc = await read_json(request, settings.max_message_chars * 12 + 2048)
    message = doc.get("message")
    if not isinstance(message, str) or not message.strip():
        return json_error(400, "Send {\"message\": \"...\"} with some text.")
    if len(message) > settings.max_message_chars:
        return json_error(413, f"That message is too long: please keep it under {settings.max_message_chars} characters.",
                          max_chars=settings.max_message_chars)
    if "\x00" in message:
        return json_error(400, "The message has characters we cannot read.")
    message_id = doc.get("message_id")
    if message_id is not None and (not isinstance(message_id, str) or not MESSAGE_ID.match(message_id)):
        return json_error(400, "'message_id' must be 1 to 64 letters, digits, - or _.")
    returning = doc.get("returning")
    if returning is not None and not isinstance(returning, bool):
        return json_error(400, "'returning' must be true or false.")
    if session is None:  # the store is down or slow: still a useful answer, never silence
        turn = await request.app[GATEWAY].degraded(message)
        return web.json_response({"messages": turn.messages, "degraded": True})
    wait = request.app[SESSION_LIMIT].hit(session.sender_id)
    if wait:
        return too_many(wait)
    area_before = session.area
    turn = await request.app[GATEWAY].handle(session, message, message_id, started=started)
    if returning is not None and area_before is None and session.area:
        count_visit(settings.database_url, session.area, returning)
    return web.json_response({"messages": turn.messages, **({"degraded": True} if turn.fallback else {})})


_pending: set[asyncio.Future] = set()  # analytics writes under way (kept so they are not collected)


def count_visit(database_url: str | None, area: str, returning: bool) -> asyncio.Future:
    """Write the chat's visit event (first or return) in a thread, without waiting for it."""
    from bot import analytics

    future = asyncio.get_running_loop().run_in_executor(
        None, lambda: analytics.record("return_visit" if returning else "first_visit", url=database_url, area=area))
    _pending.add(future)
    future.add_done_callback(_pending.discard)
    return future


@routes.post("/api/chat/reset")
async def reset(request: web.Request) -> web.Response:
    body_token = None
    if request.content_type == "application/json" and (request.content_length or 0) < 4096:
        try:
            doc = await read_json(request, 4096)
            body_token = doc.get("csrf") if isinstance(doc.get("csrf"), str) else None
        except web.HTTPException:
            body_token = None
    wait = request.app[ADDRESS_LIMIT].hit(client_address(request))
    if wait:
        return too_many(wait)
    checked = await _checked_session(request, body_token)
    if isinstance(checked, web.Response):
        return checked
    store = request.app[WEB_STORE]
    await asyncio.to_thread(store.end_chat_session, checked.id)
    session = await asyncio.to_thread(store.new_chat_session)
    response = web.json_response({"ok": True, "csrf": session.csrf})
    _give_cookie(request, response, session)
    return response


def _delete_message(erasure) -> str:
    text = "Your chat has been deleted from this assistant."
    if erasure.kept_for_safeguarding:
        text += (" What you said about a child's safety had already gone to the council's safety team. They keep it,"
                 " to help keep the child safe.")
    if erasure.tracker_error:
        text += " Part of it could not be deleted just now: the council's data protection officer can finish it."
    return text


@routes.post("/api/chat/delete")
async def delete_conversation(request: web.Request) -> web.Response:
    """Erase this session's conversation (tracker store and recorded turns; escalations are kept under the
    safeguarding policy, and the answer says so), end the session and start a new one."""
    from bot.privacy.erase import erase_conversation

    wait = request.app[ADDRESS_LIMIT].hit(client_address(request))
    if wait:
        return too_many(wait)
    checked = await _checked_session(request)
    if isinstance(checked, web.Response):
        return checked
    settings = request.app[SETTINGS]
    store = request.app[WEB_STORE]
    erasure = await asyncio.to_thread(erase_conversation, checked.sender_id, actor="the person, in the chat",
                                      engine=request.app[ESCALATIONS].engine, tracker=settings.tracker_url)
    await asyncio.to_thread(store.end_chat_session, checked.id)
    session = await asyncio.to_thread(store.new_chat_session)
    response = web.json_response({"ok": True, "csrf": session.csrf, "message": _delete_message(erasure),
                                  "kept_for_safeguarding": erasure.kept_for_safeguarding,
                                  "erased": {"tracker_events": erasure.tracker_events, "messages": erasure.messages}})
    _give_cookie(request, response, session)
    return response


@routes.get("/healthz")
async def healthz(_request: web.Request) -> web.Response:
    return web.json_response({"ok": True})


async def _probe(http: aiohttp.ClientSession, url: str) -> dict:
    try:
        async with http.get(url, timeout=aiohttp.ClientTimeout(total=1.5)) as response:
            if response.status < 400:
                return {"ok": True, "detail": f"HTTP {response.status}"}
            return {"ok": False, "detail": f"HTTP {response.status}"}
    except (aiohttp.ClientError, asyncio.TimeoutError) as err:
        return {"ok": False, "detail": f"unreachable ({type(err).__name__})"}


def _store_check(app: web.Application) -> dict:
    try:
        with app[ESCALATIONS].engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        app[WEB_STORE].ping()
        return {"ok": True, "detail": "escalation and web stores answer"}
    except Exception as err:
        log.warning("store check failed: %s", type(err).__name__)
        return {"ok": False, "detail": f"store unavailable ({type(err).__name__})"}


async def _store_check_in_time(app: web.Application, seconds: float = 1.5) -> dict:
    try:
        return await asyncio.wait_for(asyncio.to_thread(_store_check, app), seconds)
    except asyncio.TimeoutError:
        return {"ok": False, "detail": f"store too slow (no answer within {seconds} s)"}


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    http = request.app[HTTP]
    rasa, actions, stores = await asyncio.gather(
        _probe(http, f"{settings.rasa_url}/"),
        _probe(http, f"{settings.action_url}/health"),
        _store_check_in_time(request.app),
    )
    warm = request.app[WARM].is_set()
    screening = {"ok": warm, "detail": "loaded" if warm else "still loading (or failed to load: see the log)"}
    from bot.privacy.redact import engine_status

    engine = engine_status()["state"]
    # patterns only ("failed", "off") still redacts contact details and capitalised names: ready, but degraded
    redaction = {"ok": engine in ("loaded", "failed", "off"), "degraded": engine in ("failed", "off"),
                 "detail": {"loaded": "names found by the entity model", "failed": "entity model failed to load: "
                            "names found by patterns only (see the log)", "off": "entity model switched off: names "
                            "found by patterns only"}.get(engine, "still loading")}
    checks = {"rasa": rasa, "action_server": actions, "stores": stores, "safeguarding_screen": screening,
              "redaction": redaction}
    ready = all(c["ok"] for c in checks.values())
    for name, check in checks.items():
        if not check["ok"]:
            log.warning("readyz: %s is not ready: %s", name, check["detail"])
    # what the chat itself met in the last minutes (a part can answer a probe and still fail or be slow)
    recent = request.app[GATEWAY].health.snapshot()
    return web.json_response({"ready": ready, "checks": checks, "recent": recent}, status=200 if ready else 503)
