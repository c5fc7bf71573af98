"""The same store and worker on PostgreSQL: a throw-away cluster (bot.pgcluster) on a loopback port
(skipped when the PostgreSQL server binaries or the psycopg driver are not installed)."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
from sqlalchemy.exc import DBAPIError

from bot import pgcluster
from bot.escalation import DeliveryWorker, EscalationStore, InboxChannel, WebhookChannel
from tests.bot.escalation.harness import SECRET
from tests.bot.escalation.support import FakeClock, turn

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg_url():
    reason = pgcluster.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = pgcluster.PostgresCluster().start()
    try:
        yield cluster.url
    finally:
        cluster.remove()


@pytest.fixture
def pg_store(pg_url):
    clock = FakeClock()
    store = EscalationStore.open(pg_url, channels=["inbox", "webhook"], clock=clock)
    with store.engine.begin() as conn:  # a clean slate per test (the audit trigger forbids DELETE, not TRUNCATE of all)
        conn.exec_driver_sql("ALTER TABLE esc_audit DISABLE TRIGGER USER")
        conn.exec_driver_sql("TRUNCATE esc_audit, esc_outbox, esc_escalations, esc_messages")
        conn.exec_driver_sql("ALTER TABLE esc_audit ENABLE TRIGGER USER")
    yield store, clock
    store.dispose()


def test_record_list_ack_and_append_only_audit_on_postgresql(pg_store, pg_url):
    store, clock = pg_store
    urgent = turn(store, 1)
    clock.advance(minutes=1)
    immediate = turn(store, 2, immediate_danger=True)
    assert turn(store, 1)["id"] == urgent["id"]
    assert [e["id"] for e in store.list()] == [immediate["id"], urgent["id"]]
    assert store.get(urgent["id"])["created_at"] == FakeClock().now.isoformat()
    store.acknowledge(urgent["id"], by="A. Duty")
    assert [a["action"] for a in store.audit(urgent["id"])] == ["created", "acknowledged"]
    for statement in ("UPDATE esc_audit SET actor = 'x'", "DELETE FROM esc_audit", "TRUNCATE esc_audit"):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    again = EscalationStore.open(pg_url, channels=["inbox", "webhook"])  # migrations are idempotent
    assert again.get(urgent["id"])["status"] == "acknowledged"
    again.dispose()


def test_concurrent_claims_skip_locked_rows_on_postgresql(pg_store, pg_url):
    store, clock = pg_store
    for n in range(30):
        turn(store, n)
    stores = [EscalationStore.open(pg_url, channels=["inbox", "webhook"]) for _ in range(3)]
    claimed: list[list[int]] = [[] for _ in stores]
    barrier = threading.Barrier(len(stores))

    def claim(i: int) -> None:
        barrier.wait()
        for _ in range(50):
            rows = stores[i].claim_due(["inbox", "webhook"], f"w{i}", clock(), dt.timedelta(minutes=1), limit=4)
            if not rows:
                break
            claimed[i] += [r["id"] for r in rows]

    threads = [threading.Thread(target=claim, args=(i,)) for i in range(len(stores))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    every = [row for rows in claimed for row in rows]
    assert len(every) == 60 and len(set(every)) == 60  # each row claimed by exactly one worker
    for s in stores:
        s.dispose()


async def test_worker_delivers_and_escalates_on_postgresql(pg_store, receiver):
    store, clock = pg_store
    worker = DeliveryWorker(store, channels=[InboxChannel(store), WebhookChannel(receiver.url(), SECRET),
                                             WebhookChannel(receiver.url("/next"), SECRET, name="next_tier")],
                            clock=clock, lease=dt.timedelta(seconds=30), backoff_base=1.0, backoff_cap=10.0,
                            renotify_after=dt.timedelta(minutes=5), next_tier_after=dt.timedelta(minutes=15))
    esc = turn(store, 1)
    receiver.fail_next = 1
    assert await worker.run_once() == 1
    clock.advance(seconds=2)
    assert await worker.run_once() == 1
    for _ in range(3):
        clock.advance(minutes=5)
        await worker.run_once()
    keys = [a["key"].split("/", 1)[1] for a in receiver.accepted()]
    assert keys == ["webhook/created", "webhook/reminder-1", "webhook/reminder-2", "webhook/reminder-3",
                    "next_tier/tier-2"]
    assert store.get(esc["id"])["tier"] == 2
    await worker.aclose()
