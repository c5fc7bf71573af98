"""The web app's settings, read from the environment with safe defaults.

| variable | default | meaning |
|---|---|---|
| EARLYHELP_HOST | 127.0.0.1 | address to listen on (``0.0.0.0`` behind a proxy or in a container) |
| EARLYHELP_PORT | 8080 | port to listen on |
| EARLYHELP_RASA_URL | http://127.0.0.1:5005 | Rasa (loopback; only this app talks to it) |
| EARLYHELP_ACTION_URL | http://127.0.0.1:5055 | the action server, for /readyz |
| EARLYHELP_SECRET_KEY | generated once into $EARLYHELP_HOME/web-secret.key | signs cookies and CSRF tokens |
| EARLYHELP_DUTY_TOKEN | unset (API off) | bearer token for /api/escalations (councils' case systems) |
| EARLYHELP_TRUST_PROXY | 0 | 1: take the client address and https from X-Forwarded-For / -Proto |
| EARLYHELP_SECURE_COOKIES | auto | 1: always Secure; 0: never; auto: Secure when the request came over https |
| EARLYHELP_EXIT_URL | https://www.bbc.co.uk/weather | where "Leave this site" goes |
| EARLYHELP_RASA_TIMEOUT | 2.5 | seconds to wait for Rasa before the fallback answer |
| EARLYHELP_ANSWER_SECONDS | 2.9 | the whole answer's budget (the failure rule says 3 s; raise it only for tests on a loaded machine) |
| EARLYHELP_MAX_MESSAGE_CHARS | 2000 | longer messages get 413 |
| EARLYHELP_RATE_SESSION | 30/60 | messages per session per seconds |
| EARLYHELP_RATE_ADDRESS | 120/60 | requests to the chat API per client address per seconds |
| EARLYHELP_RATE_LOGIN | 20/60 | duty login attempts per client address per seconds (each account also locks after 5 failures) |
| EARLYHELP_CHAT_SESSION_HOURS | 24 | a chat session idle this long is forgotten |
| EARLYHELP_DUTY_SESSION_MINUTES | 30 | a duty login idle this long must log in again (8 hours at most) |
| EARLYHELP_WEB_DELIVERY | 1 | 1: run the escalation delivery worker inside the web app |
| EARLYHELP_TRACKER_URL | as the runner sets Rasa up | Rasa's tracker store, for "Delete this chat" (``bot.privacy.erase.tracker_url``) |
| DATABASE_URL | $EARLYHELP_HOME/earlyhelp.db | the project's database (sessions, accounts, escalations) |
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.errors import BadInput
from bot.paths import home

DEFAULT_EXIT_URL = "https://www.bbc.co.uk/weather"


class SettingsError(BadInput):
    """A setting is wrong; the message names the variable."""


@dataclass(frozen=True)
class Rate:
    """At most ``count`` events per ``seconds``."""

    count: int
    seconds: float

    @classmethod
    def parse(cls, name: str, raw: str) -> "Rate":
        try:
            count, seconds = raw.split("/", 1)
            rate = cls(int(count), float(seconds))
        except ValueError:
            raise SettingsError(f"{name} must look like COUNT/SECONDS (e.g. 30/60), got {raw!r}") from None
        if rate.count < 1 or rate.seconds <= 0:
            raise SettingsError(f"{name} must have a positive count and period, got {raw!r}")
        return rate


@dataclass(frozen=True)
class Settings:
    host: str = "127.0.0.1"
    port: int = 8080
    rasa_url: str = "http://127.0.0.1:5005"
    action_url: str = "http://127.0.0.1:5055"
    secret_key: str = field(default="", repr=False)
    duty_token: str | None = field(default=None, repr=False)
    trust_proxy: bool = False
    secure_cookies: str = "auto"
    exit_url: str = DEFAULT_EXIT_URL
    rasa_timeout: float = 2.5
    answer_seconds: float = 2.9
    max_message_chars: int = 2000
    rate_session: Rate = Rate(30, 60)
    rate_address: Rate = Rate(120, 60)
    rate_login: Rate = Rate(20, 60)
    chat_session_hours: float = 24
    duty_session_minutes: float = 30
    duty_session_max_hours: float = 8
    lockout_attempts: int = 5
    lockout_minutes: float = 15
    database_url: str | None = None  # None: bot.db.database_url("earlyhelp")
    tracker_url: str | None = None  # None: bot.privacy.erase.tracker_url()
    run_delivery_worker: bool = True
    sse_poll_seconds: float = 2.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None, **overrides) -> "Settings":
        env = dict(os.environ if env is None else env)

        def text(name: str, default: str | None = None) -> str | None:
            value = env.get(name, "").strip()
            return value or default

        def number(name: str, default: float, kind=float):
            raw = text(name)
            if raw is None:
                return default
            try:
                value = kind(raw)
            except ValueError:
                raise SettingsError(f"{name} must be a number, got {raw!r}") from None
            if value <= 0:
                raise SettingsError(f"{name} must be positive, got {raw!r}")
            return value

        def flag(name: str, default: bool) -> bool:
            raw = (text(name) or "").lower()
            if not raw:
                return default
            if raw in ("1", "true", "yes", "on"):
                return True
            if raw in ("0", "false", "no", "off"):
                return False
            raise SettingsError(f"{name} must be 1 or 0, got {raw!r}")

        secure = (text("EARLYHELP_SECURE_COOKIES", "auto") or "auto").lower()
        if secure not in ("auto", "1", "0"):
            raise SettingsError(f"EARLYHELP_SECURE_COOKIES must be auto, 1 or 0, got {secure!r}")
        exit_url = text("EARLYHELP_EXIT_URL", DEFAULT_EXIT_URL)
        if not exit_url.startswith(("https://", "http://")):
            raise SettingsError("EARLYHELP_EXIT_URL must be an http(s) address")
        settings = cls(
            host=text("EARLYHELP_HOST", "127.0.0.1"),
            port=int(number("EARLYHELP_PORT", 8080, int)),
            rasa_url=text("EARLYHELP_RASA_URL", "http://127.0.0.1:5005").rstrip("/"),
            action_url=text("EARLYHELP_ACTION_URL", "http://127.0.0.1:5055").rstrip("/"),
            secret_key=text("EARLYHELP_SECRET_KEY") or persistent_secret(),
            duty_token=text("EARLYHELP_DUTY_TOKEN"),
            trust_proxy=flag("EARLYHELP_TRUST_PROXY", False),
            secure_cookies=secure,
            exit_url=exit_url,
            rasa_timeout=number("EARLYHELP_RASA_TIMEOUT", 2.5),
            answer_seconds=number("EARLYHELP_ANSWER_SECONDS", 2.9),
            max_message_chars=int(number("EARLYHELP_MAX_MESSAGE_CHARS", 2000, int)),
            rate_session=Rate.parse("EARLYHELP_RATE_SESSION", text("EARLYHELP_RATE_SESSION", "30/60")),
            rate_address=Rate.parse("EARLYHELP_RATE_ADDRESS", text("EARLYHELP_RATE_ADDRESS", "120/60")),
            rate_login=Rate.parse("EARLYHELP_RATE_LOGIN", text("EARLYHELP_RATE_LOGIN", "20/60")),
            chat_session_hours=number("EARLYHELP_CHAT_SESSION_HOURS", 24),
            duty_session_minutes=number("EARLYHELP_DUTY_SESSION_MINUTES", 30),
            run_delivery_worker=flag("EARLYHELP_WEB_DELIVERY", True),
        )
        if settings.duty_token is not None and len(settings.duty_token) < 24:
            raise SettingsError("EARLYHELP_DUTY_TOKEN must be at least 24 characters (use a random token)")
        return replace(settings, **overrides) if overrides else settings


def persistent_secret(path: Path | None = None) -> str:
    """The secret key kept under $EARLYHELP_HOME (created once, readable only by its owner).

    Written to a private temporary file and then hard-linked into place, so a second process starting at
    the same moment either sees no file or the whole key, never half of one.
    """
    path = path or home() / "web-secret.key"
    for _attempt in range(3):
        if path.exists():
            value = path.read_text().strip()
            if len(value) >= 32:
                return value
            path.unlink(missing_ok=True)  # too short to be one of ours
        temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(secrets.token_urlsafe(48) + "\n")
        try:
            os.link(temporary, path)
        except FileExistsError:
            pass
        finally:
            temporary.unlink(missing_ok=True)
    raise SettingsError(f"could not create the secret key file {path}")
