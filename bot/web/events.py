"""Live updates for the duty inbox: a version number that goes up whenever the escalations change.

Changes made in this process (a new escalation, an acknowledgement) bump it at once; changes made by other
processes (another web app, the delivery worker, the CLI) are noticed by a cheap poll of the store (the
newest audit row) every few seconds. Server-sent events carry only "changed" and the version, never an escalation: each browser
then fetches the list it is allowed to see.
"""
from __future__ import annotations

import asyncio
import logging

log = logging.getLogger("bot.web.events")


class Broadcaster:
    def __init__(self, store, poll_seconds: float = 2.0):
        self.store = store
        self.poll_seconds = poll_seconds
        self.version = 0
        self.listeners = 0
        self._changed = asyncio.Condition()
        self._fingerprint: str | None = None
        self._task: asyncio.Task | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.closing = False

    def bump(self, *_args) -> None:
        """Something changed: wake every listener (safe from the event loop or from another thread)."""
        loop = self._loop
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if loop is None or running is loop:
            self.version += 1
            asyncio.ensure_future(self._notify())
        else:
            loop.call_soon_threadsafe(self.bump)

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait(self, seen: int, timeout: float) -> int:
        """The version once it is newer than ``seen``, or the current one after ``timeout`` seconds."""
        async with self._changed:
            try:
                await asyncio.wait_for(self._changed.wait_for(lambda: self.version != seen or self.closing), timeout)
            except asyncio.TimeoutError:
                pass
        return self.version

    def _store_fingerprint(self) -> str:
        """Cheap: every change to an escalation (created, notified, acknowledged, noted, closed) adds an
        audit row, so the newest audit id and the number of escalations say whether anything changed."""
        import sqlalchemy as sa

        from bot.escalation.schema import audit, escalations

        with self.store.engine.connect() as conn:
            newest = conn.execute(sa.select(sa.func.max(audit.c.id))).scalar()
            count = conn.execute(sa.select(sa.func.count()).select_from(escalations)).scalar()
            alerts = conn.execute(sa.select(sa.func.max(escalations.c.inbox_alert_at))).scalar()
        return f"{newest}|{count}|{alerts}"

    async def poll_forever(self) -> None:
        while True:
            try:
                fingerprint = await asyncio.to_thread(self._store_fingerprint)
            except Exception:
                log.exception("polling the escalation store failed")
                fingerprint = self._fingerprint
            if self._fingerprint is not None and fingerprint != self._fingerprint:
                self.bump()
            self._fingerprint = fingerprint
            await asyncio.sleep(self.poll_seconds)

    def start(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._task = asyncio.create_task(self.poll_forever())

    async def close_streams(self) -> None:
        """The app is shutting down: end every live stream now rather than at its next keep-alive."""
        self.closing = True
        await self._notify()

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            try:
                await self._task
            except (asyncio.CancelledError, Exception):
                pass
