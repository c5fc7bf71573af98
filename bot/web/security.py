"""Signed cookies, rate limits, client addresses, security headers and JSON errors without stack traces."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from collections import deque

from aiohttp import web

from bot.web.keys import SETTINGS

log = logging.getLogger("bot.web")

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "font-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'; object-src 'none'"
)
CHAT_COOKIE = "eh_chat"
DUTY_COOKIE = "eh_duty"


def same_secret(given: str | None, expected: str) -> bool:
    """Constant-time comparison of a token someone sent with ours; any text (non-ASCII, lone surrogates
    from undecodable header bytes) is simply unequal, never an error."""
    if not given or not isinstance(given, str):
        return False
    return hmac.compare_digest(given.encode("utf-8", "surrogateescape"), expected.encode("utf-8", "surrogateescape"))


def sign(secret: str, purpose: str, value: str) -> str:
    mac = hmac.new(secret.encode(), f"{purpose}:{value}".encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:43]
    return f"{value}.{mac}"


def unsign(secret: str, purpose: str, signed: str | None) -> str | None:
    """The value if the signature is ours for this purpose, else None."""
    if not signed or "." not in signed or len(signed) > 200:
        return None
    value, _mac = signed.rsplit(".", 1)
    return value if same_secret(signed, sign(secret, purpose, value)) else None


def json_error(status: int, message: str, **extra) -> web.Response:
    """An error the caller can read; never the request body, never a stack trace."""
    return web.json_response({"error": message, **extra}, status=status)


def client_address(request: web.Request) -> str:
    if request.app[SETTINGS].trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first[:64]
    return request.remote or "unknown"


def is_https(request: web.Request) -> bool:
    if request.app[SETTINGS].trust_proxy and request.headers.get("X-Forwarded-Proto", "").lower() == "https":
        return True
    return request.scheme == "https"


def cookie_secure(request: web.Request) -> bool:
    mode = request.app[SETTINGS].secure_cookies
    return mode == "1" or (mode == "auto" and is_https(request))


def set_cookie(request: web.Request, response: web.StreamResponse, name: str, value: str, *, path: str = "/",
               max_age: int | None = None) -> None:
    response.set_cookie(name, value, path=path, max_age=max_age, httponly=True, samesite="Strict",
                        secure=cookie_secure(request))


class RateLimiter:
    """A sliding window per key: at most ``count`` hits per ``seconds``. In memory, one process."""

    def __init__(self, count: int, seconds: float, max_keys: int = 100_000):
        self.count = count
        self.seconds = seconds
        self.max_keys = max_keys
        self._hits: dict[str, deque[float]] = {}

    def hit(self, key: str, now: float | None = None) -> float:
        """Record a hit; 0 if allowed, else the seconds to wait (the hit is then not counted)."""
        now = time.monotonic() if now is None else now
        hits = self._hits.get(key)
        if hits is None:
            if len(self._hits) >= self.max_keys:
                self._prune(now)
            hits = self._hits[key] = deque()
        while hits and hits[0] <= now - self.seconds:
            hits.popleft()
        if len(hits) >= self.count:
            return max(0.001, hits[0] + self.seconds - now)
        hits.append(now)
        return 0.0

    def _prune(self, now: float) -> None:
        for key in [k for k, v in self._hits.items() if not v or v[-1] <= now - self.seconds]:
            del self._hits[key]
        if len(self._hits) >= self.max_keys:  # still full: drop the oldest half
            for key in list(self._hits)[: self.max_keys // 2]:
                del self._hits[key]


def too_many(wait: float) -> web.Response:
    response = json_error(429, "Too many messages in a short time. Please wait a moment and try again.",
                          retry_after=round(wait, 1))
    response.headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    return response


@web.middleware
async def security_middleware(request: web.Request, handler):
    """Security headers on every answer; HTTP errors as JSON (API) without echoing input; no tracebacks."""
    try:
        response = await handler(request)
    except web.HTTPException as err:
        if err.status >= 400 and err.content_type != "application/json" and request.path.startswith("/api/"):
            response = json_error(err.status, _http_message(err))
        else:
            response = web.Response(status=err.status, body=err.body, content_type=err.content_type)
        for name in ("Allow", "Retry-After", "WWW-Authenticate", "Location"):
            if name in err.headers:
                response.headers[name] = err.headers[name]
    except Exception:
        log.exception("unhandled error on %s %s", request.method, request.path)
        response = json_error(500, "Something went wrong on our side. If a child is in danger, call 999.")
    headers = response.headers
    headers.setdefault("Content-Security-Policy", CSP)
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Referrer-Policy"] = "no-referrer"
    headers["X-Frame-Options"] = "DENY"
    headers["Cross-Origin-Opener-Policy"] = "same-origin"
    headers.setdefault("Cross-Origin-Resource-Policy", "same-origin")
    headers["Permissions-Policy"] = "camera=(), microphone=(), geolocation=(), payment=(), usb=()"
    if is_https(request):
        headers["Strict-Transport-Security"] = "max-age=31536000; includeSubDomains"
    if request.path.startswith(("/api/", "/duty")) or request.path == "/":
        headers.setdefault("Cache-Control", "no-store")
    return response


def _http_message(err: web.HTTPException) -> str:
    known = {
        404: "Not found.",
        405: "That method is not allowed here.",
        413: "That message is too long.",
    }
    return known.get(err.status, err.reason or "Request refused.")


async def read_json(request: web.Request, limit: int) -> dict:
    """The JSON object in the body, or an HTTP error as JSON (400 malformed, 413 too large, 415 not JSON)."""
    if request.content_type != "application/json":
        raise web.HTTPUnsupportedMediaType(text=json.dumps({"error": "Send JSON (Content-Type: application/json)."}),
                                           content_type="application/json")
    if request.content_length is not None and request.content_length > limit:
        raise _json_http(web.HTTPRequestEntityTooLarge, "That message is too long.", max_size=limit, actual_size=request.content_length)
    body = await request.content.read(limit + 1)
    if len(body) > limit:
        raise _json_http(web.HTTPRequestEntityTooLarge, "That message is too long.", max_size=limit, actual_size=len(body))
    try:
        doc = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise _json_http(web.HTTPBadRequest, "The request body is not valid JSON.") from None
    if not isinstance(doc, dict):
        raise _json_http(web.HTTPBadRequest, "The request body must be a JSON object.")
    return doc


def _json_http(kind, message: str, **extra) -> web.HTTPException:
    if kind is web.HTTPRequestEntityTooLarge:
        return kind(max_size=extra.get("max_size", 0), actual_size=extra.get("actual_size", 0),
                    text=json.dumps({"error": message}), content_type="application/json")
    return kind(text=json.dumps({"error": message, **extra}), content_type="application/json")
