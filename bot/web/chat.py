"""The public side: the chat page, the embeddable launcher, the chat API, and health checks.

The session lives in a signed, HttpOnly, SameSite=Strict cookie set by the chat page; the Rasa sender id
is chosen here and never by the client. Every chat request also carries the session's CSRF token (in the
``X-CSRF-Token`` header) and, from a browser, an Origin of this site.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hmac
import logging
import re
from urllib.parse import urlsplit

import aiohttp
import sqlalchemy as sa
from aiohttp import web

from bot.web.keys import ADDRESS_LIMIT, ESCALATIONS, GATEWAY, HTTP, SESSION_LIMIT, SETTINGS, WEB_STORE
from bot.web.pages import STATIC, page
from bot.web.security import CHAT_COOKIE, client_address, json_error, read_json, set_cookie, sign, too_many, unsign
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
        session = await asyncio.to_thread(request.app[WEB_STORE].new_chat_session)
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
    if not hmac.compare_digest(token.encode(), session.csrf.encode()):
        return json_error(403, "The page's security token is missing or out of date. Reload the chat page.")
    return session


@routes.post("/api/chat")
async def chat(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    wait = request.app[ADDRESS_LIMIT].hit(client_address(request))
    if wait:
        return too_many(wait)
    checked = await _checked_session(request)
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
    wait = request.app[SESSION_LIMIT].hit(session.sender_id)
    if wait:
        return too_many(wait)
    turn = await request.app[GATEWAY].handle(session, message, message_id)
    return web.json_response({"messages": turn.messages})


@routes.post("/api/chat/reset")
async def reset(request: web.Request) -> web.Response:
    body_token = None
    if request.content_type == "application/json" and (request.content_length or 0) < 4096:
        try:
            doc = await read_json(request, 4096)
            body_token = doc.get("csrf") if isinstance(doc.get("csrf"), str) else None
        except web.HTTPException:
            body_token = None
    checked = await _checked_session(request, body_token)
    if isinstance(checked, web.Response):
        return checked
    store = request.app[WEB_STORE]
    await asyncio.to_thread(store.end_chat_session, checked.id)
    session = await asyncio.to_thread(store.new_chat_session)
    response = web.json_response({"ok": True, "csrf": session.csrf})
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


@routes.get("/readyz")
async def readyz(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    http = request.app[HTTP]
    rasa, actions, stores = await asyncio.gather(
        _probe(http, f"{settings.rasa_url}/"),
        _probe(http, f"{settings.action_url}/health"),
        asyncio.to_thread(_store_check, request.app),
    )
    checks = {"rasa": rasa, "action_server": actions, "stores": stores}
    ready = all(c["ok"] for c in checks.values())
    return web.json_response({"ready": ready, "checks": checks}, status=200 if ready else 503)
