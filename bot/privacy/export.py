"""Everything stored about one conversation, for a person's subject access request.

A data protection officer runs ``earlyhelp privacy export --session ID``: the turns the web app recorded
(already redacted), any escalation raised from them (with its status), and what Rasa's tracker store
holds for that sender (what the person and the assistant said, and the slots it filled). Exporting is
audited in ``privacy_audit`` like an erasure: when, who, a hash of the session id, counts; never text.
"""
from __future__ import annotations

import datetime as dt
import json

import sqlalchemy as sa

from bot.db import database_url, make_engine
from bot.privacy.erase import metadata, privacy_audit, session_hash, tracker_url

_tracker = sa.MetaData()
# the columns of Rasa's SQL tracker store's ``events`` table that say what happened
tracker_events = sa.Table(
    "events", _tracker,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("sender_id", sa.String(255)),
    sa.Column("type_name", sa.String(255)),
    sa.Column("timestamp", sa.Float),
    sa.Column("data", sa.Text),
)
_KEPT_EVENTS = {"user": ("text",), "bot": ("text",), "slot": ("name", "value")}


def _tracker_events(url: str, sender_id: str) -> tuple[list[dict], str | None]:
    engine = make_engine(url)
    try:
        if not sa.inspect(engine).has_table("events"):
            return [], None
        with engine.connect() as conn:
            rows = conn.execute(sa.select(tracker_events).where(tracker_events.c.sender_id == sender_id)
                                .order_by(tracker_events.c.id)).mappings().all()
    except Exception as err:  # the tracker store is down: export the rest and say so
        return [], type(err).__name__
    finally:
        engine.dispose()
    out = []
    for row in rows:
        keys = _KEPT_EVENTS.get(row["type_name"])
        if not keys:
            continue
        data = json.loads(row["data"] or "{}")
        out.append({"event": row["type_name"],
                    "at": dt.datetime.fromtimestamp(row["timestamp"] or 0, dt.timezone.utc).isoformat(timespec="seconds"),
                    **{k: data.get(k) for k in keys}})
    return out, None


def export_conversation(sender_id: str, *, actor: str, db_url: str | None = None, tracker: str | None = None) -> dict:
    """What is stored about one conversation, as one JSON-ready document (see the module docstring)."""
    from bot.escalation.store import EscalationStore

    if not isinstance(sender_id, str) or not sender_id.strip():
        raise ValueError("a session id is required")
    url = db_url or database_url("earlyhelp")
    store = EscalationStore.open(url)
    try:
        turns = store.messages(sender_id)
        raised = [e for e in store.list() if e.get("session_id") == sender_id]
    finally:
        store.dispose()
    events, tracker_error = _tracker_events(tracker or tracker_url(), sender_id)
    document = {
        "session": sender_id,
        "exported_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "recorded_turns": turns,
        "escalations": [{k: e.get(k) for k in ("id", "area", "created_at", "categories", "urgency", "status", "excerpt")}
                        for e in raised],
        "assistant_tracker": events,
        "tracker_error": tracker_error,
        "note": ("Messages are stored with personal details replaced by placeholders. An escalation already sent "
                 "to the duty team is kept under the council's safeguarding records policy even if the "
                 "conversation is erased."),
    }
    engine = make_engine(url)
    try:
        metadata.create_all(engine)
        with engine.begin() as conn:
            conn.execute(sa.insert(privacy_audit).values(
                at=dt.datetime.now(dt.timezone.utc), actor=actor[:100], action="conversation_exported",
                session_hash=session_hash(sender_id),
                detail={"recorded_turns": len(turns), "escalations": len(raised), "tracker_events": len(events)}))
    finally:
        engine.dispose()
    return document
