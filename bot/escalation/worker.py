"""The delivery worker: sends due outbox rows, re-notifies, and escalates to the next tier.

Each round (``run_once``):

1. queue follow-ups: a reminder for every open escalation not acknowledged ``renotify_after`` after its
   last alert, and the next tier for those open ``next_tier_after`` after creation (audited);
2. claim due notifications for this worker's channels with a lease (any number of workers may run);
3. send each one; success marks it delivered (audited), failure puts it back with exponential backoff
   (base x 2^(attempt-1), capped, with jitter). A worker killed mid-send leaves the row "sending": once
   its lease expires another worker sends it again with the same idempotency key.

Reminders and next-tier notifications whose escalation was acknowledged meanwhile are dropped.
"""
from __future__ import annotations

import asyncio
import datetime as dt
import logging
import os
import random
import socket
import uuid
from typing import Callable

from bot.escalation.channels import Channel, DeliveryError, Notification, build_channels
from bot.escalation.config import EscalationConfig
from bot.escalation.store import EscalationStore, utcnow

log = logging.getLogger("bot.escalation")


class DeliveryWorker:
    def __init__(
        self,
        store: EscalationStore,
        channels: list[Channel] | None = None,
        *,
        renotify_after: dt.timedelta | None = None,
        next_tier_after: dt.timedelta | None = None,
        clock: Callable[[], dt.datetime] | None = None,
        config: EscalationConfig | None = None,
        lease: dt.timedelta | None = None,
        backoff_base: float | None = None,
        backoff_cap: float | None = None,
        send_timeout: float | None = None,
        jitter: bool = True,
        batch: int = 20,
        worker_id: str | None = None,
    ):
        config = config or EscalationConfig.from_env()
        self.store = store
        channel_list = build_channels(store, config) if channels is None else list(channels)
        self.channels: dict[str, Channel] = {c.name: c for c in channel_list}
        self.renotify_after = renotify_after or config.renotify_after
        self.next_tier_after = next_tier_after or config.next_tier_after
        self.clock = clock or utcnow
        self.lease = lease or config.lease
        self.backoff_base = backoff_base if backoff_base is not None else config.backoff_base
        self.backoff_cap = backoff_cap if backoff_cap is not None else config.backoff_cap
        # a send must give up well before its lease ends, or a second worker could start it meanwhile
        timeout = send_timeout if send_timeout is not None else config.send_timeout
        self.send_timeout = min(timeout, self.lease.total_seconds() * 0.8)
        self.jitter = jitter
        self.batch = batch
        self.worker_id = worker_id or f"worker:{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"
        self._wake = asyncio.Event()
        missing = [name for name in store.channels if name not in self.channels]
        if missing:
            log.warning("worker %s has no channel for %s; another worker must deliver those", self.worker_id, missing)

    def backoff(self, attempts: int) -> dt.timedelta:
        """Delay before the next try after ``attempts`` failed ones: base x 2^(attempts-1), capped, jittered."""
        delay = min(self.backoff_cap, self.backoff_base * 2 ** max(0, min(attempts - 1, 40)))
        if self.jitter:
            delay *= random.uniform(0.5, 1.0)
        return dt.timedelta(seconds=delay)

    def wake(self) -> None:
        """Ask ``run_forever`` to start a round now (call from the same event loop, e.g. after record_turn)."""
        self._wake.set()

    async def run_once(self) -> int:
        """One round: deliver what is due, queue follow-ups (reminders, next tier), deliver those; returns how
        many were delivered. What is already due (first notices above all) goes out before the follow-ups
        are worked out: with many unacknowledged escalations that can take a while."""
        delivered = await self._deliver_due()
        await asyncio.to_thread(self.store.schedule_followups, self.clock(), self.renotify_after, self.next_tier_after,
                                self.worker_id)
        return delivered + await self._deliver_due()

    async def _deliver_due(self) -> int:
        delivered = 0
        for _ in range(100):  # bounded: at most 100 batches
            # the clock is read again for each batch, so an escalation committed during a long round is due
            # at once and (first notices first) goes out in the next batch, not after the whole round
            rows = await asyncio.to_thread(self.store.claim_due, list(self.channels), self.worker_id, self.clock(),
                                           self.lease, self.batch)
            if not rows:
                break
            escalations = await asyncio.to_thread(self.store.get_many, sorted({r["escalation_id"] for r in rows}))
            outcomes = await asyncio.gather(*(self._send(row, escalations.get(row["escalation_id"])) for row in rows))
            results = [outcome for outcome in outcomes if outcome is not None]
            if results:  # one transaction (one fsync) records the whole batch
                delivered += await asyncio.to_thread(self.store.complete, results, self.clock(), self.worker_id)
        return delivered

    async def _send(self, row: dict, escalation: dict | None):
        """Send one claimed row; returns ``(row, detail, error, retry_at)`` for ``store.complete``, or None if dropped."""
        if escalation is None or (row["kind"] != "created" and escalation["status"] != "open"):
            await asyncio.to_thread(self.store.cancel, row)
            return None
        note = Notification(key=row["idempotency_key"], channel=row["channel"], kind=row["kind"],
                            attempt=row["attempts"], at=self.clock(), escalation=escalation)
        channel = self.channels[row["channel"]]
        try:
            detail = await asyncio.wait_for(channel.send(note), timeout=self.send_timeout)
        except asyncio.CancelledError:
            raise
        except Exception as err:  # noqa: BLE001 - any failure is retried; the reason is logged without content
            reason = str(err) if isinstance(err, DeliveryError) else type(err).__name__
            log.warning("delivery %s attempt %d failed: %s", row["idempotency_key"], row["attempts"], reason)
            return row, None, reason, self.clock() + self.backoff(row["attempts"])
        return row, detail, None, None

    async def _deliver(self, row: dict) -> bool:
        """Send and record one claimed row (used by tests and single-row callers)."""
        outcome = await self._send(row, await asyncio.to_thread(self.store.get, row["escalation_id"]))
        if outcome is None:
            return False
        return await asyncio.to_thread(self.store.complete, [outcome], self.clock(), self.worker_id) == 1

    async def run_forever(self, poll_interval: float = 0.5, stop_event: asyncio.Event | None = None) -> None:
        """Deliver until ``stop_event`` is set; a failing round is logged and retried after ``poll_interval``."""
        stop = stop_event or asyncio.Event()
        try:
            while not stop.is_set():
                try:
                    await self.run_once()
                except Exception:  # noqa: BLE001 - keep delivering; the next round retries
                    log.exception("delivery round failed")
                self._wake.clear()
                waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())]
                try:
                    await asyncio.wait(waiters, timeout=poll_interval, return_when=asyncio.FIRST_COMPLETED)
                finally:
                    for waiter in waiters:
                        waiter.cancel()
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        for channel in self.channels.values():
            try:
                await channel.close()
            except Exception:  # noqa: BLE001
                log.exception("closing channel %s", channel.name)
