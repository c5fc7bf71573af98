"""The durable record of turns and escalations, and the outbox that tells the duty team.

``record_turn`` writes the turn, the escalation, one outbox row per channel and the ``created`` audit row
in ONE transaction and returns only after it committed: a reply shown to a person means the
escalation is on disk (SQLite WAL with ``synchronous=FULL``, or PostgreSQL). Delivery happens later,
in :class:`bot.escalation.worker.DeliveryWorker`, from the outbox, so a crash between the two loses
nothing: an undelivered outbox row is simply delivered by the next worker to run.

On SQLite every write transaction starts with ``BEGIN IMMEDIATE`` (the write lock is taken first, so a
transaction never fails half-way on a lock upgrade); PostgreSQL uses its default READ COMMITTED and
``FOR UPDATE SKIP LOCKED`` to claim outbox rows.
"""
from __future__ import annotations

import datetime as dt
import time
import uuid
from contextlib import contextmanager
from typing import Any, Callable, Iterator

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError, OperationalError

from bot.db import database_url, make_engine
from bot.errors import BadInput
from bot.escalation import audit as audit_log
from bot.escalation.config import EscalationConfig
from bot.escalation.schema import UTC, escalations, messages, migrate, outbox

URGENCY_RANK = {"immediate": 0, "urgent": 1}
STATUSES = ("open", "acknowledged", "closed")
EXCERPT_CHARS = 280
NEXT_TIER_CHANNEL = "next_tier"
Clock = Callable[[], dt.datetime]

# The statements of the commit path, built once: executed with a dict of parameters they hit SQLAlchemy's
# compiled cache, where building ``insert(...).values(literals)`` per call cost more than SQLite itself
# (measured in docs/safeguarding.md: most of a commit's time on a loaded machine was statement building).
_FIND_MESSAGE = sa.select(messages.c.id).where(messages.c.session_id == sa.bindparam("session_id"),
                                               messages.c.message_id == sa.bindparam("message_id"))
_FIND_ESCALATION = sa.select(escalations.c.id).where(escalations.c.message_pk == sa.bindparam("message_pk"))
_INSERT_MESSAGE = sa.insert(messages).returning(messages.c.id)
_INSERT_ESCALATION = sa.insert(escalations)
_INSERT_OUTBOX = sa.insert(outbox)


class UnknownEscalation(BadInput):
    def __init__(self, escalation_id: object):
        self.escalation_id = escalation_id
        super().__init__(f"no escalation with id {escalation_id!r}")


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


def excerpt(text: str, limit: int = EXCERPT_CHARS) -> str:
    """The redacted text cut to about ``limit`` characters, at a word boundary when there is one near."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= limit * 0.7:
        cut = cut[:space]
    return cut.rstrip() + "…"


def _iso(value: dt.datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _who(by: object) -> str:
    if not isinstance(by, str) or not by.strip():
        raise BadInput("'by' (who is doing this) is required")
    by = by.strip()
    if len(by) > 200:
        raise BadInput("'by' must be at most 200 characters")
    return by


def _is_busy(err: OperationalError) -> bool:
    text = str(err.orig).lower() if err.orig is not None else str(err).lower()
    return "locked" in text or "busy" in text


def _install_sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not pysqlite, decide where transactions begin; writes take the lock first."""

    @event.listens_for(engine, "connect")
    def _explicit(dbapi_connection, _record):  # pragma: no cover - trivial
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn):
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("eh_write") else "BEGIN")


class EscalationStore:
    """Turns, escalations, their outbox and audit log, in one database (see module docstring)."""

    def __init__(self, engine: Engine, *, channels: list[str], clock: Clock = utcnow):
        if "inbox" not in channels:
            raise BadInput("the duty inbox channel is always on; channels must include 'inbox'")
        if NEXT_TIER_CHANNEL in channels:
            raise BadInput("'next_tier' is not a primary channel; it is used only after next_tier_after")
        self.engine = engine
        self.channels = list(dict.fromkeys(channels))
        self.clock = clock
        self.is_sqlite = engine.dialect.name == "sqlite"
        with self._tx() as conn:
            self.schema_version = migrate(conn)

    @classmethod
    def open(
        cls,
        url: str | None = None,
        *,
        channels: list[str] | None = None,
        clock: Clock | None = None,
        config: EscalationConfig | None = None,
    ) -> "EscalationStore":
        """Open (creating or migrating the tables) the store at ``url``, default ``database_url("earlyhelp")``.

        ``channels`` are the primary channels each escalation is queued for; by default the ones the
        environment configures (``inbox`` always, ``email``/``webhook`` when set up).
        """
        url = url or database_url("earlyhelp")
        engine = make_engine(url)
        if engine.dialect.name == "sqlite":
            _install_sqlite_transactions(engine)
        if channels is None:
            channels = (config or EscalationConfig.from_env()).channel_names()
        return cls(engine, channels=channels, clock=clock or utcnow)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- transactions ------------------------------------------------------------------------------

    @contextmanager
    def _tx(self, write: bool = True) -> Iterator[Connection]:
        with self.engine.connect() as conn:
            if write:
                conn = conn.execution_options(eh_write=True)
            with conn.begin():
                yield conn

    def _retrying(self, work: Callable[[Connection], Any], write: bool = True) -> Any:
        """Run ``work`` in one transaction; retry a few times if the database stays locked past its timeout."""
        for attempt in range(4):
            try:
                with self._tx(write) as conn:
                    return work(conn)
            except OperationalError as err:
                if not _is_busy(err) or attempt == 3:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def _now(self) -> dt.datetime:
        now = self.clock()
        if now.tzinfo is None:
            raise ValueError("the store's clock must return aware datetimes")
        return now.astimezone(UTC)

    # -- the turn --------------------------------------------------------------------------------

    def record_turn(
        self,
        session_id: str,
        text_redacted: str,
        *,
        area: str | None,
        categories: list[str],
        immediate_danger: bool,
        escalate: bool,
        contact: dict | None = None,
        speaker: str | None = None,
        message_id: str | None = None,
    ) -> dict | None:
        """Record one (already redacted) turn, and its escalation when ``escalate``; ONE transaction.

        Returns the escalation as a dict, or None when the turn does not escalate. Immediate danger
        always escalates. Sending the same ``message_id`` again for the session returns what the first
        call recorded and writes nothing.
        """
        if not isinstance(session_id, str) or not session_id.strip():
            raise BadInput("'session_id' is required")
        if not isinstance(text_redacted, str):
            raise BadInput("'text_redacted' must be a string")
        if not isinstance(categories, (list, tuple)) or not all(isinstance(c, str) for c in categories):
            raise BadInput("'categories' must be a list of strings")
        if contact is not None and not isinstance(contact, dict):
            raise BadInput("'contact' must be a dict or None")
        if message_id is not None and (not isinstance(message_id, str) or not message_id):
            raise BadInput("'message_id' must be a non-empty string or None")
        escalate = bool(escalate or immediate_danger)
        now = self._now()

        def work(conn: Connection) -> dict | None:
            if message_id is not None:
                found = self._recorded(conn, session_id, message_id)
                if found is not None:
                    return found[1]
            message_pk = conn.execute(_INSERT_MESSAGE, {
                "session_id": session_id, "message_id": message_id, "speaker": speaker,
                "text_redacted": text_redacted, "created_at": now}).scalar_one()
            if not escalate:
                return None
            escalation_id = str(uuid.uuid4())
            urgency = "immediate" if immediate_danger else "urgent"
            short = excerpt(text_redacted)
            conn.execute(_INSERT_ESCALATION, {
                "id": escalation_id, "message_pk": message_pk, "session_id": session_id, "area": area,
                "created_at": now, "categories": list(categories), "urgency": urgency,
                "urgency_rank": URGENCY_RANK[urgency], "excerpt": short, "contact": contact or None,
                "status": "open", "reminders": 0, "last_alert_at": now, "tier": 1})
            deliveries = []
            rows = []
            for channel in self.channels:
                key = f"{escalation_id}/{channel}/created"
                rows.append({"escalation_id": escalation_id, "channel": channel, "kind": "created",
                             "idempotency_key": key, "status": "pending", "attempts": 0, "created_at": now,
                             "next_attempt_at": now})
                deliveries.append({"channel": channel, "kind": "created", "key": key, "status": "pending",
                                   "attempts": 0, "delivered_at": None, "last_error": None})
            conn.execute(_INSERT_OUTBOX, rows)
            audit_log.record(
                conn,
                escalation_id,
                now,
                "system",
                "created",
                {"urgency": urgency, "area": area, "categories": list(categories), "channels": self.channels,
                 "contact_given": contact is not None},
            )
            return {
                "id": escalation_id, "session_id": session_id, "message_id": message_id, "area": area,
                "created_at": now.isoformat(), "categories": list(categories), "urgency": urgency,
                "excerpt": short, "contact": contact or None, "status": "open",
                "acknowledged_at": None, "acknowledged_by": None, "closed_at": None, "closed_by": None,
                "reminders": 0, "tier": 1, "next_tier_at": None, "inbox_visible_at": None, "inbox_alert_at": None,
                "deliveries": deliveries,
            }

        try:
            return self._retrying(work)
        except IntegrityError:
            if message_id is None:
                raise
            # a concurrent call with the same message_id committed first: return what it recorded
            with self._tx(write=False) as conn:
                found = self._recorded(conn, session_id, message_id)
            if found is None:
                raise
            return found[1]

    def _recorded(self, conn: Connection, session_id: str, message_id: str) -> tuple[int, dict | None] | None:
        pk = conn.execute(_FIND_MESSAGE, {"session_id": session_id, "message_id": message_id}).scalar()
        if pk is None:
            return None
        escalation_id = conn.execute(_FIND_ESCALATION, {"message_pk": pk}).scalar()
        return pk, (self._load(conn, escalation_id) if escalation_id else None)

    @staticmethod
    def _queue(conn: Connection, escalation_id: str, channel: str, kind: str, key: str, now: dt.datetime) -> None:
        conn.execute(
            sa.insert(outbox).values(
                escalation_id=escalation_id,
                channel=channel,
                kind=kind,
                idempotency_key=key,
                status="pending",
                attempts=0,
                created_at=now,
                next_attempt_at=now,
            )
        )

    # -- reading ---------------------------------------------------------------------------------

    def _load(self, conn: Connection, escalation_id: str) -> dict | None:
        found = self._load_many(conn, sa.select(escalations).where(escalations.c.id == escalation_id))
        return found[0] if found else None

    def _load_many(self, conn: Connection, query: sa.Select) -> list[dict]:
        rows = list(conn.execute(query.add_columns(messages.c.message_id).join(messages, messages.c.id == escalations.c.message_pk)).mappings())
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        deliveries: dict[str, list[dict]] = {i: [] for i in ids}
        for chunk in range(0, len(ids), 500):
            for d in conn.execute(
                sa.select(outbox).where(outbox.c.escalation_id.in_(ids[chunk:chunk + 500])).order_by(outbox.c.id)
            ).mappings():
                deliveries[d["escalation_id"]].append(
                    {
                        "channel": d["channel"],
                        "kind": d["kind"],
                        "key": d["idempotency_key"],
                        "status": d["status"],
                        "attempts": d["attempts"],
                        "delivered_at": _iso(d["delivered_at"]),
                        "last_error": d["last_error"],
                    }
                )
        return [self._to_dict(row, deliveries[row["id"]]) for row in rows]

    @staticmethod
    def _to_dict(row: Any, deliveries: list[dict]) -> dict:
        return {
            "id": row["id"],
            "session_id": row["session_id"],
            "message_id": row["message_id"],
            "area": row["area"],
            "created_at": _iso(row["created_at"]),
            "categories": list(row["categories"] or []),
            "urgency": row["urgency"],
            "excerpt": row["excerpt"],
            "contact": row["contact"],
            "status": row["status"],
            "acknowledged_at": _iso(row["acknowledged_at"]),
            "acknowledged_by": row["acknowledged_by"],
            "closed_at": _iso(row["closed_at"]),
            "closed_by": row["closed_by"],
            "reminders": row["reminders"],
            "tier": row["tier"],
            "next_tier_at": _iso(row["next_tier_at"]),
            "inbox_visible_at": _iso(row["inbox_visible_at"]),
            "inbox_alert_at": _iso(row["inbox_alert_at"]),
            "deliveries": deliveries,
        }

    def list(self, status: str | None = None, areas: list[str] | None = None) -> list[dict]:
        """Escalations, most urgent first (immediate danger before urgent), then oldest first."""
        query = sa.select(escalations)
        if status is not None:
            if status not in STATUSES:
                raise BadInput(f"unknown status {status!r}; use one of {', '.join(STATUSES)}")
            query = query.where(escalations.c.status == status)
        if areas is not None:
            query = query.where(escalations.c.area.in_(list(areas)))
        query = query.order_by(escalations.c.urgency_rank, escalations.c.created_at, escalations.c.id)
        with self._tx(write=False) as conn:
            return self._load_many(conn, query)

    def get(self, escalation_id: str) -> dict | None:
        with self._tx(write=False) as conn:
            return self._load(conn, escalation_id)

    def get_many(self, ids: list[str]) -> dict[str, dict]:
        with self._tx(write=False) as conn:
            return {e["id"]: e for e in self._load_many(conn, sa.select(escalations).where(escalations.c.id.in_(list(ids))))}

    def audit(self, escalation_id: str) -> list[dict]:
        with self._tx(write=False) as conn:
            return audit_log.history(conn, escalation_id)

    def messages(self, session_id: str) -> list[dict]:
        """The recorded (redacted) turns of one session, oldest first."""
        with self._tx(write=False) as conn:
            rows = conn.execute(
                sa.select(messages).where(messages.c.session_id == session_id).order_by(messages.c.id)
            ).mappings()
            return [
                {"session_id": r["session_id"], "message_id": r["message_id"], "speaker": r["speaker"],
                 "text_redacted": r["text_redacted"], "created_at": _iso(r["created_at"])}
                for r in rows
            ]

    # -- duty team actions -----------------------------------------------------------------------

    def _change(self, escalation_id: str, by: str, apply: Callable[[Connection, Any, dt.datetime], None]) -> dict:
        now = self._now()

        def work(conn: Connection) -> dict:
            row = conn.execute(sa.select(escalations).where(escalations.c.id == escalation_id)).mappings().first()
            if row is None:
                raise UnknownEscalation(escalation_id)
            apply(conn, row, now)
            return self._load(conn, escalation_id)

        return self._retrying(work)

    def _cancel_followups(self, conn: Connection, escalation_id: str) -> None:
        conn.execute(
            sa.update(outbox)
            .where(outbox.c.escalation_id == escalation_id, outbox.c.kind != "created", outbox.c.status == "pending")
            .values(status="cancelled")
        )

    def acknowledge(self, escalation_id: str, by: str) -> dict:
        """The duty team has it: stop reminders and the next tier. Acknowledging twice changes nothing."""
        who = _who(by)

        def apply(conn: Connection, row: Any, now: dt.datetime) -> None:
            if row["status"] != "open":
                return
            conn.execute(
                sa.update(escalations)
                .where(escalations.c.id == escalation_id, escalations.c.status == "open")
                .values(status="acknowledged", acknowledged_at=now, acknowledged_by=who)
            )
            self._cancel_followups(conn, escalation_id)
            audit_log.record(conn, escalation_id, now, who, "acknowledged",
                             {"after_seconds": round((now - row["created_at"]).total_seconds(), 3)})

        return self._change(escalation_id, who, apply)

    def add_note(self, escalation_id: str, by: str, text: str) -> dict:
        """Add a note from the duty team (kept in the audit log); returns the audit row."""
        who = _who(by)
        if not isinstance(text, str) or not text.strip():
            raise BadInput("a note needs some text")
        if len(text) > 4000:
            raise BadInput("a note must be at most 4000 characters")

        def apply(conn: Connection, _row: Any, now: dt.datetime) -> None:
            audit_log.record(conn, escalation_id, now, who, "note", {"text": text.strip()})

        self._change(escalation_id, who, apply)
        return self.audit(escalation_id)[-1]

    def add_contact(self, escalation_id: str, contact: dict, by: str) -> dict:
        """Contact details the person gave after the escalation: merged into it (for the duty team to call
        back); the audit row names the fields given, not their values."""
        who = _who(by)
        if not isinstance(contact, dict) or not contact or not all(isinstance(k, str) for k in contact):
            raise BadInput("'contact' must be a non-empty dict")

        def apply(conn: Connection, row: Any, now: dt.datetime) -> None:
            merged = {**(row["contact"] or {}), **contact}
            conn.execute(sa.update(escalations).where(escalations.c.id == escalation_id).values(contact=merged))
            audit_log.record(conn, escalation_id, now, who, "contact_added", {"fields": sorted(contact)})

        return self._change(escalation_id, who, apply)

    def record_view(self, escalation_id: str, by: str) -> None:
        """Record that a member of staff opened this escalation (audited)."""
        who = _who(by)

        def apply(conn: Connection, _row: Any, now: dt.datetime) -> None:
            audit_log.record(conn, escalation_id, now, who, "viewed", None)

        self._change(escalation_id, who, apply)

    def close(self, escalation_id: str, by: str) -> dict:
        """Close the escalation (from open or acknowledged); stops reminders. Closing twice changes nothing."""
        who = _who(by)

        def apply(conn: Connection, row: Any, now: dt.datetime) -> None:
            if row["status"] == "closed":
                return
            conn.execute(
                sa.update(escalations)
                .where(escalations.c.id == escalation_id, escalations.c.status != "closed")
                .values(status="closed", closed_at=now, closed_by=who)
            )
            self._cancel_followups(conn, escalation_id)
            audit_log.record(conn, escalation_id, now, who, "closed", {"from": row["status"]})

        return self._change(escalation_id, who, apply)

    # -- the outbox (used by the delivery worker) ------------------------------------------------

    def claim_due(self, channels: list[str], worker: str, now: dt.datetime, lease: dt.timedelta, limit: int = 20) -> list[dict]:
        """Claim up to ``limit`` due notifications for ``channels``: safe with any number of workers.

        A row is due when pending and its retry time has come, or when it is being sent by a worker whose
        lease ran out (that worker died or hung): then it is claimed again and re-sent under the same
        idempotency key. One UPDATE ... WHERE id IN (due rows) RETURNING, inside ``BEGIN IMMEDIATE`` on
        SQLite; on PostgreSQL the due rows are selected ``FOR UPDATE SKIP LOCKED``.

        First notifications of new escalations go before reminders and next-tier notices, then the
        longest due first: nobody has seen a new escalation yet, while a reminder repeats one already
        delivered. (The crash soak found a new escalation's first notice waiting minutes behind a backlog
        of due reminders of older, unacknowledged ones.)
        """
        token = uuid.uuid4().hex
        due = sa.or_(
            sa.and_(outbox.c.status == "pending", outbox.c.next_attempt_at <= now),
            sa.and_(outbox.c.status == "sending", outbox.c.lease_until <= now),
        )
        pick = (
            sa.select(outbox.c.id)
            .where(outbox.c.channel.in_(list(channels)), due)
            .order_by(sa.case((outbox.c.kind == "created", 0), else_=1), outbox.c.next_attempt_at, outbox.c.id)
            .limit(limit)
        )
        if not self.is_sqlite:
            pick = pick.with_for_update(skip_locked=True)
        claim = (
            sa.update(outbox)
            .where(outbox.c.id.in_(pick.scalar_subquery()))
            .values(status="sending", claim_token=token, claimed_by=worker, lease_until=now + lease,
                    attempts=outbox.c.attempts + 1)
            .returning(outbox.c.id)
        )

        with self._tx(write=False) as conn:  # a cheap read first: idle polling never takes the write lock
            if conn.execute(sa.select(outbox.c.id).where(outbox.c.channel.in_(list(channels)), due).limit(1)).first() is None:
                return []

        def work(conn: Connection) -> list[dict]:
            ids = [r[0] for r in conn.execute(claim)]
            if not ids:
                return []
            rows = conn.execute(sa.select(outbox).where(outbox.c.id.in_(ids)).order_by(outbox.c.id)).mappings().all()
            return [dict(r) for r in rows]

        return self._retrying(work)

    def complete(self, results: list[tuple[dict, dict | None, str | None, dt.datetime | None]], now: dt.datetime,
                 actor: str) -> int:
        """Record the outcome of a batch of sends in ONE transaction; returns how many were newly delivered.

        Each result is ``(row, detail, error, retry_at)``: ``error`` None means delivered (once, whichever
        worker finishes first; audited ``notified``; a detail with ``inbox`` makes the escalation visible in
        the duty inbox in this same transaction). Otherwise the row goes back to pending until ``retry_at``
        (only by the worker still holding the claim), audited at attempts 1, 2, 4, 8 ...
        """

        def work(conn: Connection) -> int:
            delivered = 0
            for row, detail, error, retry_at in results:
                if error is None:
                    done = conn.execute(
                        sa.update(outbox)
                        .where(outbox.c.id == row["id"], outbox.c.status == "sending")
                        .values(status="delivered", delivered_at=now, lease_until=None, last_error=None)
                    ).rowcount
                    if not done:
                        continue
                    delivered += 1
                    if detail and detail.get("inbox"):
                        values: dict[str, Any] = {"inbox_visible_at": sa.func.coalesce(escalations.c.inbox_visible_at, now)}
                        if row["kind"] != "created":
                            values["inbox_alert_at"] = now
                        conn.execute(sa.update(escalations).where(escalations.c.id == row["escalation_id"]).values(**values))
                    audit_log.record(conn, row["escalation_id"], now, actor, "notified",
                                     {"channel": row["channel"], "kind": row["kind"], "key": row["idempotency_key"],
                                      "attempts": row["attempts"], **(detail or {})})
                else:
                    assert retry_at is not None
                    done = conn.execute(
                        sa.update(outbox)
                        .where(outbox.c.id == row["id"], outbox.c.status == "sending",
                               outbox.c.claim_token == row["claim_token"])
                        .values(status="pending", next_attempt_at=retry_at, lease_until=None, claim_token=None,
                                last_error=error[:300])
                    ).rowcount
                    attempts = row["attempts"]
                    if done and attempts & (attempts - 1) == 0:
                        audit_log.record(conn, row["escalation_id"], now, actor, "delivery_failed",
                                         {"channel": row["channel"], "kind": row["kind"], "attempts": attempts,
                                          "error": error[:200], "retry_at": retry_at.isoformat()})
            return delivered

        return self._retrying(work)

    def mark_delivered(self, row: dict, now: dt.datetime, actor: str, detail: dict | None = None) -> bool:
        return self.complete([(row, detail, None, None)], now, actor) == 1

    def mark_failed(self, row: dict, now: dt.datetime, actor: str, error: str, retry_at: dt.datetime) -> bool:
        """Put a failed notification back as pending until ``retry_at`` (only if ``row``'s claim still holds)."""
        before = self._row_status(row["id"])
        self.complete([(row, None, error, retry_at)], now, actor)
        return before == ("sending", row["claim_token"]) and self._row_status(row["id"])[0] == "pending"

    def _row_status(self, row_id: int) -> tuple[str, str | None]:
        with self._tx(write=False) as conn:
            found = conn.execute(sa.select(outbox.c.status, outbox.c.claim_token).where(outbox.c.id == row_id)).first()
        return (found[0], found[1]) if found else ("missing", None)

    def cancel(self, row: dict) -> bool:
        """Drop a claimed reminder or next-tier notification whose escalation was acknowledged meanwhile."""

        def work(conn: Connection) -> bool:
            return bool(conn.execute(
                sa.update(outbox)
                .where(outbox.c.id == row["id"], outbox.c.status == "sending", outbox.c.claim_token == row["claim_token"])
                .values(status="cancelled", lease_until=None, claim_token=None)
            ).rowcount)

        return self._retrying(work)

    def schedule_followups(self, now: dt.datetime, renotify_after: dt.timedelta, next_tier_after: dt.timedelta,
                           actor: str) -> dict[str, int]:
        """Queue reminders for open escalations unacknowledged for ``renotify_after`` since the last alert
        (to every primary channel, and to the next tier once it has been told), and the next tier for those open ``next_tier_after`` after creation. Conditional updates make this
        safe to run in several workers at once: each reminder and the next tier are queued exactly once.
        A reminder skips a channel whose previous notification is still undelivered (it is retrying)."""
        due = sa.select(escalations.c.id, escalations.c.reminders, escalations.c.tier, escalations.c.created_at,
                        escalations.c.last_alert_at).where(
            escalations.c.status == "open",
            sa.or_(
                escalations.c.last_alert_at <= now - renotify_after,
                sa.and_(escalations.c.tier == 1, escalations.c.created_at <= now - next_tier_after),
            ),
        ).order_by(escalations.c.urgency_rank, escalations.c.created_at).limit(200)
        with self._tx(write=False) as conn:
            candidates = conn.execute(due).mappings().all()
        counts = {"reminders": 0, "next_tier": 0}
        for cand in candidates:
            def work(conn: Connection, cand=cand) -> tuple[int, int]:
                esc_id = cand["id"]
                reminded = tiered = 0
                if cand["last_alert_at"] <= now - renotify_after:
                    number = cand["reminders"] + 1
                    moved = conn.execute(
                        sa.update(escalations)
                        .where(escalations.c.id == esc_id, escalations.c.status == "open",
                               escalations.c.reminders == cand["reminders"])
                        .values(reminders=number, last_alert_at=now)
                    ).rowcount
                    if moved:
                        busy = set(conn.execute(
                            sa.select(outbox.c.channel).where(outbox.c.escalation_id == esc_id,
                                                              outbox.c.status.in_(("pending", "sending")))
                        ).scalars())
                        # once the next tier has been told, it is reminded too until someone acknowledges
                        targets = self.channels + ([NEXT_TIER_CHANNEL] if cand["tier"] >= 2 else [])
                        queued = [ch for ch in targets if ch not in busy]
                        for ch in queued:
                            self._queue(conn, esc_id, ch, "reminder", f"{esc_id}/{ch}/reminder-{number}", now)
                        audit_log.record(conn, esc_id, now, actor, "reminder",
                                         {"number": number, "channels": queued,
                                          "still_retrying": sorted(busy & set(targets)),
                                          "unacknowledged_seconds": round((now - cand["created_at"]).total_seconds())})
                        reminded = 1
                if cand["tier"] == 1 and cand["created_at"] <= now - next_tier_after:
                    moved = conn.execute(
                        sa.update(escalations)
                        .where(escalations.c.id == esc_id, escalations.c.status == "open", escalations.c.tier == 1)
                        .values(tier=2, next_tier_at=now)
                    ).rowcount
                    if moved:
                        self._queue(conn, esc_id, NEXT_TIER_CHANNEL, "next_tier", f"{esc_id}/{NEXT_TIER_CHANNEL}/tier-2", now)
                        audit_log.record(conn, esc_id, now, actor, "next_tier",
                                         {"tier": 2, "channel": NEXT_TIER_CHANNEL,
                                          "unacknowledged_seconds": round((now - cand["created_at"]).total_seconds())})
                        tiered = 1
                return reminded, tiered

            reminded, tiered = self._retrying(work)
            counts["reminders"] += reminded
            counts["next_tier"] += tiered
        return counts

    def outbox_counts(self) -> dict[str, int]:
        with self._tx(write=False) as conn:
            rows = conn.execute(sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)).all()
        return {status: count for status, count in rows}

    def next_due(self, channels: list[str]) -> dt.datetime | None:
        """When the earliest pending notification for ``channels`` becomes due (for the worker's sleep)."""
        with self._tx(write=False) as conn:
            return conn.execute(
                sa.select(sa.func.min(outbox.c.next_attempt_at)).where(
                    outbox.c.channel.in_(list(channels)), outbox.c.status == "pending")
            ).scalar()
