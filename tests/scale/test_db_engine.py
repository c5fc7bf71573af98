"""``bot.db.make_engine`` on a real PostgreSQL: a connection in steady use is not pinged before each
transaction (``pool_pre_ping`` did: a round trip per transaction), while one left idle across a server
restart is checked and replaced before it is used, so the first transaction after the restart succeeds
(with no check at all it fails: ``OperationalError``, checked in the test itself)."""
from __future__ import annotations

import time

import pytest
from sqlalchemy import create_engine, exc, text

from bot import db
from bot.pgcluster import PostgresCluster, unavailable


@pytest.fixture(scope="module")
def cluster():
    reason = unavailable()
    if reason:
        pytest.skip(reason)
    with PostgresCluster() as running:
        yield running


def restart(cluster) -> None:
    cluster.stop()
    cluster.start()


def test_busy_connections_are_not_pinged_and_idle_ones_survive_a_restart(cluster):
    url = cluster.url_for("postgres")
    engine = db.make_engine(url)
    unchecked = create_engine(url)  # what pool_pre_ping=False alone would do
    try:
        before = db.pings["sent"]
        for _ in range(50):
            with engine.begin() as conn:
                assert conn.execute(text("SELECT 1")).scalar() == 1
        assert db.pings["sent"] == before, "a connection in steady use was pinged"
        with unchecked.begin() as conn:
            conn.execute(text("SELECT 1"))

        restart(cluster)
        time.sleep(db.PING_AFTER_IDLE + 0.2)
        with pytest.raises(exc.OperationalError):  # the stale connection, unchecked: the test can fail
            with unchecked.begin() as conn:
                conn.execute(text("SELECT 1"))
        with engine.begin() as conn:  # checked after its idle time, replaced: no error
            assert conn.execute(text("SELECT 1")).scalar() == 1
        assert db.pings["sent"] == before + 1
    finally:
        engine.dispose()
        unchecked.dispose()
