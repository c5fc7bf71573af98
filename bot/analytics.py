"""Events for commissioners' reports, with no personal data in them by construction.

An event is a kind, a day, an area and a few closed-vocabulary fields (a level 1-4, who was speaking, a
postcode district such as "GL5", a count). No session id, no text, no time finer than the day: a report
built from these cannot lead back to a family. Writing one never breaks a conversation: a failure is
logged and dropped.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
from functools import lru_cache

import sqlalchemy as sa

from bot.db import database_url, make_engine

log = logging.getLogger("bot.analytics")

KINDS = {
    "level_given": "a level of need was given (field: level)",
    "services_shown": "services were shown (field: count)",
    "no_fitting_service": "a search found nothing that fits, or the person said none fit",
    "talk_to_person": "the person was given a number to talk to someone",
    # one of these two per chat, when its area becomes known: whether this browser had used the assistant
    # before (the widget keeps a yes/no flag in the browser, never an id; bot.web.chat)
    "first_visit": "a chat from a browser that had not used the assistant before",
    "return_visit": "a chat from a browser that had used the assistant before",
}
SPEAKERS = {"parent", "young_person", "professional"}
_OUTCODE = re.compile(r"^[A-Z]{1,2}[0-9][0-9A-Z]?$")

metadata = sa.MetaData()
events = sa.Table(
    "analytics_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("day", sa.Date, nullable=False, index=True),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("area", sa.String(100), nullable=True),
    sa.Column("speaker", sa.String(20), nullable=True),
    sa.Column("level", sa.Integer, nullable=True),
    sa.Column("outcode", sa.String(4), nullable=True),
    sa.Column("count", sa.Integer, nullable=True),
)


@lru_cache(maxsize=4)
def _engine(url: str):
    engine = make_engine(url)
    metadata.create_all(engine)
    return engine


def clean(kind: str, area: str | None = None, speaker: str | None = None, level: int | None = None,
          outcode: str | None = None, count: int | None = None, day: dt.date | None = None) -> dict:
    """The row to store, with anything outside the closed vocabulary dropped (never stored as given)."""
    if kind not in KINDS:
        raise ValueError(f"unknown analytics event {kind!r}")
    from bot.areas import load_areas

    outcode = (outcode or "").upper().strip()
    return {
        "day": day or dt.datetime.now(dt.timezone.utc).date(),
        "kind": kind,
        "area": area if area in load_areas() else None,
        "speaker": speaker if speaker in SPEAKERS else None,
        "level": level if isinstance(level, int) and 1 <= level <= 4 else None,
        "outcode": outcode if _OUTCODE.match(outcode) else None,
        "count": count if isinstance(count, int) and 0 <= count <= 1000 else None,
    }


def record(kind: str, *, url: str | None = None, **fields) -> None:
    """Store one event; never raises (a report is not worth a broken conversation)."""
    try:
        row = clean(kind, **fields)
        with _engine(url or database_url("earlyhelp")).begin() as conn:
            conn.execute(sa.insert(events).values(**row))
    except Exception:
        log.exception("analytics event %s not recorded", kind)
