"""Rasa's SQL tracker store, without re-reading the whole conversation on every turn.

Rasa 3.6's ``SQLTrackerStore.retrieve`` reads every event of the current session from the database and
deserialises each one on every turn (finding each event's class by walking all of Event's subclasses):
the turn's cost grows with the conversation's length. This store keeps, per conversation, the
deserialised events of its latest session in memory and on the next turn reads only the rows added
since (by id), so a turn reads what the last turn wrote, not the whole history.

It stays exactly Rasa's store otherwise: same table, same rows, same ``save`` (the events are still
written by Rasa's own code), and it never trusts its memory over the database. Each retrieval first asks
the database for the conversation's row count and the sum of its row ids; unless both equal what is
remembered plus the new rows, the whole session is read again as Rasa would. So a conversation erased by
the web app or the retention purge (rows deleted), or written by another Rasa instance behind the load
balancer (rows added: read as new rows), is never served from stale memory. A new session
(``session_started``) is also read again in full, with Rasa's own query.

Memory is bounded: at most ``cache_events`` events in all (default 20000), least recently used
conversations dropped first.
"""
from __future__ import annotations

import copy
import json
import logging
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Optional

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import Event, SessionStarted
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext import logs, speedups

logger = logging.getLogger(__name__)
speedups.apply()  # Rasa imports this module when the endpoints name this store: the one hook we have
logs.install()  # and keep what people typed out of Rasa's logs (rasa_ext/logs.py)

DEFAULT_CACHE_EVENTS = 20000


def deserialise(rows: list[dict[str, Any]]) -> list[Event]:
    """Events from their stored dicts, as Rasa's ``deserialise_events`` makes them (unknown types skipped)."""
    from rasa.shared.core.events import deserialise_events

    return deserialise_events(rows)


@dataclass
class _Remembered:
    events: list[Event] = field(default_factory=list)  # the latest session's events, in id order
    last_id: int = 0  # the highest row id of the conversation seen
    rows: int = 0  # the conversation's row count (every session) when last read
    id_sum: int = 0  # and the sum of its row ids: any deleted row changes it


class CachedSQLTrackerStore(SQLTrackerStore):
    """``SQLTrackerStore`` that reads only new rows on each turn (see the module's docstring)."""

    def __init__(self, *args: Any, cache_events: int = DEFAULT_CACHE_EVENTS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_events = int(cache_events)
        self._memory: "OrderedDict[str, _Remembered]" = OrderedDict()
        self._held = 0
        self.full_reads = 0  # how many retrievals read the whole session (for tests and logs)
        self.partial_reads = 0

    # -- reading -----------------------------------------------------------------------------------

    def _totals(self, session: Any, sender_id: str) -> tuple[int, int, int]:
        ids = self.SQLEvent.id
        row = session.query(sa.func.count(ids), sa.func.coalesce(sa.func.sum(ids), 0),
                            sa.func.coalesce(sa.func.max(ids), 0)).filter(self.SQLEvent.sender_id == sender_id).one()
        return int(row[0]), int(row[1]), int(row[2])

    def _read_session(self, session: Any, sender_id: str) -> _Remembered | None:
        """The latest session read in full, with Rasa's own query."""
        rows, id_sum, last_id = self._totals(session, sender_id)
        if rows == 0:
            return None
        found = self._event_query(session, sender_id, fetch_events_from_all_sessions=False).all()
        events = deserialise([json.loads(row.data) for row in found])
        self.full_reads += 1
        # rows written between the two queries would be counted but not read: read again next time
        if found and found[-1].id != last_id:
            return _Remembered(events, last_id=-1, rows=-1, id_sum=-1)
        return _Remembered(events, last_id=last_id, rows=rows, id_sum=id_sum)

    def _read_new(self, session: Any, sender_id: str, known: _Remembered) -> _Remembered | None:
        """``known`` brought up to date from the rows added since, or None when it cannot be trusted."""
        if known.last_id < 0:
            return None
        rows, id_sum, last_id = self._totals(session, sender_id)
        new = (session.query(self.SQLEvent.id, self.SQLEvent.type_name, self.SQLEvent.data)
               .filter(self.SQLEvent.sender_id == sender_id, self.SQLEvent.id > known.last_id, self.SQLEvent.id <= last_id)
               .order_by(self.SQLEvent.id).all())
        if rows != known.rows + len(new) or id_sum != known.id_sum + sum(r.id for r in new):
            return None  # rows were deleted (erasure, retention) or are missing: read it all again
        if any(r.type_name == SessionStarted.type_name for r in new):
            return None  # a new session: Rasa's query decides where it starts
        self.partial_reads += 1
        events = known.events + deserialise([json.loads(r.data) for r in new])
        return _Remembered(events, last_id=last_id, rows=rows, id_sum=id_sum)

    def _remember(self, sender_id: str, entry: _Remembered | None) -> None:
        old = self._memory.pop(sender_id, None)
        if old is not None:
            self._held -= len(old.events)
        if entry is None or len(entry.events) > self.cache_events:
            return
        self._memory[sender_id] = entry
        self._held += len(entry.events)
        while self._held > self.cache_events and self._memory:
            _, dropped = self._memory.popitem(last=False)
            self._held -= len(dropped.events)

    async def retrieve(self, sender_id: str) -> Optional[DialogueStateTracker]:
        """The tracker of the conversation's latest session, as ``SQLTrackerStore.retrieve`` gives it."""
        with self.session_scope() as session:
            known = self._memory.get(sender_id)
            entry = self._read_new(session, sender_id, known) if known is not None else None
            if entry is None:
                entry = self._read_session(session, sender_id)
        self._remember(sender_id, entry)
        if entry is None or not entry.events or not self.domain:
            return None
        # the tracker gets its own (shallow) copies: whatever it changes on an event stays in this turn
        return DialogueStateTracker.from_events(sender_id, [copy.copy(e) for e in entry.events], self.domain.slots)
