"""Several web apps starting at once on one PostgreSQL database create the web_ tables without racing
(an advisory lock around creation; without it PostgreSQL refuses all but one with a duplicate pg_type
row, every time on this machine). On a real throw-away cluster (bot.pgcluster); skipped where none can run."""
from __future__ import annotations

import datetime as dt
import threading

import pytest
import sqlalchemy as sa

from bot import pgcluster
from bot.db import make_engine
from bot.web.storage import WebStore, metadata

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def cluster():
    reason = pgcluster.unavailable()
    if reason:
        pytest.skip(reason)
    made = pgcluster.PostgresCluster(prefix="earlyhelp-webstore-pg-").start()
    yield made
    made.remove()


@pytest.mark.parametrize("round_", range(3))
def test_several_web_stores_opening_at_once_all_succeed(cluster, round_):
    url = cluster.create_database(f"webstore_{round_}")
    engines = [make_engine(url) for _ in range(8)]
    for engine in engines:  # connected beforehand, so the creators really start together
        engine.connect().close()
    barrier = threading.Barrier(len(engines))
    errors: list[BaseException] = []
    stores: list[WebStore] = []

    def open_store(engine) -> None:
        barrier.wait()
        try:
            stores.append(WebStore(engine))
        except Exception as err:  # reported below, with what PostgreSQL said
            errors.append(err)

    threads = [threading.Thread(target=open_store, args=(engine,)) for engine in engines]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    try:
        assert errors == [], [str(e)[:200] for e in errors]
        assert len(stores) == len(engines)
        with engines[0].connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) == set(metadata.tables)
        # and each store works: a session made through one is read through another
        session = stores[0].new_chat_session()
        assert stores[-1].chat_session(session.id, dt.timedelta(minutes=5)).sender_id == session.sender_id
    finally:
        for engine in engines:
            engine.dispose()


def test_the_sqlite_default_still_creates_its_tables(tmp_path):
    store = WebStore.open(f"sqlite:///{tmp_path / 'web.db'}")
    try:
        with store.engine.connect() as conn:
            assert set(sa.inspect(conn).get_table_names()) >= set(metadata.tables)
    finally:
        store.dispose()
