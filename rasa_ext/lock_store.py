"""Rasa's Redis ticket lock, without its two ways of losing a turn: ``type: rasa_ext.lock_store.RedisTicketLockStore``.

Rasa serialises the turns of one conversation with a ticket lock (``rasa.core.lock_store``): each turn takes
the next ticket, waits until its ticket is the first in the queue, runs, and removes its ticket. Every
ticket expires ``lock_lifetime`` seconds after it was issued, so a Rasa instance that dies mid-turn does not
hold the conversation for ever. Rasa 3.6's ``RedisLockStore`` has two faults, both seen in our CI:

1. **A live turn's ticket expires.** Nothing renews a ticket, not even the ticket of a turn that is waiting.
   When the turn being served takes longer than the lifetime (a loaded machine), its ticket and the waiting
   turn's (issued a moment later) both expire; the waiter's ``update_lock`` removes both and saves the empty
   lock, and then ``is_locked(own ticket)`` compares ``now_serving`` (0 for an empty lock) with its own
   number (1) for ever: the waiting turn never runs and its HTTP request hangs until the proxy gives up
   (nginx's 504, then ``rest.message.received.timeout`` in Rasa's log). If the waiter polls in the short
   moment between the two expiries, it overtakes the slow turn instead: out of order.
2. **Issue and removal are not atomic.** Each is a GET of the whole lock, a change in Python and a SET: two
   instances issuing at once can both take the same number, or overwrite each other's tickets.

This store keeps Rasa's lock (same Redis key and JSON, readable by Rasa's ``TicketLock``; first come, first
served; a dead instance's ticket expires after the lifetime) and fixes both:

* **A live process keeps its tickets alive.** A thread per store renews every ticket this process holds or
  waits on (every ``refresh_interval`` seconds, default ``lifetime / 5`` capped at 1 s). A thread, not an asyncio task, so that a turn doing CPU work on the event loop (Rasa
  runs its NLU and policies there) still renews its ticket. Only a ticket whose process has died (or
  stopped renewing: a turn served for more than ``max_hold`` seconds, default 60, Rasa's own lifetime, is no
  longer renewed) expires, after ``lock_lifetime`` seconds (default 15).
* **No deadlock on a lost ticket.** A waiter whose ticket is gone (its process stalled past the lifetime, or
  Redis restarted) takes a new ticket at the back of the queue and goes on waiting for a live one, with a
  warning; it is served when its ticket is the first live one, never by comparing numbers with an empty lock.
* **Atomic changes.** Issue, renewal, removal of expired tickets and release are each one Redis transaction
  (WATCH/MULTI/EXEC, retried when another instance changed the lock in between). Ticket numbers keep growing
  while the lock exists (a ``next`` counter), and each ticket carries its owner's random id, so a number
  re-used after a lost ticket is never mistaken for it. Expiry times use the Redis server's clock, so
  instances on machines whose clocks differ agree. The key itself expires shortly after its last ticket.

Waiters poll every ``poll_interval`` seconds (default 0.05; Rasa: 1 s) with a plain GET, and write only when
a ticket ahead has expired.
"""
from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import threading
import time
import uuid
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any, AsyncGenerator, Callable, Optional

from rasa.core.lock import TicketLock
from rasa.core.lock_store import LockError, RedisLockStore

from rasa_ext import logs

logger = logging.getLogger(__name__)
logs.install()  # Rasa imports this module when the endpoints name this store

DEFAULT_LIFETIME = 15.0  # seconds a dead instance's ticket blocks its conversation
DEFAULT_MAX_HOLD = 60.0  # a turn served longer than this is no longer renewed (Rasa's own lifetime)
DEFAULT_POLL = 0.05
OWN_SETTINGS = ("lock_lifetime", "refresh_interval", "poll_interval", "max_hold")


@dataclass
class _Ticket:
    conversation_id: str
    number: int
    owner: str
    lifetime: float
    served_at: Optional[float] = None  # time.monotonic() when served
    lost: bool = field(default=False)


class RedisTicketLockStore(RedisLockStore):
    """``RedisLockStore`` whose live tickets never expire and whose changes are atomic (module docstring)."""

    def __init__(self, endpoint_config: Any = None, **kwargs: Any) -> None:
        settings: dict[str, Any] = {}
        if endpoint_config is not None:  # how Rasa builds a store named by its module path
            settings.update(endpoint_config.kwargs or {})
            if endpoint_config.url:
                settings.setdefault("host", endpoint_config.url)
        settings.update(kwargs)
        own = {key: settings.pop(key) for key in OWN_SETTINGS if settings.get(key) is not None}
        super().__init__(**settings)
        lifetime = own.get("lock_lifetime") or os.environ.get("TICKET_LOCK_LIFETIME") or DEFAULT_LIFETIME
        self.lock_lifetime = float(lifetime)
        if self.lock_lifetime <= 0:
            raise ValueError("lock_lifetime must be positive")
        self.refresh_interval = float(own.get("refresh_interval") or min(1.0, self.lock_lifetime / 5))
        self.poll_interval = float(own.get("poll_interval") or DEFAULT_POLL)
        self.max_hold = float(own.get("max_hold") or DEFAULT_MAX_HOLD)
        self._live: dict[int, _Ticket] = {}
        self._live_guard = threading.Lock()
        self._renewer: Optional[threading.Thread] = None
        self._stop = threading.Event()

    # -- the lock's state in Redis -------------------------------------------------------------------------

    def _key(self, conversation_id: str) -> str:
        return self.key_prefix + conversation_id

    @staticmethod
    def _load(raw: Optional[bytes], conversation_id: str) -> dict[str, Any]:
        data = json.loads(raw) if raw else {}
        tickets = [json.loads(t) for t in data.get("tickets", [])]
        tickets.sort(key=lambda t: t["number"])
        return {"conversation_id": data.get("conversation_id", conversation_id), "tickets": tickets,
                "next": int(data.get("next", 0))}

    @staticmethod
    def _dump(state: dict[str, Any]) -> str:
        return json.dumps({"conversation_id": state["conversation_id"], "next": state["next"],
                           "tickets": [json.dumps(t) for t in state["tickets"]]})

    def _change(self, conversation_id: str, change: Callable[[dict[str, Any], float], Any]) -> Any:
        """Apply ``change(state, now)`` to the conversation's lock in one transaction and return its result.

        ``change`` edits ``state`` in place; an empty ticket list deletes the key."""
        key = self._key(conversation_id)
        result: list[Any] = []

        def transaction(pipe: Any) -> None:
            raw = pipe.get(key)
            seconds, micros = pipe.time()  # the Redis server's clock
            now = seconds + micros / 1e6
            state = self._load(raw, conversation_id)
            before = self._dump(state)
            result[:] = [change(state, now)]
            after = self._dump(state)
            pipe.multi()
            if not state["tickets"]:
                if raw is not None:
                    pipe.delete(key)
            elif after != before or raw is None:
                last = max(t["expires"] for t in state["tickets"])
                pipe.set(key, after, px=max(1, math.ceil((last - now) * 1000)) + 1000)

        self.red.transaction(transaction, key)
        return result[0]

    # -- the operations, each atomic -------------------------------------------------------------------------

    def _issue(self, conversation_id: str, lifetime: float) -> _Ticket:
        owner = uuid.uuid4().hex

        def change(state: dict[str, Any], now: float) -> int:
            state["tickets"] = [t for t in state["tickets"] if t["expires"] >= now]
            number = max([state["next"]] + [t["number"] + 1 for t in state["tickets"]])
            state["tickets"].append({"number": number, "expires": now + lifetime, "owner": owner})
            state["next"] = number + 1
            return number

        return _Ticket(conversation_id, self._change(conversation_id, change), owner, lifetime)

    def _renew(self, ticket: _Ticket) -> bool:
        """Push the ticket's expiry to now + lifetime; False when the ticket is no longer in the lock."""
        def change(state: dict[str, Any], now: float) -> bool:
            mine = next((t for t in state["tickets"] if t["owner"] == ticket.owner), None)
            if mine is None:
                return False
            mine["expires"] = now + ticket.lifetime
            return True

        return self._change(ticket.conversation_id, change)

    def _clear_expired_ahead(self, ticket: _Ticket) -> None:
        """Remove expired tickets (never this one: its owner is alive, it is asking)."""
        def change(state: dict[str, Any], now: float) -> None:
            state["tickets"] = [t for t in state["tickets"] if t["owner"] == ticket.owner or t["expires"] >= now]
            for t in state["tickets"]:
                if t["owner"] == ticket.owner:
                    t["expires"] = max(t["expires"], now + ticket.lifetime)

        self._change(ticket.conversation_id, change)

    def _release(self, conversation_id: str, owner: Optional[str] = None, number: Optional[int] = None) -> None:
        """Remove one ticket (by owner, or by number) and any expired ones; delete the lock when none is left."""
        def change(state: dict[str, Any], now: float) -> None:
            state["tickets"] = [t for t in state["tickets"] if t["expires"] >= now
                                and not (owner is not None and t["owner"] == owner)
                                and not (owner is None and t["number"] == number)]

        self._change(conversation_id, change)

    # -- keeping this process's tickets alive ------------------------------------------------------------

    def _keep_alive(self, ticket: _Ticket) -> None:
        with self._live_guard:
            self._live[id(ticket)] = ticket
            if self._renewer is None or not self._renewer.is_alive():
                self._renewer = threading.Thread(target=self._renew_loop, name="rasa-ticket-renewer", daemon=True)
                self._renewer.start()

    def _let_go(self, ticket: _Ticket) -> None:
        with self._live_guard:
            self._live.pop(id(ticket), None)

    def _renew_loop(self) -> None:
        while not self._stop.wait(self.refresh_interval):
            with self._live_guard:
                tickets = list(self._live.values())
            for ticket in tickets:
                if ticket.served_at is not None and time.monotonic() - ticket.served_at > self.max_hold:
                    continue  # a turn stuck this long is not kept alive: let the next one go after the lifetime
                try:
                    if not self._renew(ticket) and not ticket.lost and ticket.served_at is not None:
                        with self._live_guard:
                            running = id(ticket) in self._live  # not just released meanwhile
                        if running:  # (a waiter notices a lost ticket by itself and queues again)
                            ticket.lost = True
                            logger.warning("turn lock ticket %s expired while its turn was running", ticket.number)
                except Exception as err:  # Redis unreachable for a moment: try again next round
                    logger.warning("could not renew a turn lock ticket: %s", type(err).__name__)

    def close(self) -> None:
        """Stop the renewing thread (tests; Rasa never closes its lock store)."""
        self._stop.set()

    # -- Rasa's interface ----------------------------------------------------------------------------------

    @asynccontextmanager
    async def lock(self, conversation_id: str, lock_lifetime: Optional[float] = None,
                   wait_time_in_seconds: float = 1) -> AsyncGenerator[TicketLock, None]:
        """Wait for this conversation's turn, keep the ticket alive while waiting and while served, release it."""
        lifetime = float(lock_lifetime or self.lock_lifetime)
        try:
            ticket = self._issue(conversation_id, lifetime)
        except Exception as err:
            raise LockError(f"Error while acquiring lock. Error:\n{err}") from err
        self._keep_alive(ticket)
        try:
            yield await self._wait_for_turn(ticket, min(float(wait_time_in_seconds), self.poll_interval))
        finally:
            self._let_go(ticket)
            try:
                self._release(conversation_id, owner=ticket.owner)
            except Exception as err:  # the ticket expires by itself after its lifetime
                logger.warning("could not release a turn lock ticket: %s", type(err).__name__)

    async def _wait_for_turn(self, ticket: _Ticket, poll: float) -> TicketLock:
        while True:
            raw = self.red.get(self._key(ticket.conversation_id))
            state = self._load(raw, ticket.conversation_id)
            mine = next((t for t in state["tickets"] if t["owner"] == ticket.owner), None)
            if mine is None:  # lost (process stalled past the lifetime, Redis restarted): queue again
                logger.warning("turn lock ticket %s of a conversation was lost while waiting; taking a new one",
                               ticket.number)
                fresh = self._issue(ticket.conversation_id, ticket.lifetime)
                ticket.number, ticket.owner, ticket.lost = fresh.number, fresh.owner, False
                continue
            if state["tickets"][0] is mine:
                ticket.served_at = time.monotonic()
                return TicketLock.from_dict(json.loads(raw))
            seconds, micros = self.red.time()
            if any(t["expires"] < seconds + micros / 1e6 for t in state["tickets"]):
                self._clear_expired_ahead(ticket)  # a dead instance's ticket: remove it, then look again
                continue
            await asyncio.sleep(poll)

    def issue_ticket(self, conversation_id: str, lock_lifetime: Optional[float] = None) -> int:
        """Issue a ticket (atomically); nothing renews it: prefer ``lock()``."""
        try:
            return self._issue(conversation_id, float(lock_lifetime or self.lock_lifetime)).number
        except Exception as err:
            raise LockError(f"Error while acquiring lock. Error:\n{err}") from err

    def update_lock(self, conversation_id: str) -> None:
        """Remove expired tickets, atomically."""
        self._change(conversation_id, lambda state, now: state.__setitem__(
            "tickets", [t for t in state["tickets"] if t["expires"] >= now]))

    def finish_serving(self, conversation_id: str, ticket_number: int) -> None:
        self._release(conversation_id, number=ticket_number)

    def cleanup(self, conversation_id: str, ticket_number: int) -> None:
        self._release(conversation_id, number=ticket_number)
