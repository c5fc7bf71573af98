"""Typed keys for what the web application holds (``app[SETTINGS]`` is a ``Settings``)."""
from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web

if TYPE_CHECKING:  # imported for types only: keeps this module free of import cycles
    from bot.escalation.store import EscalationStore
    from bot.web.events import Broadcaster
    from bot.web.gateway import Gateway
    from bot.web.security import RateLimiter
    from bot.web.settings import Settings
    from bot.web.storage import WebStore

SETTINGS: web.AppKey["Settings"] = web.AppKey("settings")
ESCALATIONS: web.AppKey["EscalationStore"] = web.AppKey("escalations")
WEB_STORE: web.AppKey["WebStore"] = web.AppKey("web_store")
HTTP: web.AppKey[aiohttp.ClientSession] = web.AppKey("http", aiohttp.ClientSession)
GATEWAY: web.AppKey["Gateway"] = web.AppKey("gateway")
SESSION_LIMIT: web.AppKey["RateLimiter"] = web.AppKey("session_limit")
ADDRESS_LIMIT: web.AppKey["RateLimiter"] = web.AppKey("address_limit")
LOGIN_LIMIT: web.AppKey["RateLimiter"] = web.AppKey("login_limit")
BROADCASTER: web.AppKey["Broadcaster"] = web.AppKey("broadcaster")
WORKER: web.AppKey[Any] = web.AppKey("delivery_worker")
WARM: web.AppKey[threading.Event] = web.AppKey("warm", threading.Event)  # set once screening and areas are loaded
