"""The directory's tables, shaped on Open Referral UK / HSDS, and their versioned migrations.

SQLAlchemy Core with portable types only, so the same code creates and uses the store on SQLite and on
PostgreSQL. The one SQLite-only piece, the FTS5 table for lexical search, is created only there (see
``lexical``). Each migration runs once, in its own transaction, and is recorded in
``directory_migration``; a store newer than this code is refused rather than guessed at.
"""
from __future__ import annotations

import datetime as dt
from typing import Callable

from sqlalchemy.exc import IntegrityError, OperationalError

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Date,
    DateTime,
    Engine,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    insert,
    inspect,
    select,
    text,
)

metadata = MetaData()

organization = Table(
    "organization",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(300), nullable=False),
    Column("description", Text),
    Column("url", String(2000)),
    Column("email", String(254)),
)

service = Table(
    "service",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("organization_id", String(200), ForeignKey("organization.id"), nullable=False),
    Column("name", String(300), nullable=False),
    Column("description", Text, nullable=False, default=""),
    Column("url", String(2000)),
    Column("email", String(254)),
    Column("status", String(40), nullable=False, default="active"),
    Column("fees", Text),
    Column("assured_date", Date),
    # the project's additions to the ORUK service
    Column("source", Text),
    Column("synthetic", Boolean, nullable=False, default=False),
    Column("hours", Text),
    Column("origin", String(20), nullable=False, default="import"),  # "knowledge" (seeded) or "import"
    Column("fingerprint", String(64), nullable=False),
    Column("text_hash", String(32), nullable=False),
    Column("updated_at", DateTime, nullable=False),
    Column("doc", Text),  # migration 3: the whole service as JSON (records.service_to_doc), read by search in one query
)

location = Table(
    "location",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(300)),
    Column("address", Text),
    Column("postal_code", String(12)),
    Column("latitude", Float),
    Column("longitude", Float),
)

service_at_location = Table(
    "service_at_location",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("location_id", String(200), ForeignKey("location.id"), nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

contact = Table(
    "contact",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("name", String(300)),
    Column("title", String(300)),
)

phone = Table(
    "phone",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("contact_id", String(450), ForeignKey("contact.id", ondelete="CASCADE")),
    Column("number", String(40), nullable=False),
    Column("description", Text),
    Column("position", Integer, nullable=False, default=0),
)

schedule = Table(
    "schedule",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("byday", String(40), nullable=False),
    Column("opens_at", String(5), nullable=False),
    Column("closes_at", String(5), nullable=False),
    Column("description", Text),
    Column("position", Integer, nullable=False, default=0),
)

eligibility = Table(
    "eligibility",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("eligibility", Text),
    Column("minimum_age", Integer),
    Column("maximum_age", Integer),
)

cost_option = Table(
    "cost_option",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("option", Text),
    Column("amount", Float),
    Column("amount_description", Text),
    Column("position", Integer, nullable=False, default=0),
)

service_area = Table(
    "service_area",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("service_area", Text, nullable=False),
    Column("area_id", String(100)),  # a known area id or "national"; NULL when the text names neither
    Column("position", Integer, nullable=False, default=0),
)

taxonomy_term = Table(
    "taxonomy_term",
    metadata,
    Column("id", String(200), primary_key=True),
    Column("name", String(2000), nullable=False),
    Column("vocabulary", String(100)),
)

service_taxonomy = Table(
    "service_taxonomy",
    metadata,
    Column("id", String(450), primary_key=True),
    Column("service_id", String(200), ForeignKey("service.id", ondelete="CASCADE"), nullable=False, index=True),
    Column("taxonomy_term_id", String(200), ForeignKey("taxonomy_term.id"), nullable=False),
    Column("position", Integer, nullable=False, default=0),
)

Index("ix_service_area_area", service_area.c.area_id)

migration = Table(
    "directory_migration",
    metadata,
    Column("version", Integer, primary_key=True),
    Column("name", String(200), nullable=False),
    Column("applied_at", DateTime, nullable=False),
)

meta = Table(
    "directory_meta",
    metadata,
    Column("key", String(100), primary_key=True),
    Column("value", Text, nullable=False),
)

CHILD_TABLES = (service_at_location, phone, contact, schedule, eligibility, cost_option, service_area, service_taxonomy)


def _v1_tables(conn: Connection) -> None:
    metadata.create_all(conn, tables=[t for t in metadata.sorted_tables if t is not migration])


def _v2_fts(conn: Connection) -> None:
    if conn.dialect.name == "sqlite":
        conn.execute(
            text(
                "CREATE VIRTUAL TABLE IF NOT EXISTS service_fts USING fts5("
                "service_id UNINDEXED, name, body, tokenize = 'porter unicode61 remove_diacritics 2')"
            )
        )


def _v3_service_doc(conn: Connection) -> None:
    # A store created by migration 1 from this code already has the column; an older one gets it here.
    # Rows written before it have no doc and are read from their tables, as before.
    if "doc" not in {c["name"] for c in inspect(conn).get_columns("service")}:
        conn.execute(text("ALTER TABLE service ADD COLUMN doc TEXT"))


MIGRATIONS: list[tuple[int, str, Callable[[Connection], None]]] = [
    (1, "ORUK tables", _v1_tables),
    (2, "SQLite FTS5 index of service texts", _v2_fts),
    (3, "service.doc: the whole service as JSON for fast reads", _v3_service_doc),
]
LATEST = MIGRATIONS[-1][0]


class StoreTooNew(RuntimeError):
    pass


def migrate(engine: Engine) -> int:
    """Bring the store up to the latest version; returns the version it is at."""
    with engine.begin() as conn:
        if not inspect(conn).has_table(migration.name):
            migration.create(conn)
    with engine.begin() as conn:
        applied = set(conn.execute(select(migration.c.version)).scalars())
    if applied and max(applied) > LATEST:
        raise StoreTooNew(f"the directory store is at version {max(applied)}, newer than this code ({LATEST})")
    for version, name, step in MIGRATIONS:
        if version in applied:
            continue
        try:
            with engine.begin() as conn:
                step(conn)
                conn.execute(insert(migration).values(version=version, name=name,
                                                      applied_at=dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)))
        except (IntegrityError, OperationalError):
            # another process applied this version at the same moment; its transaction won, ours rolled back
            with engine.connect() as conn:
                if conn.execute(select(migration.c.version).where(migration.c.version == version)).scalar() is None:
                    raise
    return LATEST
