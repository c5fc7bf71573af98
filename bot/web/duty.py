"""The duty inbox: log in, see open escalations for your areas live, acknowledge, add a note, close.

* Accounts are made with ``earlyhelp users add``; passwords are argon2id hashes.
* A login lasts while used (``EARLYHELP_DUTY_SESSION_MINUTES`` idle, 8 hours at most); the cookie is
  signed, HttpOnly, SameSite=Strict and limited to ``/duty``.
* Every form carries a CSRF token bound to the login (the login form one bound to a pre-login cookie).
* Five failed logins for an account lock it for 15 minutes.
* A worker sees escalations of their own areas and those whose area is unknown; anything else answers 404.
* Every view and every action is written to the access log (``web_duty_access``); actions also go to the
  escalation's own audit log through the store.

Two roles open more of the inbox, each held by named accounts (``web_duty_roles``; granted with
``earlyhelp privacy roles grant --username U --role dpo|manager``, and audited):

* ``dpo``, a data protection officer: ``/duty/privacy`` exports or erases one conversation for a person's
  request, with the same functions as ``earlyhelp privacy export|erase`` (``bot.privacy``), audited the
  same way in ``privacy_audit`` (actor ``duty:<username>``). Erasing shows what will go and what is kept
  and asks to confirm first. Conversations known to be about another area are refused.
* ``manager``: ``/duty/report`` shows the commissioners' report (``bot.report``: the same figures, the same
  suppression of counts below 5, the same charts) for one of their areas and a period.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import functools
import html
import json
import logging
import re
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from aiohttp import web

from bot.errors import BadInput
from bot.web.keys import BROADCASTER, ESCALATIONS, LOGIN_LIMIT, SETTINGS, WEB_STORE
from bot.web.pages import Markup, page
from bot.web.security import DUTY_COOKIE, client_address, same_secret, set_cookie, sign, unsign
from bot.web.storage import DutyLogin, LockedOut, token_hash

log = logging.getLogger("bot.web.duty")
routes = web.RouteTableDef()
LOGIN_NONCE_COOKIE = "eh_login"
EXPIRED = "The form had expired. Reload the page and try again."
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


# -- roles ------------------------------------------------------------------------------------------------------

ROLES = {
    "dpo": "data protection officer: export or erase a conversation on a person's request",
    "manager": "see the commissioners' figures and charts for their areas",
}
roles_metadata = sa.MetaData()
duty_roles = sa.Table(
    "web_duty_roles",
    roles_metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("role", sa.String(20), primary_key=True),
    sa.Column("granted_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("granted_by", sa.String(100), nullable=False),
)
_roles_ready: set[int] = set()


def _roles_table(engine) -> None:
    """Create ``web_duty_roles`` if missing, under the web tables' advisory lock on PostgreSQL (several web
    apps may start at once; see ``bot.web.storage.create_tables``)."""
    from bot.web.storage import TABLES_LOCK

    if id(engine) not in _roles_ready:
        with engine.begin() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": TABLES_LOCK})
            roles_metadata.create_all(conn)
        _roles_ready.add(id(engine))


def grant_role(web_store, username: str, role: str, by: str) -> None:
    """Give a duty account a role (``dpo`` or ``manager``); written to the access log."""
    from bot.web.storage import duty_users

    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: the roles are {', '.join(sorted(ROLES))}")
    _roles_table(web_store.engine)
    with web_store.engine.begin() as conn:
        if conn.execute(sa.select(duty_users.c.username).where(duty_users.c.username == username)).first() is None:
            raise BadInput(f"no duty account {username!r} (add it first: earlyhelp users add)")
        exists = conn.execute(sa.select(duty_roles.c.role).where(duty_roles.c.username == username,
                                                                 duty_roles.c.role == role)).first()
        if exists is None:
            conn.execute(sa.insert(duty_roles).values(username=username, role=role, granted_by=by[:100],
                                                      granted_at=dt.datetime.now(dt.timezone.utc)))
    web_store.log(username, "role_granted", None, {"role": role, "by": by[:100]})


def revoke_role(web_store, username: str, role: str, by: str) -> bool:
    """Take a role away; True if the account had it."""
    if role not in ROLES:
        raise BadInput(f"unknown role {role!r}: the roles are {', '.join(sorted(ROLES))}")
    _roles_table(web_store.engine)
    with web_store.engine.begin() as conn:
        done = conn.execute(sa.delete(duty_roles).where(duty_roles.c.username == username,
                                                        duty_roles.c.role == role)).rowcount
    if done:
        web_store.log(username, "role_revoked", None, {"role": role, "by": by[:100]})
    return bool(done)


def roles_of(web_store, username: str) -> frozenset[str]:
    _roles_table(web_store.engine)
    with web_store.engine.connect() as conn:
        return frozenset(conn.execute(sa.select(duty_roles.c.role).where(duty_roles.c.username == username)).scalars())


def role_holders(web_store) -> list[dict]:
    _roles_table(web_store.engine)
    with web_store.engine.connect() as conn:
        rows = conn.execute(sa.select(duty_roles).order_by(duty_roles.c.username, duty_roles.c.role)).mappings().all()
    return [{"username": r["username"], "role": r["role"], "granted_by": r["granted_by"],
             "granted_at": r["granted_at"].isoformat()} for r in rows]


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


async def logged_in(request: web.Request, answer_json: bool = False) -> tuple[str, DutyLogin]:
    """(token, login) of the inbox's pages; without a login, to the login page (``answer_json``: a 401 in JSON,
    for the inbox's own script)."""
    found = await current_login(request)
    if found is None:
        if answer_json:
            raise web.HTTPUnauthorized(text=json.dumps({"error": "Please log in again."}), content_type="application/json")
        raise web.HTTPSeeOther("/duty/login")
    return found


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
    token, login = await logged_in(request)
    form = await request.post()
    if not _check_csrf(login, str(form.get("csrf", ""))):
        return web.Response(status=403, text=EXPIRED)
    await asyncio.to_thread(request.app[WEB_STORE].end_duty_session, token, login.user.username)
    _seen.pop(token_hash(token), None)
    response = web.Response(status=303, headers={"Location": "/duty/login"})
    response.del_cookie(DUTY_COOKIE, path="/duty")
    return response


@routes.get("/duty")
async def inbox(request: web.Request) -> web.Response:
    _token, login = await logged_in(request)
    names = _area_names()
    areas = ", ".join(names.get(a, a) for a in login.user.areas)
    await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "inbox_opened", None, {"areas": list(login.user.areas)})
    roles = await asyncio.to_thread(roles_of, request.app[WEB_STORE], login.user.username)
    return _duty_page("duty.html", login, roles, "inbox", areas=areas)


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
    token, login = await logged_in(request, answer_json=True)
    items = await asyncio.to_thread(_visible_list, login, request.app[ESCALATIONS], request.app[WEB_STORE], token)
    return web.json_response({"escalations": items, "user": login.user.username, "areas": list(login.user.areas)})


@routes.get("/duty/events")
async def events(request: web.Request) -> web.StreamResponse:
    token, _login = await logged_in(request, answer_json=True)
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
    wants_json = request.headers.get("Accept", "").startswith("application/json")
    _token, login = await logged_in(request, answer_json=wants_json)
    form = await request.post()
    if not _check_csrf(login, str(form.get("csrf", ""))):
        await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "csrf_rejected", None, {"action": action})
        if wants_json:
            return web.json_response({"error": EXPIRED}, status=403)
        return web.Response(status=403, text=EXPIRED)
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


# -- data protection requests and the manager view (roles) ------------------------------------------------------

REFERENCE = re.compile(r"^[A-Za-z0-9._:-]{1,200}$")
PAGES = ("inbox", "privacy", "report")  # the inbox's menu (templates/_duty_top.html)


def _duty_page(name: str, login: DutyLogin, roles: frozenset[str], current: str, status: int = 200,
               **values: object) -> web.Response:
    """A page of the inbox with the shared top bar (who is logged in, log out) and menu: a role's page is
    in the menu only for those who hold the role, and the page shown is marked as the current one."""
    return page(name, status=status, csrf=login.csrf, username=login.user.username,
                dpo_class="" if "dpo" in roles else "hidden", manager_class="" if "manager" in roles else "hidden",
                **{f"{p}_current": "page" if p == current else "false" for p in PAGES}, **values)


@dataclass(frozen=True)
class Period:
    """The manager's choice of area and period, checked: ``message`` says what is wrong, else ''."""

    area: str
    start_text: str
    end_text: str
    start: dt.date | None
    end: dt.date | None
    message: str

    def detail(self) -> dict[str, str]:
        return {"area": self.area, "from": self.start.isoformat(), "to": self.end.isoformat()}


def _for_role(role: str, *, posted: bool = False, period: bool = False):
    """The one check in front of each page of a role. Not logged in: to the login page. Without ``role``: a
    403 page, audited. ``posted``: a form whose CSRF token must match the login's (else 403, audited), passed
    on as a dict. ``period``: the manager's area and period from the query (``_report_query``).
    The handler is called as ``handler(request, login, roles[, form][, period])``."""

    def wrap(handler):
        @functools.wraps(handler)
        async def checked(request: web.Request) -> web.StreamResponse:
            _token, login = await logged_in(request)
            web_store = request.app[WEB_STORE]
            roles = await asyncio.to_thread(roles_of, web_store, login.user.username)
            if role not in roles:
                await asyncio.to_thread(web_store.log, login.user.username, "role_refused", None,
                                        {"role": role, "path": request.path})
                return _duty_page("refused.html", login, roles, "", status=403, role=role, meaning=ROLES[role])
            extra: list[object] = []
            if posted:
                form = await request.post()
                if not _check_csrf(login, str(form.get("csrf", ""))):
                    await asyncio.to_thread(web_store.log, login.user.username, "csrf_rejected", None, {"action": "privacy"})
                    return web.Response(status=403, text=EXPIRED)
                extra.append({k: str(v) for k, v in form.items()})
            if period:
                extra.append(_report_query(request, login))
            return await handler(request, login, roles, *extra)

        return checked

    return wrap


def _privacy_page(login: DutyLogin, roles: frozenset[str], *, title: str = "Data protection requests",
                  result: str = "", show_form: bool = True, ref: str = "", status: int = 200) -> web.Response:
    return _duty_page("privacy.html", login, roles, "privacy", status=status, title=title, result=Markup(result),
                      form_class="" if show_form else "hidden", ref=ref)


def _message(text: str, kind: str = "error") -> str:
    return f'<p class="{kind}" role="alert">{html.escape(text)}</p>'


class _Refused(Exception):
    def __init__(self, message: str, status: int):
        super().__init__(message)
        self.status = status


def _find_conversation(request: web.Request, login: DutyLogin, ref: str):
    """(session id, what is stored about it) for a reference the officer typed, or _Refused with a message."""
    from bot.privacy.erase import session_of_escalation, stored_about

    ref = ref.strip()
    if not REFERENCE.match(ref):
        raise _Refused("Give a conversation id (it starts web-) or an escalation reference: letters, digits, "
                       "dots, dashes, colons or underscores, at most 200.", 400)
    engine = request.app[ESCALATIONS].engine
    sender = session_of_escalation(ref, engine=engine) or ref
    stored = stored_about(sender, engine=engine, tracker=request.app[SETTINGS].tracker_url)
    if stored.areas and not set(stored.areas) & set(login.user.areas):
        raise _Refused("No conversation with that reference in your areas.", 404)
    if stored.nothing:
        raise _Refused("Nothing is stored under that reference: it may have been erased already, or the reference "
                       "is mistyped.", 404)
    return sender, stored


@routes.get("/duty/privacy")
@_for_role("dpo")
async def privacy_requests(request: web.Request, login: DutyLogin, roles: frozenset[str]) -> web.Response:
    await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "privacy_page_opened")
    ref = request.query.get("ref", "").strip()  # from an escalation's link in the inbox
    return _privacy_page(login, roles, ref=ref if REFERENCE.match(ref) else "")


def _counts_table(rows: list[tuple[str, int]]) -> str:
    body = "".join(f"<tr><td>{html.escape(label)}</td><td>{n}</td></tr>" for label, n in rows)
    return f"<table><tr><th scope='col'>what</th><th scope='col'>how many</th></tr>{body}</table>"


@routes.post("/duty/privacy/erase")
@_for_role("dpo", posted=True)
async def privacy_erase(request: web.Request, login: DutyLogin, roles: frozenset[str], form: dict) -> web.Response:
    """Without ``confirm=yes``: what would be erased and kept, and a button to confirm. With it: erase."""
    from bot.privacy.erase import SAFEGUARDING_NOTE, erase_conversation, session_hash

    web_store = request.app[WEB_STORE]
    ref = form.get("ref", "")[:300]
    try:
        sender, stored = await asyncio.to_thread(_find_conversation, request, login, ref)
    except _Refused as refused:
        return _privacy_page(login, roles, result=_message(str(refused)), ref=ref.strip()[:200], status=refused.status)
    who = login.user.username
    if form.get("confirm") != "yes":
        await asyncio.to_thread(web_store.log, who, "privacy_erase_asked", None, {"session_hash": session_hash(sender)})
        kept = len(stored.kept_escalations)
        result = ["<section class='outcome' aria-labelledby='confirm-title'>",
                  "<h2 id='confirm-title'>Erase this conversation?</h2>",
                  f"<p>Conversation <code>{html.escape(sender)}</code>. This cannot be undone. It will erase:</p>",
                  _counts_table([("messages the web app recorded", stored.to_erase),
                                 ("entries in the assistant's conversation store (Rasa)", stored.tracker_events)])]
        if kept:
            result.append("<p class='kept-note'><strong>Kept:</strong> " + html.escape(
                f"{kept} escalation(s) already sent to the duty team, with the message that raised each. They are "
                "kept under the council's safeguarding records policy, and the person should be told so.") + "</p>")
        if stored.tracker_error:
            result.append(_message("The assistant's conversation store cannot be reached just now: its part may not "
                                   "be erased. The rest will be, and the audit will say so."))
        result += ["<form method='post' action='/duty/privacy/erase' class='privacy-form'>",
                   f"<input type='hidden' name='csrf' value='{html.escape(login.csrf, quote=True)}'>",
                   f"<input type='hidden' name='ref' value='{html.escape(sender, quote=True)}'>",
                   "<input type='hidden' name='confirm' value='yes'>",
                   "<div class='actions'><button type='submit' class='danger-button' id='erase-confirm'>"
                   "Yes, erase this conversation</button>",
                   "<a class='button-link' href='/duty/privacy'>No, go back</a></div></form></section>"]
        return _privacy_page(login, roles, title="Confirm the erasure", result="".join(result), show_form=False)
    erasure = await asyncio.to_thread(erase_conversation, sender, actor=f"duty:{who}",
                                      engine=request.app[ESCALATIONS].engine, tracker=request.app[SETTINGS].tracker_url)
    await asyncio.to_thread(web_store.log, who, "privacy_erased", None,
                            {"session_hash": session_hash(sender), "messages": erasure.messages,
                             "tracker_events": erasure.tracker_events, "kept_messages": erasure.kept_messages})
    result = ["<section class='outcome' aria-labelledby='done-title'>",
              "<h2 id='done-title'>The conversation was erased</h2>",
              _counts_table([("messages erased", erasure.messages),
                             ("entries erased from the assistant's conversation store", erasure.tracker_events),
                             ("messages kept with an escalation", erasure.kept_messages)])]
    if erasure.kept_for_safeguarding:
        result.append(f"<p class='kept-note'>{html.escape(SAFEGUARDING_NOTE)}</p>")
    if erasure.tracker_error:
        result.append(_message("The assistant's conversation store could not be reached: erase again later to finish. "
                               "The privacy audit records this."))
    result.append("<p>This erasure is written to the privacy audit under your name.</p></section>")
    return _privacy_page(login, roles, title="Erased", result="".join(result))


@routes.post("/duty/privacy/export")
@_for_role("dpo", posted=True)
async def privacy_export(request: web.Request, login: DutyLogin, roles: frozenset[str], form: dict) -> web.Response:
    """Everything stored about one conversation, as a JSON file (the CLI's ``privacy export``), audited."""
    from bot.privacy.erase import session_hash
    from bot.privacy.export import export_conversation

    ref = form.get("ref", "")[:300]
    try:
        sender, _stored = await asyncio.to_thread(_find_conversation, request, login, ref)
    except _Refused as refused:
        return _privacy_page(login, roles, result=_message(str(refused)), ref=ref.strip()[:200], status=refused.status)
    settings = request.app[SETTINGS]
    document = await asyncio.to_thread(export_conversation, sender, actor=f"duty:{login.user.username}",
                                       db_url=settings.database_url, tracker=settings.tracker_url)
    await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, "privacy_exported", None,
                            {"session_hash": session_hash(sender)})
    name = f"conversation-{session_hash(sender)[:12]}.json"
    return web.Response(text=json.dumps(document, indent=2, ensure_ascii=False), content_type="application/json",
                        charset="utf-8", headers={"Content-Disposition": f'attachment; filename="{name}"'})


def _report_query(request: web.Request, login: DutyLogin) -> Period:
    """The manager's choice of area and period from the query, checked."""
    areas = list(login.user.areas)
    today = dt.datetime.now(dt.timezone.utc).date()
    area = request.query.get("area", areas[0] if areas else "")
    start_text = request.query.get("from", (today - dt.timedelta(days=29)).isoformat())
    end_text = request.query.get("to", today.isoformat())
    message = ""
    try:
        start, end = dt.date.fromisoformat(start_text[:10]), dt.date.fromisoformat(end_text[:10])
    except ValueError:
        start, end, message = None, None, "Give the dates as YYYY-MM-DD."
    if not message and end < start:
        message = "The last day must not be before the first."
    elif not message and (end - start).days > 3660:
        message = "Choose a period of at most ten years."
    if area not in areas:
        message = message or "You can see the figures of your own areas only."
    return Period(area, start_text, end_text, start, end, message)


async def _figures(request: web.Request, login: DutyLogin, period: Period, action: str) -> list:
    """The report's figures for a checked period; the viewing is written to the access log as ``action``."""
    from bot.report import figures

    rows = await asyncio.to_thread(figures, period.area, period.start, period.end, engine=request.app[ESCALATIONS].engine)
    await asyncio.to_thread(request.app[WEB_STORE].log, login.user.username, action, None, period.detail())
    return rows


@routes.get("/duty/report.csv")
@_for_role("manager", period=True)
async def manager_csv(request: web.Request, login: DutyLogin, _roles: frozenset[str], period: Period) -> web.Response:
    """The same figures as a CSV file (the report's report.csv), counts below 5 shown as <5."""
    import io

    from bot.report import write_csv

    if period.message:
        return web.Response(status=400, text=period.message)
    out = io.StringIO()
    write_csv(await _figures(request, login, period, "report_downloaded"), out)
    name = f"early-help-{period.area}-{period.start.isoformat()}-to-{period.end.isoformat()}.csv"
    return web.Response(text=out.getvalue(), content_type="text/csv", charset="utf-8",
                        headers={"Content-Disposition": f'attachment; filename="{name}"'})


@routes.get("/duty/report")
@_for_role("manager", period=True)
async def manager_view(request: web.Request, login: DutyLogin, roles: frozenset[str], period: Period) -> web.Response:
    """The commissioners' report for one of the manager's areas and a period, charts included."""
    from urllib.parse import urlencode

    from bot.report import body_html

    names = _area_names()
    area, message = period.area, period.message
    options = "".join(f"<option value='{html.escape(a, quote=True)}'{' selected' if a == area else ''}>"
                      f"{html.escape(names.get(a, a))}</option>" for a in login.user.areas)
    body = ""
    if not message:
        rows = await _figures(request, login, period, "report_viewed")
        body = await asyncio.to_thread(body_html, rows, inline_svg=False, level=3)
        query = html.escape(urlencode(period.detail()), quote=True)
        body = (f"<p><a href='/duty/report.csv?{query}' download>Download these figures as a CSV file</a></p>" + body)
    return _duty_page("report.html", login, roles, "report", status=400 if message else 200, options=Markup(options),
                      start=period.start.isoformat() if period.start else period.start_text[:10],
                      end=period.end.isoformat() if period.end else period.end_text[:10],
                      message=message, message_class="error" if message else "hidden", figures=Markup(body),
                      figures_class="hidden" if message else "", area_name=names.get(area, area))
