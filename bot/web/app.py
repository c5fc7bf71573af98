"""The application factory: ``create_app(settings) -> web.Application``.

It opens the escalation store and the web app's own tables (same database), one HTTP client for Rasa,
the live-update broadcaster and, unless turned off, the escalation delivery worker; and closes them all
on shutdown.
"""
from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import threading
import time

import aiohttp
from aiohttp import web

from bot.web import api, chat, duty
from bot.web.events import Broadcaster
from bot.web.gateway import Gateway
from bot.web.keys import (ADDRESS_LIMIT, BROADCASTER, ESCALATIONS, GATEWAY, HTTP, LOGIN_LIMIT, SESSION_LIMIT, SETTINGS,
                          WARM, WEB_STORE, WORKER)
from bot.web.pages import STATIC
from bot.web.security import RateLimiter, security_middleware
from bot.web.settings import Settings
from bot.web.storage import WebStore

log = logging.getLogger("bot.web")


async def _resources(app: web.Application):
    from bot.escalation.store import EscalationStore

    settings = app[SETTINGS]
    store = EscalationStore.open(settings.database_url)
    web_store = WebStore.open(settings.database_url)
    http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
    broadcaster = Broadcaster(store, settings.sse_poll_seconds)
    worker = None
    if settings.run_delivery_worker:
        try:
            from bot.escalation.worker import DeliveryWorker

            worker = DeliveryWorker(store)
        except Exception:
            log.exception("the delivery worker could not start; escalations stay in the outbox for another worker")

    def on_escalation(_escalation: dict) -> None:
        broadcaster.bump()
        if worker is not None:
            worker.wake()

    app[ESCALATIONS] = store
    app[WEB_STORE] = web_store
    app[HTTP] = http
    app[BROADCASTER] = broadcaster
    app[WORKER] = worker
    app[GATEWAY] = Gateway(settings, store, web_store, http, on_escalation=on_escalation)
    broadcaster.start()
    stop = asyncio.Event()
    tasks = [asyncio.create_task(_housekeeping(app, stop))]
    if worker is not None:
        tasks.append(asyncio.create_task(worker.run_forever(poll_interval=0.5, stop_event=stop)))
    # load the cue bank and area files now, not on the first person's message
    tasks.append(asyncio.create_task(asyncio.to_thread(_warm_up, app[WARM])))
    yield
    stop.set()
    for task in tasks:
        task.cancel()
    for task in tasks:
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    if worker is not None:
        with contextlib.suppress(Exception):
            await worker.aclose()
    await broadcaster.stop()
    await http.close()
    store.dispose()
    web_store.dispose()


async def _end_streams(app: web.Application) -> None:
    if BROADCASTER in app:
        await app[BROADCASTER].close_streams()


def _warm_up(done: threading.Event) -> None:
    """Load the safeguarding screen (its cue bank and any model), the redaction engine, the area files and
    what a safeguarding answer needs, once, before the first person needs them; /readyz says "not ready"
    until this is done."""
    try:
        from bot.areas import load_areas
        from bot.privacy.redact import load_engine
        from bot.safeguarding import screen
        from bot.web.gateway import warm_answers

        started = time.monotonic()
        screen("hello")
        if not load_engine():  # it logs why; names are then found by patterns only (readyz says "degraded")
            log.warning("redaction engine not loaded: names are found by patterns only")
        load_areas()
        warm_answers()
        log.info("safeguarding screen, redaction and areas loaded in %.1f s", time.monotonic() - started)
        done.set()
    except Exception:
        log.exception("warm-up failed: the safeguarding screen could not be loaded")


async def _housekeeping(app: web.Application, stop: asyncio.Event) -> None:
    """Once an hour: forget idle chat sessions, and erase conversations past their retention period."""
    settings = app[SETTINGS]
    while not stop.is_set():
        try:
            await asyncio.to_thread(app[WEB_STORE].forget_idle_chat_sessions, dt.timedelta(hours=settings.chat_session_hours))
        except Exception:
            log.exception("housekeeping failed")
        try:  # erase conversations past their area's retention period (knowledge/privacy/retention.yml)
            from bot.privacy.retention import purge

            done = await asyncio.to_thread(purge, db_url=settings.database_url)
            if done.conversations:
                log.info("retention: erased %d conversations", done.conversations)
        except Exception:
            log.exception("retention purge failed")
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(stop.wait(), 3600)


def create_app(settings: Settings | None = None) -> web.Application:
    settings = settings or Settings.from_env()
    if not settings.secret_key or len(settings.secret_key) < 32:
        raise ValueError("the secret key must be at least 32 characters")
    # request bodies larger than this are refused before they are read (the chat API checks its own limit)
    app = web.Application(middlewares=[security_middleware], client_max_size=max(64 * 1024, settings.max_message_chars * 16))
    app[SETTINGS] = settings
    app[WARM] = threading.Event()
    app[SESSION_LIMIT] = RateLimiter(settings.rate_session.count, settings.rate_session.seconds)
    app[ADDRESS_LIMIT] = RateLimiter(settings.rate_address.count, settings.rate_address.seconds)
    app[LOGIN_LIMIT] = RateLimiter(settings.rate_login.count, settings.rate_login.seconds)
    app.cleanup_ctx.append(_resources)
    app.on_shutdown.append(_end_streams)
    app.add_routes(chat.routes)
    app.add_routes(duty.routes)
    app.add_routes(api.routes)
    app.router.add_static("/static", STATIC, append_version=False)
    return app
