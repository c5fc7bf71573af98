"""The same directory code on PostgreSQL: a throw-away cluster (bot.pgcluster) on a loopback port, skipped
when the PostgreSQL server binaries or the psycopg driver are not installed. Lexical search there is the
portable Python BM25 (no FTS5)."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import select

from bot import pgcluster
from directory import Directory
from directory import schema as t
from directory import store

from tests.directory.conftest import FIXTURES

pytest.importorskip("psycopg")


@pytest.fixture(scope="module")
def pg_server():
    """A PostgreSQL cluster for this module; yields a function that makes a fresh database per test."""
    reason = pgcluster.unavailable()
    if reason:
        pytest.skip(reason)
    cluster = pgcluster.PostgresCluster(prefix="earlyhelp-dir-pg-").start()
    made = iter(range(1000))
    try:
        yield lambda: cluster.create_database(f"directory_{next(made)}")
    finally:
        cluster.remove()


@pytest.fixture(scope="module")
def pg_seeded(pg_server):
    directory = Directory.open(url=pg_server())
    yield directory
    directory.close()


def ids(results):
    return [r["id"] for r in results]


def test_the_default_content_seeds_and_migrates_once_on_postgresql(pg_seeded, seeded):
    assert pg_seeded.engine.dialect.name == "postgresql"
    assert pg_seeded.count() == seeded.count() >= 55
    assert pg_seeded.services() == seeded.services()  # every field, child rows and all, read back the same
    with pg_seeded.engine.connect() as conn:
        assert conn.execute(select(t.migration.c.version).order_by(t.migration.c.version)).scalars().all() == list(range(1, t.LATEST + 1))
    again = Directory.open(url=pg_seeded.url)  # a second open: nothing to migrate or seed
    assert again.seed() is None and again.count() == seeded.count()
    again.close()


def test_search_on_postgresql_gives_what_sqlite_gives(pg_seeded, seeded):
    catalog = pg_seeded.catalog()
    assert catalog.lexical.name == "python-bm25"
    cases = [
        dict(query="my toddler isn't talking yet", area="gloucestershire", age=2),
        dict(query="Triple P parenting", area="gloucestershire"),
        dict(query="worried about a child, who do I call", area="north-lincolnshire"),
        dict(query="young carers", area="buckinghamshire", age=12),
    ]
    for case in cases:
        pg, lite = pg_seeded.search(**case, k=1), seeded.search(**case, k=1)
        assert ids(pg) == ids(lite), case
        assert pg[0]["why"] == lite[0]["why"] and pg[0]["flags"] == lite[0]["flags"]
    for r in pg_seeded.search("support for families", area="buckinghamshire", age=15, k=50):
        assert r["area"] == "national" or "buckinghamshire" in r["area"]
        assert r["ages"] is None or r["ages"][0] <= 15 <= r["ages"][1]


def test_import_validation_atomicity_and_round_trip_on_postgresql(pg_server, seeded, monkeypatch):
    d = Directory.open(url=pg_server(), seed=False)
    report = d.import_path(FIXTURES / "hostile.json")
    assert report["imported"] == 3 and len(report["rejected"]) == 13  # the same verdicts as on SQLite
    assert d.get("hostile-script")["description"] == "Games & crafts\nfor kids"
    d.import_path(FIXTURES / "hsds")
    d.import_path(FIXTURES / "quality.json")
    assert "quality-defunct" not in ids(d.search("closed toddler splash club", k=50))
    before = d.export_oruk()

    real = store.write_services

    def write_then_fail(conn, services, origin="import"):
        real(conn, services, origin)
        raise RuntimeError("connection lost")

    monkeypatch.setattr(store, "write_services", write_then_fail)
    with pytest.raises(RuntimeError, match="connection lost"):
        d.import_path(FIXTURES / "oruk_page.json")
    monkeypatch.setattr(store, "write_services", real)
    assert d.export_oruk() == before and d.get("fixture-stay-and-play") is None

    other = Directory.open(url=pg_server(), seed=False)  # export from PostgreSQL, import into another: the same
    copy = json.loads(json.dumps(d.export_oruk()))
    assert other.import_services(copy["content"])["rejected"] == []
    assert other.services() == d.services()
    lite_export = seeded.export_oruk()  # and SQLite's export imports into PostgreSQL unchanged
    assert other.import_services(lite_export["content"])["rejected"] == []
    assert {s.id: s for s in other.services()}["glos-triple-p"] == {s.id: s for s in seeded.services()}["glos-triple-p"]
    d.close()
    other.close()
