"""Escalation settings, read from the environment with safe defaults.

The duty inbox is always on. Email goes out only when ``EARLYHELP_SMTP_HOST`` and ``EARLYHELP_SMTP_TO``
are set; the webhook only when ``EARLYHELP_WEBHOOK_URL`` is set, and then a secret is required and the
URL must be https (plain http only to a loopback address, for local receivers and tests).

| variable | default | meaning |
|---|---|---|
| EARLYHELP_SMTP_HOST / _PORT | unset / 25 | SMTP server for duty email |
| EARLYHELP_SMTP_FROM | earlyhelp@localhost | sender address |
| EARLYHELP_SMTP_TO | unset | duty team addresses, comma separated |
| EARLYHELP_SMTP_STARTTLS | 0 | 1: upgrade with STARTTLS before sending |
| EARLYHELP_SMTP_USER / _PASSWORD | unset | SMTP login, when the server needs one |
| EARLYHELP_WEBHOOK_URL | unset | duty system endpoint (JSON POST) |
| EARLYHELP_WEBHOOK_SECRET | unset | HMAC-SHA256 key for ``X-EarlyHelp-Signature`` (required with a URL) |
| EARLYHELP_RENOTIFY_MINUTES | 5 | re-notify an unacknowledged escalation this often |
| EARLYHELP_NEXT_TIER_MINUTES | 15 | unacknowledged this long: tell the next tier |
| EARLYHELP_NEXT_TIER_TO | unset | next-tier (out-of-hours / manager) addresses, comma separated |
| EARLYHELP_NEXT_TIER_TO_<AREA> | unset | per-area override, e.g. EARLYHELP_NEXT_TIER_TO_NORTH_LINCOLNSHIRE |
| EARLYHELP_NEXT_TIER_WEBHOOK_URL | unset | next-tier webhook (signed with the same secret) |
| EARLYHELP_OOH_TO | unset | out-of-hours duty addresses: while the area's office is closed (its own hours in the knowledge file, bank holidays included) duty email goes to these as well as EARLYHELP_SMTP_TO |
| EARLYHELP_OOH_TO_<AREA> | unset | per-area override, e.g. EARLYHELP_OOH_TO_GLOUCESTERSHIRE |
| EARLYHELP_OUTBOX_LEASE_SECONDS | 60 | a claimed notification not finished by then is retried |
| EARLYHELP_SEND_TIMEOUT_SECONDS | 15 | one delivery attempt gives up after this |
| EARLYHELP_BACKOFF_BASE_SECONDS / _CAP_SECONDS | 2 / 300 | retry delay: base x 2^(attempt-1), at most cap |
"""
from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from bot.errors import BadInput


class ConfigError(BadInput):
    """An escalation setting is wrong; the message names the variable."""


def _text(env: dict, name: str, default: str | None = None) -> str | None:
    value = env.get(name)
    return value.strip() if value and value.strip() else default


def _number(env: dict, name: str, default: float, minimum: float = 0.0) -> float:
    raw = _text(env, name)
    if raw is None:
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(f"{name} must be a number, got {raw!r}") from None
    if value < minimum:
        raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
    return value


def _addresses(raw: str | None) -> list[str]:
    return [part.strip() for part in (raw or "").split(",") if part.strip()]


def _check_url(name: str, url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("https", "http") or not parts.hostname:
        raise ConfigError(f"{name} must be an http(s) URL, got {url!r}")
    if parts.scheme == "http":
        host = parts.hostname
        try:
            loopback = ipaddress.ip_address(host).is_loopback
        except ValueError:
            loopback = host == "localhost"
        if not loopback:
            raise ConfigError(f"{name} must use https (plain http is allowed only to a loopback address)")
    return url


def area_env_suffix(area: str) -> str:
    return "".join(ch if ch.isalnum() else "_" for ch in area).upper()


@dataclass(frozen=True)
class EscalationConfig:
    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_from: str = "earlyhelp@localhost"
    smtp_to: tuple[str, ...] = ()
    smtp_starttls: bool = False
    smtp_user: str | None = None
    smtp_password: str | None = field(default=None, repr=False)
    webhook_url: str | None = None
    webhook_secret: str | None = field(default=None, repr=False)
    renotify_after: dt.timedelta = dt.timedelta(minutes=5)
    next_tier_after: dt.timedelta = dt.timedelta(minutes=15)
    next_tier_to: tuple[str, ...] = ()
    next_tier_to_by_area: dict[str, tuple[str, ...]] = field(default_factory=dict)
    next_tier_webhook_url: str | None = None
    ooh_to: tuple[str, ...] = ()
    ooh_to_by_area: dict[str, tuple[str, ...]] = field(default_factory=dict)
    lease: dt.timedelta = dt.timedelta(seconds=60)
    send_timeout: float = 15.0
    backoff_base: float = 2.0
    backoff_cap: float = 300.0

    @property
    def email_enabled(self) -> bool:
        return bool(self.smtp_host and self.smtp_to)

    @property
    def webhook_enabled(self) -> bool:
        return bool(self.webhook_url)

    def channel_names(self) -> list[str]:
        """The primary channels every escalation is sent to: inbox always, email/webhook when configured."""
        names = ["inbox"]
        if self.email_enabled:
            names.append("email")
        if self.webhook_enabled:
            names.append("webhook")
        return names

    def next_tier_recipients(self, area: str | None) -> tuple[str, ...]:
        if area and area_env_suffix(area) in self.next_tier_to_by_area:
            return self.next_tier_to_by_area[area_env_suffix(area)]
        return self.next_tier_to

    def ooh_recipients(self, area: str | None) -> tuple[str, ...]:
        """Who is on duty out of hours for ``area`` (its own override, else the default list)."""
        if area and area_env_suffix(area) in self.ooh_to_by_area:
            return self.ooh_to_by_area[area_env_suffix(area)]
        return self.ooh_to

    @classmethod
    def from_env(cls, env: dict | None = None) -> "EscalationConfig":
        env = dict(os.environ if env is None else env)
        webhook_url = _text(env, "EARLYHELP_WEBHOOK_URL")
        next_tier_webhook = _text(env, "EARLYHELP_NEXT_TIER_WEBHOOK_URL")
        secret = _text(env, "EARLYHELP_WEBHOOK_SECRET")
        for name, url in (("EARLYHELP_WEBHOOK_URL", webhook_url), ("EARLYHELP_NEXT_TIER_WEBHOOK_URL", next_tier_webhook)):
            if url:
                _check_url(name, url)
                if not secret:
                    raise ConfigError(f"{name} is set but EARLYHELP_WEBHOOK_SECRET is not: webhooks must be signed")
        prefix = "EARLYHELP_NEXT_TIER_TO_"
        by_area = {
            key[len(prefix):]: tuple(_addresses(value))
            for key, value in env.items()
            if key.startswith(prefix) and _addresses(value)
        }
        ooh_prefix = "EARLYHELP_OOH_TO_"
        ooh_by_area = {
            key[len(ooh_prefix):]: tuple(_addresses(value))
            for key, value in env.items()
            if key.startswith(ooh_prefix) and _addresses(value)
        }
        port = _number(env, "EARLYHELP_SMTP_PORT", 25, minimum=1)
        if port != int(port) or port > 65535:
            raise ConfigError(f"EARLYHELP_SMTP_PORT must be a port number, got {env.get('EARLYHELP_SMTP_PORT')!r}")
        base = _number(env, "EARLYHELP_BACKOFF_BASE_SECONDS", 2.0, minimum=0.001)
        return cls(
            smtp_host=_text(env, "EARLYHELP_SMTP_HOST"),
            smtp_port=int(port),
            smtp_from=_text(env, "EARLYHELP_SMTP_FROM", "earlyhelp@localhost"),
            smtp_to=tuple(_addresses(_text(env, "EARLYHELP_SMTP_TO"))),
            smtp_starttls=_text(env, "EARLYHELP_SMTP_STARTTLS", "0") in ("1", "true", "yes"),
            smtp_user=_text(env, "EARLYHELP_SMTP_USER"),
            smtp_password=_text(env, "EARLYHELP_SMTP_PASSWORD"),
            webhook_url=webhook_url,
            webhook_secret=secret,
            renotify_after=dt.timedelta(minutes=_number(env, "EARLYHELP_RENOTIFY_MINUTES", 5, minimum=0.01)),
            next_tier_after=dt.timedelta(minutes=_number(env, "EARLYHELP_NEXT_TIER_MINUTES", 15, minimum=0.01)),
            next_tier_to=tuple(_addresses(_text(env, "EARLYHELP_NEXT_TIER_TO"))),
            next_tier_to_by_area=by_area,
            next_tier_webhook_url=next_tier_webhook,
            ooh_to=tuple(_addresses(_text(env, "EARLYHELP_OOH_TO"))),
            ooh_to_by_area=ooh_by_area,
            lease=dt.timedelta(seconds=_number(env, "EARLYHELP_OUTBOX_LEASE_SECONDS", 60, minimum=0.1)),
            send_timeout=_number(env, "EARLYHELP_SEND_TIMEOUT_SECONDS", 15, minimum=0.1),
            backoff_base=base,
            backoff_cap=max(base, _number(env, "EARLYHELP_BACKOFF_CAP_SECONDS", 300, minimum=0.001)),
        )
