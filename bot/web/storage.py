"""The web app's own tables: chat sessions, duty accounts, duty logins, failed logins, and the access log.

They live in the same database as the escalation store (``DATABASE_URL`` or ``$EARLYHELP_HOME/earlyhelp.db``)
under names starting ``web_``. Nothing here holds what a person wrote, except the already redacted text
of an unanswered safety question (kept so a "yes" can be escalated with its context, cleared on answer).

Session and login tokens are stored only as SHA-256 hashes, so a copy of the database cannot be used to
take over a session. Passwords are argon2id hashes.
"""
from __future__ import annotations

import datetime as dt
import functools
import hashlib
import re
import secrets
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy.engine import Engine

from bot.db import database_url, make_engine
from bot.errors import BadInput

UTC = dt.timezone.utc
USERNAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{1,63}$")
MIN_PASSWORD = 12

metadata = sa.MetaData()


class _UTCDateTime(sa.types.TypeDecorator):
    """Datetimes stored in UTC and always read back timezone-aware (SQLite forgets the zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, _dialect):
        if value is not None:
            if value.tzinfo is None:
                raise ValueError("naive datetime")
            value = value.astimezone(UTC)
        return value

    def process_result_value(self, value, _dialect):
        if value is not None and value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        return value


chat_sessions = sa.Table(
    "web_chat_sessions",
    metadata,
    sa.Column("id_hash", sa.String(64), primary_key=True),
    sa.Column("sender_id", sa.String(64), nullable=False, unique=True),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("area", sa.String(80)),
    sa.Column("speaker", sa.String(20)),
    sa.Column("pending_safety", sa.JSON),
    sa.Column("last_escalation_id", sa.String(64)),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("last_seen_at", _UTCDateTime, nullable=False),
)

duty_users = sa.Table(
    "web_duty_users",
    metadata,
    sa.Column("username", sa.String(64), primary_key=True),
    sa.Column("password_hash", sa.String(255), nullable=False),
    sa.Column("areas", sa.JSON, nullable=False),
    sa.Column("disabled", sa.Boolean, nullable=False, default=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
)

duty_sessions = sa.Table(
    "web_duty_sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("username", sa.String(64), sa.ForeignKey("web_duty_users.username", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("created_at", _UTCDateTime, nullable=False),
    sa.Column("last_seen_at", _UTCDateTime, nullable=False),
)

login_failures = sa.Table(
    "web_login_failures",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(64), nullable=False, index=True),
    sa.Column("at", _UTCDateTime, nullable=False),
)

access_log = sa.Table(
    "web_duty_access",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", _UTCDateTime, nullable=False),
    sa.Column("actor", sa.String(64), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("escalation_id", sa.String(64)),
    sa.Column("detail", sa.JSON),
)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def utcnow() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass
class ChatSession:
    id: str  # the secret in the cookie; only its hash is stored
    sender_id: str
    csrf: str
    area: str | None = None
    speaker: str | None = None
    pending_safety: dict | None = None
    last_escalation_id: str | None = None


@dataclass(frozen=True)
class DutyUser:
    username: str
    areas: tuple[str, ...]


@dataclass(frozen=True)
class DutyLogin:
    user: DutyUser
    csrf: str


class LockedOut(Exception):
    def __init__(self, until: dt.datetime):
        self.until = until
        super().__init__(f"locked until {until.isoformat()}")


_hasher = PasswordHasher()


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    """A hash to verify against when the user does not exist, so a wrong username takes as long as a wrong
    password. Made on first use, not at import: argon2 costs about a second on a busy machine, paid by
    every web app start (and every crash-restart) otherwise."""
    return _hasher.hash(secrets.token_urlsafe(16))


TABLES_LOCK = 7355608002  # pg_advisory_xact_lock key for creating the web_ tables (the escalation store's is ...001)


def create_tables(engine: Engine) -> None:
    """Create the web_ tables that are missing. On PostgreSQL, under a transaction-level advisory lock:
    several web apps starting at once would otherwise race between "does it exist?" and CREATE TABLE
    (PostgreSQL then refuses the loser with a duplicate pg_type row). DDL is transactional there, so the
    next creator sees the tables once the first commits. On SQLite (one machine) no lock is taken."""
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": TABLES_LOCK})
        metadata.create_all(conn)


class WebStore:
    def __init__(self, engine: Engine, clock=utcnow):
        self.engine = engine
        self.clock = clock
        create_tables(engine)

    @classmethod
    def open(cls, url: str | None = None, clock=utcnow) -> "WebStore":
        return cls(make_engine(url or database_url("earlyhelp")), clock=clock)

    def dispose(self) -> None:
        self.engine.dispose()

    def ping(self) -> None:
        with self.engine.connect() as conn:
            conn.execute(sa.select(sa.func.count()).select_from(chat_sessions).limit(1))

    # -- chat sessions -------------------------------------------------------------------------------

    def new_chat_session(self) -> ChatSession:
        now = self.clock()
        session = ChatSession(id=secrets.token_urlsafe(32), sender_id=f"web-{secrets.token_hex(16)}", csrf=secrets.token_urlsafe(32))
        with self.engine.begin() as conn:
            conn.execute(sa.insert(chat_sessions).values(
                id_hash=token_hash(session.id), sender_id=session.sender_id, csrf=session.csrf,
                created_at=now, last_seen_at=now))
        return session

    def chat_session(self, session_id: str, idle: dt.timedelta) -> ChatSession | None:
        """The live session for this cookie secret, or None (unknown or idle too long; then forgotten)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(sa.select(chat_sessions).where(chat_sessions.c.id_hash == token_hash(session_id))).mappings().first()
            if row is None:
                return None
            if row["last_seen_at"] < now - idle:
                conn.execute(sa.delete(chat_sessions).where(chat_sessions.c.id_hash == row["id_hash"]))
                return None
        return ChatSession(id=session_id, sender_id=row["sender_id"], csrf=row["csrf"], area=row["area"],
                           speaker=row["speaker"], pending_safety=row["pending_safety"],
                           last_escalation_id=row["last_escalation_id"])

    def save_chat_session(self, session: ChatSession) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                sa.update(chat_sessions).where(chat_sessions.c.id_hash == token_hash(session.id)).values(
                    area=session.area, speaker=session.speaker, pending_safety=session.pending_safety,
                    last_escalation_id=session.last_escalation_id, last_seen_at=self.clock()))

    def end_chat_session(self, session_id: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(chat_sessions).where(chat_sessions.c.id_hash == token_hash(session_id)))

    def forget_idle_chat_sessions(self, idle: dt.timedelta) -> int:
        with self.engine.begin() as conn:
            return conn.execute(sa.delete(chat_sessions).where(chat_sessions.c.last_seen_at < self.clock() - idle)).rowcount

    # -- duty accounts -------------------------------------------------------------------------------

    def add_user(self, username: str, password: str, areas: list[str], *, replace: bool = False) -> DutyUser:
        from bot.areas import get_area

        if not isinstance(username, str) or not USERNAME.match(username):
            raise BadInput("a username is 2 to 64 letters, digits or . _ @ - and starts with a letter or digit")
        if not isinstance(password, str) or len(password) < MIN_PASSWORD:
            raise BadInput(f"a password must be at least {MIN_PASSWORD} characters")
        if len(password) > 1024:
            raise BadInput("a password must be at most 1024 characters")
        if not areas:
            raise BadInput("give at least one area (--areas a,b)")
        ids = [get_area(a).id for a in areas]  # raises UnknownArea with the known ones
        values = dict(password_hash=_hasher.hash(password), areas=sorted(set(ids)), disabled=False)
        with self.engine.begin() as conn:
            exists = conn.execute(sa.select(duty_users.c.username).where(duty_users.c.username == username)).first()
            if exists and not replace:
                raise BadInput(f"user {username!r} already exists (use --replace to change the password and areas)")
            if exists:
                conn.execute(sa.update(duty_users).where(duty_users.c.username == username).values(**values))
                conn.execute(sa.delete(duty_sessions).where(duty_sessions.c.username == username))
            else:
                conn.execute(sa.insert(duty_users).values(username=username, created_at=self.clock(), **values))
        self.log(username, "account_saved", None, {"areas": values["areas"]})
        return DutyUser(username, tuple(values["areas"]))

    def users(self) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(duty_users).order_by(duty_users.c.username)).mappings().all()
        return [{"username": r["username"], "areas": list(r["areas"]), "disabled": bool(r["disabled"]),
                 "created_at": r["created_at"].isoformat()} for r in rows]

    def disable_user(self, username: str) -> None:
        with self.engine.begin() as conn:
            done = conn.execute(sa.update(duty_users).where(duty_users.c.username == username).values(disabled=True)).rowcount
            conn.execute(sa.delete(duty_sessions).where(duty_sessions.c.username == username))
        if not done:
            raise BadInput(f"no user {username!r}")
        self.log(username, "account_disabled")

    # -- logging in ----------------------------------------------------------------------------------

    def authenticate(self, username: str, password: str, *, attempts: int, window: dt.timedelta) -> DutyUser | None:
        """The user if the password is right; records a failure otherwise. Raises LockedOut while locked.

        After ``attempts`` failures within ``window`` the account is locked until the oldest of them is
        ``window`` old, whatever password is given meanwhile. Unknown users take as long as known ones.
        """
        now = self.clock()
        username = (username or "")[:64]
        with self.engine.begin() as conn:
            recent = conn.execute(
                sa.select(login_failures.c.at).where(login_failures.c.username == username, login_failures.c.at > now - window)
                .order_by(login_failures.c.at.desc()).limit(attempts)
            ).scalars().all()
            if len(recent) >= attempts:
                raise LockedOut(min(recent) + window)
            row = conn.execute(sa.select(duty_users).where(duty_users.c.username == username)).mappings().first()
        ok = False
        try:
            ok = _hasher.verify(row["password_hash"] if row else _dummy_hash(), password or "") and row is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or row["disabled"]:
            with self.engine.begin() as conn:
                conn.execute(sa.insert(login_failures).values(username=username, at=now))
                conn.execute(sa.delete(login_failures).where(login_failures.c.at < now - 10 * window))
            self.log(username or "?", "login_failed")
            if len(recent) + 1 >= attempts:
                self.log(username or "?", "locked_out", None, {"minutes": window.total_seconds() / 60})
            return None
        with self.engine.begin() as conn:
            conn.execute(sa.delete(login_failures).where(login_failures.c.username == username))
        return DutyUser(row["username"], tuple(row["areas"]))

    def start_duty_session(self, user: DutyUser) -> tuple[str, str]:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        now = self.clock()
        with self.engine.begin() as conn:
            conn.execute(sa.insert(duty_sessions).values(token_hash=token_hash(token), username=user.username, csrf=csrf,
                                                         created_at=now, last_seen_at=now))
        self.log(user.username, "login")
        return token, csrf

    def duty_session(self, token: str, idle: dt.timedelta, absolute: dt.timedelta, touch: bool = True) -> DutyLogin | None:
        """The live login for this token; ``touch`` counts this as use (a live-update stream does not)."""
        now = self.clock()
        with self.engine.begin() as conn:
            row = conn.execute(
                sa.select(duty_sessions, duty_users.c.areas, duty_users.c.disabled)
                .join(duty_users, duty_users.c.username == duty_sessions.c.username)
                .where(duty_sessions.c.token_hash == token_hash(token))
            ).mappings().first()
            if row is None:
                return None
            if row["disabled"] or row["last_seen_at"] < now - idle or row["created_at"] < now - absolute:
                conn.execute(sa.delete(duty_sessions).where(duty_sessions.c.token_hash == row["token_hash"]))
                return None
            if touch:
                conn.execute(sa.update(duty_sessions).where(duty_sessions.c.token_hash == row["token_hash"]).values(last_seen_at=now))
        return DutyLogin(DutyUser(row["username"], tuple(row["areas"])), row["csrf"])

    def end_duty_session(self, token: str, username: str) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.delete(duty_sessions).where(duty_sessions.c.token_hash == token_hash(token)))
        self.log(username, "logout")

    # -- the access log ------------------------------------------------------------------------------

    def log(self, actor: str, action: str, escalation_id: str | None = None, detail: dict | None = None) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.insert(access_log).values(at=self.clock(), actor=actor[:64], action=action,
                                                      escalation_id=escalation_id, detail=detail))

    def access_log(self, actor: str | None = None, escalation_id: str | None = None) -> list[dict[str, Any]]:
        query = sa.select(access_log).order_by(access_log.c.id)
        if actor is not None:
            query = query.where(access_log.c.actor == actor)
        if escalation_id is not None:
            query = query.where(access_log.c.escalation_id == escalation_id)
        with self.engine.connect() as conn:
            return [{**dict(r), "at": r["at"].isoformat()} for r in conn.execute(query).mappings()]
