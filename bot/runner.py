"""Train when needed and run the whole assistant: action server, Rasa, and the web app.

``make run`` and the end-to-end tests both use this, so what is tested is what runs. The model is
named by a hash of everything that shapes it (config, domain, training data), so it is retrained only
when one of those changes. Rasa and the action server listen on loopback only; the action server
accepts only calls carrying a random token generated for this run.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from bot.paths import REPO_ROOT, home

RASA = REPO_ROOT / ".venv-rasa" / "bin" / "rasa"
PYTHON = Path(sys.executable)
MODEL_INPUTS = ("config.yml", "domain.yml", "data")
QUIET_ENV = {"RASA_TELEMETRY_ENABLED": "false", "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONWARNINGS": "ignore"}
# The request header carrying the action server's token: Rasa sends it (``action_endpoint.headers`` in the
# endpoints written here), the action server (actions/server.py) refuses calls without it.
ACTION_TOKEN_HEADER = "X-Earlyhelp-Action-Token"


def models_dir() -> Path:
    path = Path(os.environ.get("EARLYHELP_MODELS", REPO_ROOT / "var" / "models"))
    path.mkdir(parents=True, exist_ok=True)
    return path


def fingerprint() -> str:
    """A hash of every file that shapes the trained model."""
    digest = hashlib.sha256()
    for name in MODEL_INPUTS:
        path = REPO_ROOT / name
        files = sorted(path.rglob("*.yml")) if path.is_dir() else [path]
        for file in files:
            digest.update(str(file.relative_to(REPO_ROOT)).encode())
            digest.update(file.read_bytes())
    return digest.hexdigest()[:16]


def model_path() -> Path:
    return models_dir() / f"earlyhelp-{fingerprint()}.tar.gz"


def train(force: bool = False) -> Path:
    """Train the Rasa model unless one for the current inputs already exists."""
    target = model_path()
    if target.exists() and not force:
        return target
    print(f"Training the Rasa model ({target.name}); this takes about a minute on 2 cores...", flush=True)
    subprocess.run(
        [str(RASA), "train", "--fixed-model-name", target.name.removesuffix(".tar.gz"), "--out", str(target.parent)],
        cwd=REPO_ROOT,
        env={**os.environ, **QUIET_ENV},
        check=True,
    )
    return target


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Rasa's SQL tracker store, reading only each turn's new rows instead of the whole conversation
# (rasa_ext/tracker_store.py; same table and rows as Rasa's own ``type: SQL``).
# EARLYHELP_RASA_TRACKER_STORE=SQL puts Rasa's own store back (the bench measures the difference with it).
CACHED_TRACKER_STORE = "rasa_ext.tracker_store.CachedSQLTrackerStore"
TRACKER_STORE_TYPE = os.environ.get("EARLYHELP_RASA_TRACKER_STORE") or CACHED_TRACKER_STORE
# Our store hands Rasa trackers holding only the last this-many events (slots and the form still come from all
# of them), so a turn's cost does not grow with the conversation (rasa_ext/tracker_store.py). 0: unbounded.
# 150 is about 13 of our turns (Rasa's policies look at the last few); a bench turn 39-50 then costs about
# what turn 14 does (300 left a 1.4x growth in a profile of Rasa's own time, 150 1.17x).
MAX_EVENT_HISTORY = 150


def max_event_history() -> int:
    return int(os.environ.get("EARLYHELP_RASA_MAX_EVENT_HISTORY") or MAX_EVENT_HISTORY)


def _tracker_bound_yaml() -> str:
    """The bound, for our store only (Rasa's own ``type: SQL`` has no such setting)."""
    if TRACKER_STORE_TYPE != CACHED_TRACKER_STORE:
        return ""
    return f"  max_event_history: {max_event_history()}\n"


def _yaml(value: object) -> str:
    """A YAML scalar that reads back as exactly ``value`` (JSON is YAML): passwords may hold : # ' and the like."""
    return json.dumps(value)


def tracker_store_yaml(state: Path) -> str:
    """Rasa's SQL tracker store: PostgreSQL when DATABASE_URL says so, else SQLite under the home.

    The URL's query (``?sslmode=verify-full&sslrootcert=/path/ca.pem``, any libpq setting) is passed to
    Rasa as its ``query``, so Rasa's connection uses TLS as the project's own stores do."""
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://", "postgresql+")):
        from sqlalchemy.engine import make_url

        parsed = make_url(url.replace("postgres://", "postgresql://", 1))
        text = (
            f"tracker_store:\n  type: {TRACKER_STORE_TYPE}\n  dialect: postgresql\n"
            f"  url: {_yaml(parsed.host or 'localhost')}\n  port: {parsed.port or 5432}\n"
            f"  db: {_yaml(parsed.database)}\n  username: {_yaml(parsed.username or '')}\n"
            f"  password: {_yaml(parsed.password or '')}\n"
            + _tracker_bound_yaml()
        )
        if parsed.query:
            text += "  query:\n" + "".join(
                f"    {_yaml(key)}: {_yaml(value if isinstance(value, str) else value[-1])}\n"
                for key, value in sorted(parsed.query.items()))
        return text
    return (f"tracker_store:\n  type: {TRACKER_STORE_TYPE}\n  dialect: sqlite\n  db: {_yaml(str(state / 'rasa-tracker.db'))}\n"
            + _tracker_bound_yaml())


def write_endpoints(state: Path, action_port: int, token: str) -> Path:
    path = state / "endpoints.yml"
    path.write_text(
        # the token in a header, never in the URL: URLs reach proxies' logs
        f"action_endpoint:\n  url: http://127.0.0.1:{action_port}/webhook\n"
        f"  headers:\n    {ACTION_TOKEN_HEADER}: {token}\n"
        + tracker_store_yaml(state)
    )
    path.chmod(0o600)
    return path


def wait_for(url: str, process: subprocess.Popen, name: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited with code {process.returncode} while starting (see {name} log)")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.5)
    raise TimeoutError(f"{name} did not answer on {url} within {timeout:.0f} s")


@dataclass
class Stack:
    """The running processes of one assistant, on the ports it was given."""

    rasa_port: int = 5005
    action_port: int = 5055
    state: Path = field(default_factory=home)
    web_port: int | None = None  # None: no web app (the conversation tests talk to Rasa directly)
    web_host: str = "127.0.0.1"
    processes: list[tuple[str, subprocess.Popen]] = field(default_factory=list)

    @property
    def rasa_url(self) -> str:
        return f"http://127.0.0.1:{self.rasa_port}"

    @property
    def action_url(self) -> str:
        return f"http://127.0.0.1:{self.action_port}"

    def _spawn(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        log = open(self.state / f"{name}.log", "ab")
        process = subprocess.Popen(
            argv, cwd=REPO_ROOT, env={**os.environ, **QUIET_ENV, **env}, stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))
        return process

    def start(self, model: Path | None = None, timeout: float = 600) -> "Stack":
        model = model or train()
        token = secrets.token_urlsafe(24)
        endpoints = write_endpoints(self.state, self.action_port, token)
        actions = self._spawn(
            "action-server",
            [str(PYTHON), "-m", "actions.server", "--port", str(self.action_port)],
            {"EARLYHELP_ACTION_TOKEN": token, "EARLYHELP_HOME": str(self.state)},
        )
        rasa = self._spawn(
            "rasa",
            [
                str(RASA), "run", "--model", str(model), "--endpoints", str(endpoints),
                "--credentials", str(REPO_ROOT / "credentials.yml"),
                "--interface", "127.0.0.1", "--port", str(self.rasa_port),
            ],
            {},
        )
        web_app = None
        if self.web_port is not None:
            web_app = self._spawn(
                "web",
                [str(PYTHON), "-m", "bot.web", "--host", self.web_host, "--port", str(self.web_port),
                 "--rasa-url", self.rasa_url, "--action-url", self.action_url],
                {"EARLYHELP_HOME": str(self.state)},
            )
        try:
            wait_for(f"{self.action_url}/health", actions, "action-server", timeout)
            wait_for(f"{self.rasa_url}/", rasa, "rasa", timeout)
            if web_app is not None:
                wait_for(f"http://127.0.0.1:{self.web_port}/readyz", web_app, "web", timeout)  # screen loaded, Rasa reachable
        except Exception:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in reversed(self.processes):
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        self.processes.clear()

    def fatal_loss(self, lost: list[str]) -> str | None:
        """Why the stack must stop now that the processes named in ``lost`` have exited (None: carry on).
        One of each, so losing any one process stops everything."""
        return "a part stopped" if lost else None

    def describe(self) -> str:
        """What is running and where, for the person who started it."""
        return (
            "The Early Help assistant is running:\n"
            f"  Chat widget        http://localhost:{self.web_port}/\n"
            f"  Duty inbox         http://localhost:{self.web_port}/duty   "
            "(add a duty account first: .venv/bin/earlyhelp users add --username NAME --areas AREA,...)\n"
            f"  Health             http://localhost:{self.web_port}/healthz, /readyz\n"
            f"  Rasa REST webhook  {self.rasa_url}/webhooks/rest/webhook   (loopback only)\n"
            f"  Action server      {self.action_url}/webhook   (loopback only, token required)\n"
            f"  State and logs     {self.state}\n"
            "Press Ctrl-C to stop.")

    def serve(self, interval: float = 0.5, **start: object) -> int:
        """Start, say where everything is, then run until Ctrl-C (or SIGTERM), or until a loss the stack
        cannot carry on without (``fatal_loss``); report each process that stops, once; stop everything.
        A Ctrl-C while starting is honoured once started. Errors from ``start`` propagate (it leaves
        nothing running). Returns the exit status (0)."""
        stopping = False

        def stop(_signum, _frame):
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGTERM, stop)
        self.start(**start)
        print("\n" + self.describe(), flush=True)
        reported: set[str] = set()
        try:
            while not stopping:
                lost = [name for name, process in self.processes if process.poll() is not None]
                for name in lost:
                    if name not in reported:
                        reported.add(name)
                        code = self.process(name).returncode
                        print(f"{name} stopped unexpectedly (exit {code}); see {self.state}/{name}.log", flush=True)
                why = self.fatal_loss(lost)
                if why:
                    print(f"{why}: stopping.", flush=True)
                    break
                time.sleep(interval)
        finally:
            print("Stopping...", flush=True)
            self.stop()
        return 0

    def process(self, name: str) -> subprocess.Popen:
        for known, process in self.processes:
            if known == name:
                return process
        raise KeyError(f"no process named {name!r}; running: {[n for n, _ in self.processes]}")

    def __enter__(self) -> "Stack":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.runner")
    parser.add_argument("command", choices=["train", "run", "model-path"])
    parser.add_argument("--force", action="store_true", help="train even if the model is up to date")
    args = parser.parse_args(argv)
    if args.command == "model-path":
        print(model_path())
        return 0
    if args.command == "train":
        print(train(force=args.force))
        return 0
    env = os.environ.get
    stack = Stack(rasa_port=int(env("EARLYHELP_RASA_PORT", "5005")), action_port=int(env("EARLYHELP_ACTION_PORT", "5055")),
                  web_port=int(env("EARLYHELP_PORT", "8080")), web_host=env("EARLYHELP_HOST", "0.0.0.0"))
    return stack.serve()


if __name__ == "__main__":
    sys.exit(main())
