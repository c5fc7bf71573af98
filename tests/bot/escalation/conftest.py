"""Fixtures for the escalation tests: a fresh SQLite store per test, a settable clock, real receivers."""
from __future__ import annotations

import pytest

from bot.escalation import EscalationStore
from tests.bot.escalation.harness import Receiver, SmtpSink
from tests.bot.escalation.support import FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'escalations.db'}"


@pytest.fixture
def store(db_url, clock):
    s = EscalationStore.open(db_url, channels=["inbox"], clock=clock)
    yield s
    s.dispose()


@pytest.fixture
def receiver(tmp_path):
    r = Receiver(tmp_path / "receiver.db").start()
    yield r
    r.stop()


@pytest.fixture
def smtp():
    sink = SmtpSink().start()
    yield sink
    sink.stop()
