"""One way to open a database, whatever the engine.

SQLite under ``$EARLYHELP_HOME`` is the embedded default; ``DATABASE_URL`` (e.g. ``postgresql://...``)
switches every store to PostgreSQL with the same code. SQLite is opened in WAL mode with
``synchronous=FULL`` so a committed escalation survives a power cut, and with foreign keys enforced.
"""
from __future__ import annotations

import os
import time
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event, exc

from bot.paths import home


def database_url(name: str = "earlyhelp") -> str:
    """``DATABASE_URL`` if set, else ``sqlite:///$EARLYHELP_HOME/<name>.db``."""
    url = os.environ.get("DATABASE_URL")
    if url:
        url = url.replace("postgres://", "postgresql://", 1)
        # the project installs psycopg 3; SQLAlchemy's bare postgresql:// means psycopg2
        return url.replace("postgresql://", "postgresql+psycopg://", 1)
    return f"sqlite:///{home() / (name + '.db')}"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


PING_AFTER_IDLE = 1.0  # seconds: a pooled connection unused this long is checked before it is handed out
pings = {"sent": 0}  # how many checks were made (tests, logs)


def _remember_checkin(_dbapi_connection, record) -> None:
    if record is not None:
        record.info["checked_in_at"] = time.monotonic()  # also on connect: a new connection is not checked


def _ping_if_idle(dbapi_connection, record, _proxy) -> None:
    """Check a pooled connection that sat unused (the server may have restarted meanwhile) with a round trip;
    a broken one is replaced by a new connection before anyone uses it (SQLAlchemy retries the checkout).

    ``pool_pre_ping`` does this on every checkout: one extra round trip per transaction (measured 1.5 ms on
    a loaded 2-core machine, three transactions per chat turn). A connection in steady use (handed back
    less than ``PING_AFTER_IDLE`` seconds ago; the pool is LIFO, so under load the same few are reused)
    skips it: a server restart takes longer than that, and the first failure on a dead connection
    invalidates the whole pool anyway (SQLAlchemy's disconnect handling), as a failed ping would."""
    idle = time.monotonic() - record.info.get("checked_in_at", float("-inf"))
    if idle < PING_AFTER_IDLE:
        return
    pings["sent"] += 1
    try:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("SELECT 1")
        finally:
            cursor.close()
    except Exception as err:
        raise exc.DisconnectionError(f"pooled connection lost ({type(err).__name__})") from err


def make_engine(url: str) -> Engine:
    """A new engine for ``url``; SQLite connections get the durability pragmas; server connections are
    checked before use only after sitting idle (``_ping_if_idle``)."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_engine(url, pool_use_lifo=True, pool_recycle=1800)
    event.listen(engine, "connect", _remember_checkin)
    event.listen(engine, "checkin", _remember_checkin)
    event.listen(engine, "checkout", _ping_if_idle)
    return engine


@lru_cache(maxsize=None)
def engine(name: str = "earlyhelp") -> Engine:
    """The process-wide engine for a named store (one per URL, reused)."""
    return make_engine(database_url(name))
