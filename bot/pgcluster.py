"""A throw-away PostgreSQL cluster on a loopback port: ``initdb`` and ``pg_ctl`` from the Debian package.

One implementation for everything that needs a real PostgreSQL without a configured server: the scaled
stack's demonstration run (``python -m bot.scaled run`` without ``DATABASE_URL``) and the tests of the
escalation store, the directory, the web app and the scaled stack. Never for real use: it runs with
``fsync=off`` (a crash loses it anyway) and ``remove()`` deletes it.

As root the cluster belongs to the ``postgres`` account (``initdb`` and ``postgres`` refuse to run as
root), reached through ``runuser``. Its socket is in its own folder, and it listens on 127.0.0.1 only.
With a ``password`` the cluster asks for it (scram-sha-256); without one it trusts loopback connections
(tests only).

    cluster = PostgresCluster(password="...", database="earlyhelp").start()
    cluster.url                      # postgresql+psycopg://earlyhelp:...@127.0.0.1:PORT/earlyhelp
    cluster.stop(); cluster.start()  # a database that goes away and comes back
    cluster.remove()                 # stop and delete
"""
from __future__ import annotations

import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import urllib.parse
from pathlib import Path


class ClusterUnavailable(RuntimeError):
    """This machine cannot run a throw-away cluster; the message says what is missing."""


class ClusterError(RuntimeError):
    """initdb or pg_ctl failed; the message holds the end of what it printed."""


def pg_bindir() -> Path | None:
    """The PostgreSQL server binaries (``initdb``, ``pg_ctl``): on PATH, else the newest /usr/lib/postgresql/N."""
    for name in ("pg_ctl", "initdb"):
        found = shutil.which(name)
        if found and Path(os.path.realpath(found)).with_name("initdb").exists():
            return Path(os.path.realpath(found)).parent

    def version(path: str) -> int:
        part = path.split("/")[4]
        return int(part) if part.isdigit() else 0

    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    return Path(candidates[-1]).parent if candidates else None


def _has_account(name: str) -> bool:
    import pwd

    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def unavailable() -> str | None:
    """Why a throw-away cluster cannot run here (None when it can)."""
    if pg_bindir() is None:
        return "PostgreSQL server binaries (initdb, pg_ctl) are not installed: apt-get install postgresql"
    if os.geteuid() == 0 and (shutil.which("runuser") is None or not _has_account("postgres")):
        return "running as root without a 'postgres' account (PostgreSQL refuses root; the postgresql package creates it)"
    return None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class PostgresCluster:
    """A throw-away cluster: ``start()`` makes it (once) and starts it; ``stop()``/``start()`` again; ``remove()``."""

    def __init__(self, *, user: str = "earlyhelp", password: str | None = None, database: str = "postgres",
                 prefix: str = "earlyhelp-pg-", max_connections: int = 100, port: int | None = None):
        reason = unavailable()
        if reason:
            raise ClusterUnavailable(reason)
        self.bindir: Path = pg_bindir()  # type: ignore[assignment]
        self.user, self.database, self.max_connections = user, database, max_connections
        self._password = password
        self.port = port or free_port()
        self.root = Path(tempfile.mkdtemp(prefix=prefix))
        self.as_owner: list[str] = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.root, "postgres")
        os.chmod(self.root, 0o700)
        self.initialised = False
        self.running = False

    def __repr__(self) -> str:  # never the password
        return f"PostgresCluster(port={self.port}, root={str(self.root)!r}, running={self.running})"

    @property
    def data(self) -> Path:
        return self.root / "data"

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (psycopg 3 driver) of the cluster's database."""
        return self.url_for()

    def url_for(self, database: str | None = None, driver: str | None = "psycopg") -> str:
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        login = urllib.parse.quote(self.user, safe="")
        if self._password is not None:
            login += ":" + urllib.parse.quote(self._password, safe="")
        return f"{scheme}://{login}@127.0.0.1:{self.port}/{database or self.database}"

    def _run(self, argv: list[str], timeout: float) -> None:
        done = subprocess.run([*self.as_owner, *argv], capture_output=True, text=True, timeout=timeout)
        if done.returncode:
            raise ClusterError(f"{Path(argv[0]).name} failed: {(done.stderr or done.stdout).strip()[-800:]}")

    def _initdb(self) -> None:
        argv = [str(self.bindir / "initdb"), "-D", str(self.data), "-U", self.user, "-E", "UTF8", "--no-sync"]
        secret = self.root / "pwfile"
        if self._password is not None:
            secret.write_text(self._password + "\n")
            secret.chmod(0o600)
            if self.as_owner:
                shutil.chown(secret, "postgres")
            argv += ["-A", "scram-sha-256", f"--pwfile={secret}"]
        else:
            argv += ["-A", "trust"]
        try:
            self._run(argv, timeout=180)
        finally:
            secret.unlink(missing_ok=True)
        self.initialised = True

    def start(self) -> "PostgresCluster":
        """Make the cluster the first time, then start it (and create the database the first time)."""
        first = not self.initialised
        if first:
            self._initdb()
        # throw-away: no fsync (a crash loses the cluster anyway); loopback only; the socket in our folder
        options = (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.root} -c fsync=off "
                   f"-c synchronous_commit=off -c full_page_writes=off -c max_connections={self.max_connections}")
        self.running = True  # from here on, stop() must try pg_ctl stop even if this start half-failed
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "postgres.log"),
                   "-w", "-t", "120", "start"], timeout=150)
        if first and self.database != "postgres":
            self.create_database(self.database)
        return self

    def create_database(self, name: str) -> str:
        """A new empty database in the cluster; returns its URL."""
        import psycopg

        if not name.replace("_", "").isalnum():
            raise ValueError(f"database name {name!r}: letters, digits and _ only")
        with psycopg.connect(self.url_for("postgres", driver=None), autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url_for(name)

    def stop(self, mode: str = "fast") -> None:
        """Stop the server (``mode``: fast, or immediate as a crash would); the cluster stays for start()."""
        if self.running:
            self._run([str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", mode, "-w", "stop"], timeout=60)
            self.running = False

    def remove(self) -> None:
        """Stop the server if it runs and delete the cluster."""
        with contextlib.suppress(Exception):
            self.stop("immediate")
        shutil.rmtree(self.root, ignore_errors=True)

    def __enter__(self) -> "PostgresCluster":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.remove()
