"""Erasing one conversation: what a person asks for with "Delete this chat" (and what a DPO can do for them).

```python
from bot.privacy.erase import erase_conversation
result = erase_conversation("web-3f2a...", actor="the person, in the chat")
result.kept_for_safeguarding   # True when a message had already been escalated to the duty team
```

What goes, in one call:

* **Rasa's tracker store**: every event of that sender id (the ``events`` table of Rasa's SQL tracker
  store: ``$EARLYHELP_HOME/rasa-tracker.db``, or the ``DATABASE_URL`` database on PostgreSQL, as the
  runner configures Rasa);
* **the turns the web app recorded** (``esc_messages``), except a message that raised an escalation:
  that one, and the escalation, stay under the council's safeguarding records policy, and the answer
  says so;
* the web app's chat session for it (``web_chat_sessions``: its area, who is speaking and the redacted text
  of an unanswered safety question), so a data protection officer's erasure also ends a chat that is
  still open (the widget's "Delete this chat" then starts a new one).

Every erasure is written to ``privacy_audit``: when, who asked, a hash of the session id (so a later
request about the same session can be matched without keeping the id itself) and the counts, never text.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
from dataclasses import asdict, dataclass, field

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from bot.db import database_url, make_engine
from bot.paths import home

log = logging.getLogger("bot.privacy")

# what a data protection officer is told whenever an erasure keeps something (the CLI and the duty inbox)
SAFEGUARDING_NOTE = ("The message(s) that raised an escalation, and the escalation, are kept under the council's "
                     "safeguarding records policy; everything else about this conversation was erased.")

metadata = sa.MetaData()
privacy_audit = sa.Table(
    "privacy_audit",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(100), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("session_hash", sa.String(64), nullable=False, index=True),
    sa.Column("detail", sa.JSON, nullable=False),
)

# Rasa's SQL tracker store table (rasa/core/tracker_store.py, SQLTrackerStore.SQLEvent): only the columns
# we need to find a conversation's rows.
_tracker = sa.MetaData()
tracker_events = sa.Table("events", _tracker, sa.Column("id", sa.Integer, primary_key=True),
                          sa.Column("sender_id", sa.String(255)))
# the web app's chat sessions (bot.web.storage.chat_sessions): only the column that names the conversation
_web = sa.MetaData()
web_chat_sessions = sa.Table("web_chat_sessions", _web, sa.Column("id_hash", sa.String(64), primary_key=True),
                             sa.Column("sender_id", sa.String(64)))


def tracker_url() -> str:
    """Where Rasa keeps its trackers, as ``bot.runner`` configures it: ``EARLYHELP_TRACKER_URL`` if set,
    else the ``DATABASE_URL`` database when it is PostgreSQL, else ``$EARLYHELP_HOME/rasa-tracker.db``."""
    explicit = os.environ.get("EARLYHELP_TRACKER_URL", "").strip()
    if explicit:
        return explicit
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "postgresql+")):
        from bot.db import database_url

        return database_url()  # the same database, with the driver the project installs
    return f"sqlite:///{home() / 'rasa-tracker.db'}"


def session_hash(sender_id: str) -> str:
    return hashlib.sha256(f"earlyhelp-session:{sender_id}".encode()).hexdigest()


@dataclass
class Erasure:
    """What one erasure removed and kept (counts only)."""

    tracker_events: int = 0
    messages: int = 0
    kept_messages: int = 0
    kept_escalations: list[str] = field(default_factory=list)
    tracker_error: str | None = None
    chat_sessions: int = 0

    @property
    def kept_for_safeguarding(self) -> bool:
        return bool(self.kept_escalations)

    def to_dict(self) -> dict:
        return {**asdict(self), "kept_for_safeguarding": self.kept_for_safeguarding}


def _erase_tracker(engine: Engine, sender_id: str) -> int:
    if not sa.inspect(engine).has_table("events"):
        return 0  # Rasa has not stored anything here yet
    with engine.begin() as conn:
        return conn.execute(sa.delete(tracker_events).where(tracker_events.c.sender_id == sender_id)).rowcount or 0


def _erase_messages(engine: Engine, sender_id: str) -> tuple[int, int, list[str]]:
    """Delete the recorded turns of the session except those that raised an escalation."""
    from bot.escalation.schema import escalations, messages

    inspector = sa.inspect(engine)
    if not inspector.has_table(messages.name):
        return 0, 0, []
    with engine.begin() as conn:
        kept = conn.execute(sa.select(escalations.c.id, escalations.c.message_pk)
                            .where(escalations.c.session_id == sender_id)).all()
        kept_pks = [row.message_pk for row in kept]
        query = sa.delete(messages).where(messages.c.session_id == sender_id)
        if kept_pks:
            query = query.where(messages.c.id.not_in(kept_pks))
        deleted = conn.execute(query).rowcount or 0
    return deleted, len(kept_pks), [row.id for row in kept]


def _erase_chat_session(engine: Engine, sender_id: str) -> int:
    if not sa.inspect(engine).has_table(web_chat_sessions.name):
        return 0
    with engine.begin() as conn:
        return conn.execute(sa.delete(web_chat_sessions).where(web_chat_sessions.c.sender_id == sender_id)).rowcount or 0


def _count_tracker(engine: Engine, sender_id: str) -> int:
    if not sa.inspect(engine).has_table("events"):
        return 0
    with engine.connect() as conn:
        return conn.execute(sa.select(sa.func.count()).select_from(tracker_events)
                            .where(tracker_events.c.sender_id == sender_id)).scalar_one()


def _stored(engine: Engine, sender_id: str) -> tuple[int, list[dict]]:
    """(recorded turns, escalations raised from them as {id, area, message_pk}) of one session."""
    from bot.escalation.schema import escalations, messages

    if not sa.inspect(engine).has_table(messages.name):
        return 0, []
    with engine.connect() as conn:
        turns = conn.execute(sa.select(sa.func.count()).select_from(messages)
                             .where(messages.c.session_id == sender_id)).scalar_one()
        raised = [dict(r) for r in conn.execute(sa.select(escalations.c.id, escalations.c.area, escalations.c.message_pk)
                                                .where(escalations.c.session_id == sender_id)).mappings()]
    return turns, raised


def _tracker_areas(engine: Engine, sender_id: str) -> set[str]:
    import json

    from bot.privacy.export import tracker_events as full_events

    if not sa.inspect(engine).has_table("events"):
        return set()
    with engine.connect() as conn:
        rows = conn.execute(sa.select(full_events.c.data).where(full_events.c.sender_id == sender_id,
                                                                full_events.c.type_name == "slot"))
        found = set()
        for (data,) in rows:
            slot = json.loads(data or "{}")
            if slot.get("name") == "area" and isinstance(slot.get("value"), str):
                found.add(slot["value"])
    return found


@dataclass
class Stored:
    """What is stored about one conversation, counted without erasing anything (for a confirmation step)."""

    tracker_events: int = 0
    messages: int = 0
    kept_escalations: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)  # the areas the conversation is known to be about
    tracker_error: str | None = None

    @property
    def nothing(self) -> bool:
        return not (self.tracker_events or self.messages or self.kept_escalations)

    @property
    def to_erase(self) -> int:
        return self.messages - len(self.kept_escalations)


def stored_about(sender_id: str, *, engine: Engine, tracker: str | None = None) -> Stored:
    """Count what ``erase_conversation`` would erase and keep, and the conversation's areas (from its
    escalations and Rasa's ``area`` slot), erasing nothing."""
    if not isinstance(sender_id, str) or not sender_id.strip():
        raise ValueError("a session id is required")
    result = Stored()
    result.messages, raised = _stored(engine, sender_id)
    result.kept_escalations = [r["id"] for r in raised]
    areas = {r["area"] for r in raised if r["area"]}
    tracker = tracker or tracker_url()
    same = tracker == str(engine.url.render_as_string(hide_password=False))
    tracker_engine = engine if same else make_engine(tracker)
    try:
        result.tracker_events = _count_tracker(tracker_engine, sender_id)
        areas |= _tracker_areas(tracker_engine, sender_id)
    except Exception as err:
        result.tracker_error = type(err).__name__
    finally:
        if tracker_engine is not engine:
            tracker_engine.dispose()
    result.areas = sorted(areas)
    return result


def session_of_escalation(escalation_id: str, *, engine: Engine) -> str | None:
    """The session (sender) id an escalation was raised from, or None: a duty team knows the escalation's
    id, the person does not know their session id."""
    from bot.escalation.schema import escalations

    if not sa.inspect(engine).has_table(escalations.name):
        return None
    with engine.connect() as conn:
        return conn.execute(sa.select(escalations.c.session_id).where(escalations.c.id == escalation_id)).scalar()


def erase_conversation(sender_id: str, *, actor: str, db_url: str | None = None, tracker: str | None = None,
                       engine: Engine | None = None) -> Erasure:
    """Erase what is stored about one conversation (see the module docstring) and audit it.

    ``engine`` (or ``db_url``, default ``DATABASE_URL`` / ``$EARLYHELP_HOME/earlyhelp.db``) is the project's
    database; ``tracker`` is Rasa's tracker store URL (default ``tracker_url()``). A tracker store that cannot
    be reached is reported in ``tracker_error`` (and the audit row), not raised: the rest is still erased.
    """
    if not isinstance(sender_id, str) or not sender_id.strip():
        raise ValueError("a session id is required")
    own = engine is None
    engine = engine or make_engine(db_url or database_url("earlyhelp"))
    result = Erasure()
    try:
        result.messages, result.kept_messages, result.kept_escalations = _erase_messages(engine, sender_id)
        result.chat_sessions = _erase_chat_session(engine, sender_id)
        tracker = tracker or tracker_url()
        same = tracker == str(engine.url.render_as_string(hide_password=False))
        tracker_engine = engine if same else make_engine(tracker)
        try:
            result.tracker_events = _erase_tracker(tracker_engine, sender_id)
        except Exception as err:  # the tracker store is down: say so, and still audit what was done
            result.tracker_error = type(err).__name__
            log.error("erasing the tracker of session %s failed: %s", sender_id[-8:], type(err).__name__)
        finally:
            if tracker_engine is not engine:
                tracker_engine.dispose()
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(privacy_audit).values(
                at=dt.datetime.now(dt.timezone.utc), actor=actor[:100], action="conversation_erased",
                session_hash=session_hash(sender_id), detail=result.to_dict()))
    finally:
        if own:
            engine.dispose()
    log.info("conversation erased: session=%s tracker_events=%d messages=%d kept=%d", sender_id[-8:],
             result.tracker_events, result.messages, result.kept_messages)
    return result


def erasures(engine: Engine) -> list[dict]:
    """The privacy audit, oldest first."""
    metadata.create_all(engine)
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(sa.select(privacy_audit).order_by(privacy_audit.c.id)).mappings()]
