"""Small helpers shared by the escalation tests."""
from __future__ import annotations

import datetime as dt

from bot.escalation import EscalationStore

T0 = dt.datetime(2026, 11, 27, 16, 45, tzinfo=dt.timezone.utc)  # a Friday, after North Lincolnshire's SPOC closed


class FakeClock:
    """A clock the test moves by hand; shared by the store and the worker."""

    def __init__(self, start: dt.datetime = T0):
        self.now = start

    def __call__(self) -> dt.datetime:
        return self.now

    def advance(self, **delta) -> dt.datetime:
        self.now += dt.timedelta(**delta)
        return self.now


def turn(store: EscalationStore, n: int = 0, *, session_id: str = "s1", text: str | None = None, **over) -> dict | None:
    """Record one escalating turn (message id ``m<n>``) with sensible defaults; keywords override."""
    args = dict(area="north-lincolnshire", categories=["physical_abuse"], immediate_danger=False, escalate=True,
                message_id=f"m{n}")
    args.update(over)
    return store.record_turn(session_id, text if text is not None else f"turn {n}: he hits me [redacted]", **args)
