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

Bounded history (``max_event_history`` in the endpoints; 0 or absent: unbounded). Rasa's policies compute
the dialogue states over all of a tracker's events, several times a turn, and every custom action call
sends them all as JSON, so a turn costs more the longer the conversation. With a bound, the tracker this
store hands out has its state (slots, the active form, a pause, the latest message and action...) from
every event of the session, replayed, but its ``events`` hold at most ``max_event_history``: the last
events, after a few events that set the state the window starts from (one ``SlotSet`` per slot not at
its initial value, the active form, a pause; see ``state_at``). Those are there because Rasa rebuilds
trackers from ``tracker.events`` in places (the form's validation builds a temporary tracker so, and
``tracker.copy()``): without them the slots set before the window came back empty (seen: the form
validated the area again and lost the town). They are never saved. Nothing is dropped from the
database: Rasa's HTTP tracker endpoint (``retrieve_full_tracker``), the erasure and the retention purge
see every row. Rasa's rules that need the conversation's start (``conversation_start: true``) do not
match a window: its first state only looks like a start, and the window holds many turns after it. With
``carry_over_slots_to_new_session: true`` (ours is false) Rasa's session start would carry over one
``SlotSet`` per slot from a bounded tracker, not every ``SlotSet`` of the session: the same slots, fewer rows.

Rasa's own ``SQLTrackerStore.save`` decides what to write by counting the session's stored rows and
skipping that many of ``tracker.events``, which is wrong for a bounded tracker. This store's trackers
keep the events appended after they were handed out, and ``save`` writes exactly those, with Rasa's own
code (the same rows), then forgets them, so a second save writes only what came after the first. A
tracker this store did not hand out (Rasa's API replacing a conversation's events) is saved Rasa's way.

Rasa's ``TrackerStore.max_event_history`` attribute is not used for this: Rasa's processor calls
``get_or_create_tracker`` without it, which sets it back to None on every turn.
"""
from __future__ import annotations

import copy
import json
import logging
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, Optional

import sqlalchemy as sa
from rasa.core.tracker_store import SQLTrackerStore
from rasa.shared.core.events import ActiveLoop, ConversationPaused, Event, SessionStarted, SlotSet
from rasa.shared.core.trackers import DialogueStateTracker

from rasa_ext import logs, speedups

logger = logging.getLogger(__name__)
speedups.apply()  # Rasa imports this module when the endpoints name this store: the one hook we have
logs.install()  # and keep what people typed out of Rasa's logs (rasa_ext/logs.py)

DEFAULT_CACHE_EVENTS = 20000
# a turn of ours adds about 11 events, a form turn up to ~30: the bound must hold well over one turn, or the
# policies' few last states (MemoizationPolicy's max_history, the rules) would not be in the tracker
MIN_EVENT_HISTORY = 100


def event_history_bound(value: Any) -> Optional[int]:
    """The endpoints' ``max_event_history`` as a bound: None for unbounded (absent, null, 0)."""
    if value is None or value == "" or value is False:
        return None
    try:
        bound = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"tracker_store max_event_history must be a whole number of events (0: unbounded), not {value!r}") from None
    if bound < 0:
        raise ValueError(f"tracker_store max_event_history must not be negative, got {bound}")
    if 0 < bound < MIN_EVENT_HISTORY:
        raise ValueError(f"tracker_store max_event_history {bound} is too small: at least {MIN_EVENT_HISTORY} "
                         "events (a turn adds 10 to 30), or 0 for unbounded")
    return bound or None


class _Events(deque):
    """A tracker's events (a deque, as Rasa's) that also keeps the events appended since the store handed
    the tracker out, in order: what ``save`` writes."""

    def __init__(self, events: Iterable[Event] = ()) -> None:
        super().__init__(events)
        self.added: list[Event] = []

    def append(self, event: Event) -> None:  # DialogueStateTracker.update
        super().append(event)
        self.added.append(event)

    def extend(self, events: Iterable[Event]) -> None:  # DialogueStateTracker.recreate_from_dialogue
        events = list(events)
        super().extend(events)
        self.added.extend(events)

    def __reduce__(self) -> Any:  # copy.copy/deepcopy and pickle: a plain deque (a copy is never saved)
        return deque, (list(self),)


def state_at(tracker: DialogueStateTracker, timestamp: float) -> list[Event]:
    """Events that give a new tracker this tracker's slots, active form and pause: what a bounded tracker
    starts with, so that Rasa's code that replays a tracker's events into a new one (the form's validation
    builds its temporary tracker so, ``tracker.copy()`` and ``travel_back_in_time`` too) finds the slots
    set before the window, not their initial values. They carry ``timestamp`` (the window's first event's)
    and are never saved."""
    events: list[Event] = [SlotSet(name, copy.deepcopy(slot.value), timestamp=timestamp)
                           for name, slot in tracker.slots.items() if slot.value != slot.initial_value]
    if tracker.active_loop_name:
        events.append(ActiveLoop(tracker.active_loop_name, timestamp=timestamp))
    if tracker.is_paused():
        events.append(ConversationPaused(timestamp=timestamp))
    return events


def added_events(tracker: DialogueStateTracker) -> Optional[list[Event]]:
    """The events added to a tracker this store handed out, since then; None for any other tracker."""
    events = getattr(tracker, "events", None)
    return events.added if isinstance(events, _Events) else None


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

    def __init__(self, *args: Any, cache_events: int = DEFAULT_CACHE_EVENTS, max_event_history: Any = None,
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.cache_events = int(cache_events)
        self.event_history = event_history_bound(max_event_history)  # None: unbounded
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
        return self._tracker(sender_id, entry.events)

    def _tracker(self, sender_id: str, events: list[Event]) -> DialogueStateTracker:
        """The tracker of these events (the whole session), holding at most ``event_history`` of them.

        The tracker gets its own (shallow) copies of the events it holds: whatever it changes on one stays
        in this turn. The events before the window are only replayed (their values were never copied)."""
        slots = self.domain.slots
        if self.event_history is None or len(events) <= self.event_history:
            events = [copy.copy(e) for e in events]
            return self._hand_out(DialogueStateTracker.from_events(sender_id, events, slots), events)
        # the window's own events, after room for the state it starts from (one SlotSet per slot, the form
        # and a pause at most)
        keep = max(self.event_history - len(slots) - 2, 1)
        start = len(events) - keep
        tracker = DialogueStateTracker.from_events(sender_id, events[:start], slots)
        window = [copy.copy(e) for e in events[start:]]
        before = state_at(tracker, window[0].timestamp)
        for event in window:
            tracker.update(event)
        return self._hand_out(tracker, before + window)

    @staticmethod
    def _hand_out(tracker: DialogueStateTracker, events: list[Event]) -> DialogueStateTracker:
        """The tracker holding ``events``, counting what is added to it from now on."""
        tracker._max_event_history = None  # Rasa's copies (init_copy) must not drop the window's first events
        tracker.events = _Events(events)
        return tracker

    def init_tracker(self, sender_id: str) -> DialogueStateTracker:
        """A new conversation's tracker (Rasa's ``create_tracker`` saves it at once)."""
        return self._hand_out(DialogueStateTracker(sender_id, self.domain.slots), [])

    # -- writing -----------------------------------------------------------------------------------

    def _additional_events(self, session: Any, tracker: DialogueStateTracker) -> Iterator[Event]:
        """What ``SQLTrackerStore.save`` writes: for our trackers, exactly the events added since they were
        handed out (or last saved); for any other, Rasa's own count of stored rows decides."""
        added = added_events(tracker)
        if added is None:
            return super()._additional_events(session, tracker)
        return iter(list(added))

    async def stream_events(self, tracker: DialogueStateTracker) -> None:
        """To an event broker, when one is configured: the same new events that ``save`` writes."""
        added = added_events(tracker)
        if added is None or self.event_broker is None:
            return await super().stream_events(tracker)
        await self._stream_new_events(self.event_broker, list(added), tracker.sender_id)

    async def save(self, tracker: DialogueStateTracker) -> None:
        """Rasa's ``SQLTrackerStore.save`` (same rows), writing each added event once."""
        added = added_events(tracker)
        count = None if added is None else len(added)
        await super().save(tracker)
        if added is not None:
            del added[:count]  # written: a second save of this tracker writes only what came after
