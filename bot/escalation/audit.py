"""The append-only audit log: who did what to an escalation, and when.

Rows are only ever inserted (the database refuses UPDATE and DELETE on ``esc_audit``, see schema.py).
A row never holds the person's message: at most the action's facts (urgency, channel, reminder number)
and, for a note, the note a member of staff wrote.
"""
from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from bot.escalation.schema import audit

_INSERT = sa.insert(audit)  # built once; executed with parameters it hits the compiled-statement cache

ACTIONS = (
    "created",  # the escalation was recorded (with its outbox rows)
    "notified",  # one notification reached one channel
    "delivery_failed",  # a delivery attempt failed (logged at attempts 1, 2, 4, 8, ...)
    "reminder",  # unacknowledged: a re-notification was queued
    "next_tier",  # unacknowledged too long: the next tier was queued
    "acknowledged",
    "note",
    "contact_added",  # the person gave contact details after the escalation (which fields, never the values)
    "viewed",  # a member of staff opened it (access to safeguarding records is itself recorded)
    "closed",
)


def record(conn: Connection, escalation_id: str, at: dt.datetime, actor: str, action: str, detail: dict | None = None) -> None:
    """Insert one audit row inside the caller's transaction."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action {action!r}")
    conn.execute(_INSERT, {"escalation_id": escalation_id, "at": at, "actor": actor, "action": action, "detail": detail})


def history(conn: Connection, escalation_id: str) -> list[dict[str, Any]]:
    rows = conn.execute(sa.select(audit).where(audit.c.escalation_id == escalation_id).order_by(audit.c.id)).mappings()
    return [
        {
            "id": row["id"],
            "escalation_id": row["escalation_id"],
            "at": row["at"].isoformat(),
            "actor": row["actor"],
            "action": row["action"],
            "detail": row["detail"] or {},
        }
        for row in rows
    ]
