"""Tables of the escalation store, and the migrations that create and evolve them.

Four tables, all prefixed ``esc_`` so they can share the ``earlyhelp`` database with other stores:

- ``esc_messages``: every recorded turn (redacted text only), unique per ``(session_id, message_id)``.
- ``esc_escalations``: one row per safeguarding escalation, with its status and follow-up state.
- ``esc_outbox``: one row per notification to send (channel x escalation x kind), claimed with a lease.
- ``esc_audit``: append-only history; database triggers refuse UPDATE and DELETE on it.

Migrations are numbered and applied in order inside one write transaction (``BEGIN IMMEDIATE`` on
SQLite, an advisory lock on PostgreSQL), so two processes opening the store at once are safe.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

import sqlalchemy as sa
from sqlalchemy.engine import Connection

UTC = dt.timezone.utc


class UTCDateTime(sa.types.TypeDecorator):
    """Aware UTC datetimes in and out; stored naive-UTC on SQLite (sortable text), timestamptz on PostgreSQL."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the escalation store; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value, dialect):
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()

schema_version = sa.Table(
    "esc_schema",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("applied_at", UTCDateTime, nullable=False),
)

messages = sa.Table(
    "esc_messages",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("session_id", sa.String(200), nullable=False),
    sa.Column("message_id", sa.String(200), nullable=True),
    sa.Column("speaker", sa.String(40), nullable=True),
    sa.Column("text_redacted", sa.Text, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.UniqueConstraint("session_id", "message_id", name="uq_esc_messages_session_message"),
)
sa.Index("ix_esc_messages_session", messages.c.session_id, messages.c.created_at)

escalations = sa.Table(
    "esc_escalations",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    sa.Column("message_pk", sa.Integer, sa.ForeignKey("esc_messages.id"), nullable=False, unique=True),
    sa.Column("session_id", sa.String(200), nullable=False),
    sa.Column("area", sa.String(100), nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("urgency", sa.String(20), nullable=False),
    sa.Column("urgency_rank", sa.Integer, nullable=False),
    sa.Column("excerpt", sa.Text, nullable=False),
    sa.Column("contact", sa.JSON, nullable=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("acknowledged_at", UTCDateTime, nullable=True),
    sa.Column("acknowledged_by", sa.String(200), nullable=True),
    sa.Column("closed_at", UTCDateTime, nullable=True),
    sa.Column("closed_by", sa.String(200), nullable=True),
    # follow-up state, changed only by conditional updates so two workers never double-schedule
    sa.Column("reminders", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_alert_at", UTCDateTime, nullable=False),
    sa.Column("tier", sa.Integer, nullable=False, server_default="1"),
    sa.Column("next_tier_at", UTCDateTime, nullable=True),
    # what the duty inbox shows (set by the inbox channel when it "delivers")
    sa.Column("inbox_visible_at", UTCDateTime, nullable=True),
    sa.Column("inbox_alert_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("urgency IN ('immediate', 'urgent')", name="ck_esc_urgency"),
    sa.CheckConstraint("status IN ('open', 'acknowledged', 'closed')", name="ck_esc_status"),
)
sa.Index("ix_esc_escalations_queue", escalations.c.status, escalations.c.urgency_rank, escalations.c.created_at)

outbox = sa.Table(
    "esc_outbox",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.String(36), sa.ForeignKey("esc_escalations.id"), nullable=False),
    sa.Column("channel", sa.String(40), nullable=False),
    sa.Column("kind", sa.String(20), nullable=False),
    sa.Column("idempotency_key", sa.String(200), nullable=False, unique=True),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("next_attempt_at", UTCDateTime, nullable=False),
    sa.Column("lease_until", UTCDateTime, nullable=True),
    sa.Column("claim_token", sa.String(64), nullable=True),
    sa.Column("claimed_by", sa.String(200), nullable=True),
    sa.Column("last_error", sa.String(300), nullable=True),
    sa.Column("delivered_at", UTCDateTime, nullable=True),
    sa.CheckConstraint("kind IN ('created', 'reminder', 'next_tier')", name="ck_esc_outbox_kind"),
    sa.CheckConstraint(
        "status IN ('pending', 'sending', 'delivered', 'cancelled')", name="ck_esc_outbox_status"
    ),
)
sa.Index("ix_esc_outbox_due", outbox.c.status, outbox.c.next_attempt_at)
sa.Index("ix_esc_outbox_escalation", outbox.c.escalation_id)

audit = sa.Table(
    "esc_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("escalation_id", sa.String(36), sa.ForeignKey("esc_escalations.id"), nullable=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("detail", sa.JSON, nullable=True),
)
sa.Index("ix_esc_audit_escalation", audit.c.escalation_id, audit.c.id)

TABLES = [schema_version, messages, escalations, outbox, audit]

_SQLITE_APPEND_ONLY = [
    """CREATE TRIGGER IF NOT EXISTS esc_audit_no_update BEFORE UPDATE ON esc_audit
       BEGIN SELECT RAISE(ABORT, 'esc_audit is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS esc_audit_no_delete BEFORE DELETE ON esc_audit
       BEGIN SELECT RAISE(ABORT, 'esc_audit is append-only'); END""",
]

_POSTGRES_APPEND_ONLY = [
    """CREATE OR REPLACE FUNCTION esc_audit_append_only() RETURNS trigger AS $$
       BEGIN RAISE EXCEPTION 'esc_audit is append-only'; END; $$ LANGUAGE plpgsql""",
    "DROP TRIGGER IF EXISTS esc_audit_no_change ON esc_audit",
    """CREATE TRIGGER esc_audit_no_change BEFORE UPDATE OR DELETE ON esc_audit
       FOR EACH ROW EXECUTE FUNCTION esc_audit_append_only()""",
    "DROP TRIGGER IF EXISTS esc_audit_no_truncate ON esc_audit",
    """CREATE TRIGGER esc_audit_no_truncate BEFORE TRUNCATE ON esc_audit
       FOR EACH STATEMENT EXECUTE FUNCTION esc_audit_append_only()""",
]


def _v1_create(conn: Connection) -> None:
    metadata.create_all(conn, tables=[messages, escalations, outbox, audit])
    statements = _POSTGRES_APPEND_ONLY if conn.dialect.name == "postgresql" else _SQLITE_APPEND_ONLY
    for statement in statements:
        conn.exec_driver_sql(statement)


# (version, what it does, function). Append new migrations; never edit an applied one.
MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "messages, escalations, outbox, append-only audit", _v1_create),
]
LATEST = MIGRATIONS[-1][0]


def current_version(conn: Connection) -> int:
    if not sa.inspect(conn).has_table(schema_version.name):
        return 0
    return conn.execute(sa.select(sa.func.max(schema_version.c.version))).scalar() or 0


def migrate(conn: Connection) -> int:
    """Bring the schema up to ``LATEST`` inside the caller's (exclusive) transaction; returns the version."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SELECT pg_advisory_xact_lock(7355608001)")
    metadata.create_all(conn, tables=[schema_version])
    version = current_version(conn)
    for number, _what, apply in MIGRATIONS:
        if number > version:
            apply(conn)
            conn.execute(sa.insert(schema_version).values(version=number, applied_at=dt.datetime.now(UTC)))
            version = number
    return version
