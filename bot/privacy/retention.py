"""Retention: erase conversations once their area's period has passed, and say what was erased (counts).

Run by ``earlyhelp privacy purge`` (cron, or the web app's hourly housekeeping). A conversation's age is
the time since its last message, in Rasa's tracker store or in the web app's recorded turns; its area is
the last ``area`` slot Rasa set. Conversations with no known area get the shortest period of any area:
when unsure, keep less. Messages that raised an escalation are kept with it (``bot.privacy.erase``).
"""
from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass, field
from functools import lru_cache

import sqlalchemy as sa
import yaml
from pydantic import BaseModel, ConfigDict, Field

from bot.db import database_url, make_engine
from bot.errors import BadInput
from bot.paths import knowledge_dir
from bot.privacy.erase import _erase_messages, _erase_tracker, metadata, privacy_audit, tracker_url
from bot.privacy.export import tracker_events


class Period(BaseModel):
    model_config = ConfigDict(extra="forbid")
    conversations_days: int | None = Field(default=None, ge=1, le=3650)
    escalations_years: int | None = Field(default=None, ge=1, le=100)


class RetentionPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    default: Period
    areas: dict[str, Period] = {}

    def conversation_days(self, area: str | None) -> int:
        if area in self.areas:
            return self.areas[area].conversations_days or self.default.conversations_days
        return min([self.default.conversations_days] + [p.conversations_days for p in self.areas.values() if p.conversations_days])


@lru_cache(maxsize=1)
def load_policy() -> RetentionPolicy:
    path = knowledge_dir() / "privacy" / "retention.yml"
    try:
        policy = RetentionPolicy.model_validate(yaml.safe_load(path.read_text()))
    except Exception as err:
        raise BadInput(f"{path}: {err}") from err
    if policy.default.conversations_days is None or policy.default.escalations_years is None:
        raise BadInput(f"{path}: default must set conversations_days and escalations_years")
    return policy


@dataclass
class Purge:
    conversations: int = 0
    tracker_events: int = 0
    messages: int = 0
    kept_messages: int = 0
    escalations_past_retention: int = 0
    by_area: dict[str, int] = field(default_factory=dict)
    dry_run: bool = False


def _sessions(db, tracker) -> dict[str, dict]:
    """session id -> {"last": datetime, "area": str|None} from both stores."""
    from bot.escalation.schema import messages

    sessions: dict[str, dict] = {}

    def seen(sender: str, when: dt.datetime) -> None:
        entry = sessions.setdefault(sender, {"last": when, "area": None})
        entry["last"] = max(entry["last"], when)

    if sa.inspect(db).has_table(messages.name):
        with db.connect() as conn:
            for sender, last in conn.execute(sa.select(messages.c.session_id, sa.func.max(messages.c.created_at))
                                             .group_by(messages.c.session_id)):
                if isinstance(last, str):
                    last = dt.datetime.fromisoformat(last)
                seen(sender, last if last.tzinfo else last.replace(tzinfo=dt.timezone.utc))
    if tracker is not None and sa.inspect(tracker).has_table("events"):
        with tracker.connect() as conn:
            for sender, last in conn.execute(sa.select(tracker_events.c.sender_id, sa.func.max(tracker_events.c.timestamp))
                                             .group_by(tracker_events.c.sender_id)):
                seen(sender, dt.datetime.fromtimestamp(last or 0, dt.timezone.utc))
            rows = conn.execute(sa.select(tracker_events.c.sender_id, tracker_events.c.data)
                                .where(tracker_events.c.type_name == "slot").order_by(tracker_events.c.id))
            for sender, data in rows:
                slot = json.loads(data or "{}")
                if slot.get("name") == "area" and sender in sessions:
                    sessions[sender]["area"] = slot.get("value") or sessions[sender]["area"]
    return sessions


def purge(now: dt.datetime | None = None, *, dry_run: bool = False, db_url: str | None = None,
          tracker: str | None = None, actor: str = "retention") -> Purge:
    """Erase every conversation past its area's period (see the module docstring); audit the counts."""
    from bot.escalation.schema import escalations

    policy = load_policy()
    now = now or dt.datetime.now(dt.timezone.utc)
    db = make_engine(db_url or database_url("earlyhelp"))
    tracker_engine = None
    result = Purge(dry_run=dry_run)
    try:
        try:
            tracker_engine = make_engine(tracker or tracker_url())
            sa.inspect(tracker_engine).has_table("events")
        except Exception:
            tracker_engine = None  # reported by /readyz; the project's own tables are still purged
        for sender, info in _sessions(db, tracker_engine).items():
            days = policy.conversation_days(info["area"])
            if info["last"] > now - dt.timedelta(days=days):
                continue
            result.conversations += 1
            area = info["area"] or "unknown"
            result.by_area[area] = result.by_area.get(area, 0) + 1
            if dry_run:
                continue
            deleted, kept, _ = _erase_messages(db, sender)
            result.messages += deleted
            result.kept_messages += kept
            if tracker_engine is not None:
                result.tracker_events += _erase_tracker(tracker_engine, sender)
        if sa.inspect(db).has_table(escalations.name):
            years = policy.default.escalations_years
            with db.connect() as conn:
                result.escalations_past_retention = conn.execute(
                    sa.select(sa.func.count()).select_from(escalations)
                    .where(escalations.c.created_at < now - dt.timedelta(days=365 * years))).scalar_one()
        if not dry_run and result.conversations:  # an hourly run that erased nothing leaves no trace
            metadata.create_all(db)
            with db.begin() as conn:
                conn.execute(sa.insert(privacy_audit).values(
                    at=now, actor=actor[:100], action="retention_purge", session_hash="-",
                    detail={k: v for k, v in vars(result).items()}))
    finally:
        db.dispose()
        if tracker_engine is not None:
            tracker_engine.dispose()
    return result
