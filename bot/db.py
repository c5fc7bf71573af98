"""One way to open a database, whatever the engine.

SQLite under ``$EARLYHELP_HOME`` is the embedded default; ``DATABASE_URL`` (e.g. ``postgresql://...``)
switches every store to PostgreSQL with the same code. SQLite is opened in WAL mode with
``synchronous=FULL`` so a committed escalation survives a power cut, and with foreign keys enforced.
"""
from __future__ import annotations

import os
from functools import lru_cache

from sqlalchemy import Engine, create_engine, event

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


def make_engine(url: str) -> Engine:
    """A new engine for ``url``; SQLite connections get the durability pragmas."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(url, pool_pre_ping=True)


@lru_cache(maxsize=None)
def engine(name: str = "earlyhelp") -> Engine:
    """The process-wide engine for a named store (one per URL, reused)."""
    return make_engine(database_url(name))
