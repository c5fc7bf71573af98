"""Where escalations are delivered: the duty inbox, email over SMTP, a signed webhook, and the next tier.

A channel has a ``name`` (the outbox's ``channel`` column) and ``async send(notification)``, which
raises on failure (the worker then retries with backoff) and may return a few facts for the audit log
(never the message). Every notification carries an idempotency key, ``<escalation>/<channel>/<kind>``,
the same on every retry, so a receiver that dedupes by key never shows one notification twice:

- webhook: header ``Idempotency-Key``, body signed as ``X-EarlyHelp-Signature: sha256=<hex HMAC-SHA256>``;
- email: header ``X-EarlyHelp-Idempotency-Key`` and a ``Message-ID`` derived from the key.

Reminders and the next tier are new notifications (new keys) about the same ``escalation_id``, which
is in every payload so a receiver can thread them onto one case.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import logging
import smtplib
from dataclasses import dataclass, field
from email import policy as email_policy
from email.message import EmailMessage
from email.utils import formatdate
from typing import Any, Protocol

from bot.escalation.config import EscalationConfig
from bot.escalation.store import NEXT_TIER_CHANNEL, EscalationStore

log = logging.getLogger("bot.escalation")

# long machine-read headers (the idempotency key) stay on one line; 998 is RFC 5322's hard limit
_MAIL_POLICY = email_policy.SMTP.clone(max_line_length=998)
EVENTS = {"created": "escalation.created", "reminder": "escalation.reminder", "next_tier": "escalation.next_tier"}


class DeliveryError(RuntimeError):
    """A channel could not deliver; the message is safe to log (no message text)."""


@dataclass(frozen=True)
class Notification:
    key: str
    channel: str
    kind: str
    attempt: int
    at: dt.datetime
    escalation: dict = field(repr=False)

    @property
    def event(self) -> str:
        return EVENTS[self.kind]

    def payload(self, include_contact: bool) -> dict[str, Any]:
        esc = self.escalation
        doc = {
            "event": self.event,
            "idempotency_key": self.key,
            "escalation_id": esc["id"],
            "urgency": esc["urgency"],
            "area": esc["area"],
            "categories": esc["categories"],
            "excerpt": esc["excerpt"],
            "created_at": esc["created_at"],
            "status": esc["status"],
            "reminder": esc["reminders"] if self.kind == "reminder" else None,
            "tier": 2 if self.kind == "next_tier" else 1,
            "sent_at": self.at.isoformat(),
        }
        if include_contact:
            doc["contact"] = esc["contact"]
        return doc


class Channel(Protocol):
    name: str

    async def send(self, note: Notification) -> dict | None: ...

    async def close(self) -> None: ...


def sign(body: bytes, secret: str) -> str:
    """The ``X-EarlyHelp-Signature`` header value for ``body``."""
    return "sha256=" + hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()


def verify(body: bytes, secret: str, header: str | None) -> bool:
    """What a receiver does: constant-time check of the signature header."""
    return bool(header) and hmac.compare_digest(sign(body, secret), header)


class InboxChannel:
    """The duty inbox in the same database: delivering makes the escalation visible there."""

    name = "inbox"

    def __init__(self, store: EscalationStore):
        self.store = store

    async def send(self, note: Notification) -> dict | None:
        # the inbox row is made visible in the same transaction that marks this notification delivered
        return {"inbox": True}

    async def close(self) -> None:
        return None


class WebhookChannel:
    """A JSON POST, signed with HMAC-SHA256, with the idempotency key as a header; 2xx means delivered."""

    def __init__(self, url: str, secret: str, *, name: str = "webhook", timeout: float = 15.0, include_contact: bool = True):
        if not secret:
            raise ValueError("a webhook needs a secret to sign with")
        self.name = name
        self.url = url
        self.secret = secret
        self.timeout = timeout
        self.include_contact = include_contact
        self._session = None

    async def _client(self):
        import aiohttp

        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=self.timeout))
        return self._session

    async def send(self, note: Notification, extra: dict | None = None) -> dict | None:
        import aiohttp

        doc = note.payload(self.include_contact)
        if extra:
            doc.update(extra)
        body = json.dumps(doc, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8")
        headers = {
            "Content-Type": "application/json",
            "Idempotency-Key": note.key,
            "X-EarlyHelp-Signature": sign(body, self.secret),
            "X-EarlyHelp-Event": note.event,
        }
        session = await self._client()
        try:
            async with session.post(self.url, data=body, headers=headers) as response:
                await response.read()
                if not 200 <= response.status < 300:
                    raise DeliveryError(f"webhook answered HTTP {response.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as err:
            raise DeliveryError(f"webhook unreachable: {type(err).__name__}") from err
        return {"status": response.status}

    async def close(self) -> None:
        if self._session is not None and not self._session.closed:
            await self._session.close()


def _subject(note: Notification) -> str:
    esc = note.escalation
    where = f" in {esc['area']}" if esc["area"] else ""
    urgency = "IMMEDIATE DANGER" if esc["urgency"] == "immediate" else "Urgent"
    if note.kind == "reminder":
        return f"[Early Help] REMINDER {esc['reminders']}: not yet acknowledged - {urgency} safeguarding escalation{where}"
    if note.kind == "next_tier":
        return f"[Early Help] NOT ACKNOWLEDGED by the duty team - {urgency} safeguarding escalation{where}"
    return f"[Early Help] {urgency} safeguarding escalation{where}"


def _body(note: Notification, extra_lines: list[str]) -> str:
    esc = note.escalation
    lines = [
        _subject(note).removeprefix("[Early Help] "),
        "",
        f"Reference: {esc['id']}",
        f"Raised: {esc['created_at']}",
        f"Area: {esc['area'] or 'not known'}",
        f"Urgency: {esc['urgency']}",
        f"Concerns: {', '.join(esc['categories']) or 'not categorised'}",
        f"What they said (redacted): {esc['excerpt']}",
    ]
    if esc["contact"]:
        lines.append("The person left contact details: see the duty inbox.")
    lines += extra_lines
    lines += ["", f"Acknowledge in the duty inbox, or: earlyhelp escalations ack {esc['id']} --by YOUR-NAME"]
    return "\n".join(lines) + "\n"


class SmtpChannel:
    """Email to the duty team over SMTP (optionally STARTTLS and login); no contact details in the email."""

    def __init__(self, host: str, port: int, sender: str, to: list[str] | tuple[str, ...], *, name: str = "email",
                 starttls: bool = False, user: str | None = None, password: str | None = None, timeout: float = 15.0,
                 config: EscalationConfig | None = None):
        self.name = name
        self.config = config
        self.host, self.port, self.sender, self.to = host, port, sender, tuple(to)
        self.starttls, self.user, self.password, self.timeout = starttls, user, password, timeout

    def message(self, note: Notification, to: tuple[str, ...], extra_lines: list[str] | None = None) -> EmailMessage:
        msg = EmailMessage(policy=_MAIL_POLICY)
        msg["From"] = self.sender
        msg["To"] = ", ".join(to)
        msg["Subject"] = _subject(note)
        msg["Date"] = formatdate(note.at.timestamp(), usegmt=True)
        msg["Message-ID"] = f"<{hashlib.sha256(note.key.encode()).hexdigest()[:40]}@earlyhelp.invalid>"
        msg["X-EarlyHelp-Idempotency-Key"] = note.key
        msg["X-EarlyHelp-Escalation"] = note.escalation["id"]
        msg["X-EarlyHelp-Event"] = note.event
        if note.escalation["urgency"] == "immediate":
            msg["Importance"] = "high"
            msg["X-Priority"] = "1"
        msg.set_content(_body(note, extra_lines or []))
        return msg

    def _send_sync(self, msg: EmailMessage, to: tuple[str, ...]) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=self.timeout) as smtp:
            if self.starttls:
                smtp.starttls()
            if self.user:
                smtp.login(self.user, self.password or "")
            refused = smtp.send_message(msg, from_addr=self.sender, to_addrs=list(to))
            if refused and len(refused) == len(to):
                raise DeliveryError("every recipient was refused")

    async def deliver(self, note: Notification, to: tuple[str, ...], extra_lines: list[str] | None = None) -> dict:
        msg = self.message(note, to, extra_lines)
        try:
            await asyncio.to_thread(self._send_sync, msg, to)
        except (OSError, smtplib.SMTPException) as err:
            raise DeliveryError(f"smtp failed: {type(err).__name__}") from err
        return {"recipients": len(to)}

    def duty_now(self, note: Notification) -> tuple[tuple[str, ...], list[str], bool]:
        """Who gets this email at this moment, the lines that say whom to call now, and whether the
        area's office is closed: out of hours the out-of-hours duty addresses come first."""
        area = note.escalation["area"]
        call = area_contact_now(area, note.at)
        lines = [f"Number to call now: {call['name']} {call['phone'] or call['email'] or ''} ({call['hours']})".rstrip()] if call else []
        closed = area_in_hours(area, note.at) is False
        to = self.to
        if closed and self.config is not None:
            ooh = self.config.ooh_recipients(area)
            if ooh:
                to = tuple(dict.fromkeys((*ooh, *self.to)))
            lines.append("Out of hours: the area's office is closed now.")
        return to, lines, closed

    async def send(self, note: Notification) -> dict | None:
        to, lines, closed = self.duty_now(note)
        detail = await self.deliver(note, to, lines)
        detail["out_of_hours"] = closed
        return detail

    async def close(self) -> None:
        return None


def area_contact_now(area: str | None, at: dt.datetime) -> dict | None:
    """The area's number to call at ``at`` about a child at risk (out-of-hours team after hours), from
    the knowledge files; None when the area is unknown or the files cannot be read (never blocks delivery)."""
    if not area:
        return None
    try:
        from bot.areas import get_area
        from bot.contacts import child_at_risk_contacts

        contact = child_at_risk_contacts(get_area(area), at)[0]
    except Exception:  # noqa: BLE001 - knowledge trouble must not stop an escalation
        log.warning("next tier: no knowledge contact for area %r", area)
        return None
    return {"name": contact.name, "phone": contact.phone, "email": contact.email, "hours": contact.hours,
            "answering_now": contact.answering_now}


def area_in_hours(area: str | None, at: dt.datetime) -> bool | None:
    """Whether the area's office is open at ``at`` (its hours and bank holidays from the knowledge files);
    None when the area is unknown or the files cannot be read."""
    if not area:
        return None
    try:
        from bot.areas import get_area
        from bot.contacts import office_open

        return bool(office_open(get_area(area).office_hours, at))
    except Exception:  # noqa: BLE001 - knowledge trouble must not stop an escalation
        log.warning("duty email: no office hours for area %r", area)
        return None


class NextTierChannel:
    """The next tier (out-of-hours or manager): flags the escalation in the inbox, emails the area's
    next-tier addresses and posts to the next-tier webhook when configured, and names the area's number
    to call now (from the knowledge files) in both."""

    name = NEXT_TIER_CHANNEL

    def __init__(self, store: EscalationStore, config: EscalationConfig, *, smtp: SmtpChannel | None = None,
                 webhook: WebhookChannel | None = None):
        self.store = store
        self.config = config
        self.smtp = smtp
        self.webhook = webhook

    async def send(self, note: Notification) -> dict | None:
        area = note.escalation["area"]
        call = area_contact_now(area, note.at)
        detail: dict[str, Any] = {"inbox": True, "call": f"{call['name']} {call['phone'] or call['email'] or ''}".strip() if call else None}
        recipients = self.config.next_tier_recipients(area)
        if self.smtp is not None and recipients:
            extra = [f"Number to call now: {detail['call']} ({call['hours']})"] if call else []
            await self.smtp.deliver(note, recipients, extra)
            detail["email_recipients"] = len(recipients)
        if self.webhook is not None:
            await self.webhook.send(note, {"call_now": call})
            detail["webhook"] = True
        return detail

    async def close(self) -> None:
        if self.webhook is not None:
            await self.webhook.close()


def build_channels(store: EscalationStore, config: EscalationConfig | None = None) -> list[Channel]:
    """The channels the configuration turns on: inbox always, email and webhook when set, and the next tier."""
    config = config or EscalationConfig.from_env()
    channels: list[Channel] = [InboxChannel(store)]
    smtp = None
    if config.smtp_host:
        smtp = SmtpChannel(config.smtp_host, config.smtp_port, config.smtp_from, config.smtp_to,
                           starttls=config.smtp_starttls, user=config.smtp_user, password=config.smtp_password,
                           timeout=config.send_timeout, config=config)
        if config.email_enabled:
            channels.append(smtp)
    if config.webhook_enabled:
        channels.append(WebhookChannel(config.webhook_url, config.webhook_secret, timeout=config.send_timeout))
    next_webhook = None
    if config.next_tier_webhook_url:
        next_webhook = WebhookChannel(config.next_tier_webhook_url, config.webhook_secret, name="next_tier_webhook",
                                      timeout=config.send_timeout)
    channels.append(NextTierChannel(store, config, smtp=smtp, webhook=next_webhook))
    return channels
