"""The same directory code on PostgreSQL: a throw-away cluster on a loopback port (the approach of
tests/bot/escalation/test_escalation_postgres.py), skipped when the PostgreSQL server binaries or the
psycopg driver are not installed. Lexical search there is the portable Python BM25 (no FTS5)."""
from __future__ import annotations

import glob
import json
import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest
from sqlalchemy import select

from directory import Directory
from directory import schema as t
from directory import store

from tests.directory.conftest import FIXTURES

pytest.importorskip("psycopg")


def _pg_bin() -> Path | None:
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def pg_server():
    """A PostgreSQL cluster for this module; yields a function that makes a fresh database per test."""
    bindir = _pg_bin()
    if bindir is None:
        pytest.skip("PostgreSQL server binaries not installed")
    root = Path(tempfile.mkdtemp(prefix="earlyhelp-dir-pg-"))
    as_user: list[str] = []
    if os.geteuid() == 0:  # initdb refuses to run as root: use the postgres account when there is one
        if shutil.which("runuser") is None or subprocess.run(["id", "postgres"], capture_output=True).returncode:
            pytest.skip("running as root without a postgres account")
        shutil.chown(root, "postgres")
        os.chmod(root, 0o700)
        as_user = ["runuser", "-u", "postgres", "--"]
    data, port = root / "data", _free_port()
    subprocess.run([*as_user, str(bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "earlyhelp", "--no-sync",
                    "-E", "UTF8"], check=True, capture_output=True, timeout=120)
    opts = f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c full_page_writes=off"
    subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-o", opts, "-l", str(root / "log"), "-w",
                    "start"], check=True, capture_output=True, timeout=60)
    base = f"postgresql+psycopg://earlyhelp@127.0.0.1:{port}"
    made = iter(range(1000))

    def new_database() -> str:
        name = f"directory_{next(made)}"
        subprocess.run([*as_user, str(bindir / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "earlyhelp", name],
                       check=True, capture_output=True, timeout=60)
        return f"{base}/{name}"

    try:
        yield new_database
    finally:
        subprocess.run([*as_user, str(bindir / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop"],
                       capture_output=True, timeout=60)
        shutil.rmtree(root, ignore_errors=True)


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
        assert conn.execute(select(t.migration.c.version).order_by(t.migration.c.version)).scalars().all() == [1, 2]
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
