"""Run the assistant the way a county would: several instances of everything, on engines that share state.

``python -m bot.scaled run`` starts, on one machine and with Debian packages only (no containers):

* PostgreSQL: the directory, the escalations, the web app's sessions and Rasa's SQL tracker store. A
  throw-away cluster on a loopback port (deleted at Ctrl-C) unless ``DATABASE_URL`` names a real one.
* Redis: Rasa's lock store, so two turns of one conversation are handled one after the other even when
  they reach different Rasa instances. A throw-away ``redis-server`` unless ``REDIS_URL`` names one.
* N action servers and N Rasa instances (default 2 each) on loopback ports, and M web apps (default 2).
* nginx with a generated configuration: the public port in front of the web apps, and two loopback
  balancers, one in front of the Rasa instances (the web apps talk to it) and one in front of the action
  servers (every Rasa instance talks to it). A dead instance is skipped (``proxy_next_upstream``).

Any Rasa instance can take any turn of any conversation: the tracker is in PostgreSQL, the turn lock in
Redis. Secrets (database and Redis passwords, the action token) are generated for each run and written
only to files readable by their owner under the state folder. Ctrl-C stops everything.

Same code as ``make run`` (``bot.runner``): the model, the endpoints file, the way each process is started.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path

from bot import pgcluster
from bot.paths import REPO_ROOT, home
from bot.runner import PYTHON, RASA, Stack, free_port, train, wait_for, write_endpoints

# Rasa's turn lock: rasa_ext.lock_store.RedisTicketLockStore (Rasa's Redis ticket lock whose live tickets are renewed
# and whose changes are atomic). A crashed instance holds a conversation's turn for at most this long (Rasa's
# default: 60 s); a slow live one keeps it as long as it works (up to 60 s), never overtaken.
LOCK_STORE = "rasa_ext.lock_store.RedisTicketLockStore"
TICKET_LOCK_LIFETIME = 15
# Request bodies nginx lets through. The public port: what the web app takes (its own check is smaller still).
# The loopback pools: the action servers' own limit (Sanic's default, 100 MB). Rasa sends each action call the
# conversation's whole tracker, about 6 kB more per turn, so a long conversation's calls grow past any small
# limit: at the public port's 256 kB every action call of a conversation failed from about its 42nd turn (nginx's
# 413; Rasa then answered nothing and the person got the web app's fallback answer).
PUBLIC_BODY_LIMIT = "256k"
POOL_BODY_LIMIT = "100m"
# ... and held in memory whole (nginx allocates only what a body needs): a body past the buffer would go to a
# temporary file, which nginx's worker (not the owner of the state folder) may not write (a 500), and a tracker
# (what people said, redacted) would be written to disk
POOL_BODY_BUFFER = POOL_BODY_LIMIT


class ScaledError(RuntimeError):
    """Something the scaled stack needs is missing or failed; the message says what to do."""


# ---- finding the Debian binaries --------------------------------------------------------------------

def nginx_binary() -> str | None:
    return shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.access(p, os.X_OK)), None)


def redis_binary() -> str | None:
    return shutil.which("redis-server") or next((p for p in ("/usr/bin/redis-server",) if os.access(p, os.X_OK)), None)


def missing(env: dict[str, str] | None = None) -> list[str]:
    """What this machine lacks to run the scaled stack (empty when nothing), as apt package names with why."""
    env = dict(os.environ if env is None else env)
    lacking = []
    if not env.get("DATABASE_URL"):
        reason = pgcluster.unavailable()
        if reason:
            lacking.append(f"postgresql ({reason}; or set DATABASE_URL to an existing PostgreSQL)")
    if not env.get("REDIS_URL") and redis_binary() is None:
        lacking.append("redis-server (or set REDIS_URL)")
    if nginx_binary() is None:
        lacking.append("nginx")
    return lacking


# ---- PostgreSQL --------------------------------------------------------------------------------------

def plain_postgres_url(url: str) -> str:
    """``postgresql://...`` without a driver name (Rasa's tracker-store settings are read from this form)."""
    scheme, rest = url.split("://", 1)
    return "postgresql://" + rest if scheme.startswith(("postgres", "postgresql")) else url


def psycopg_url(url: str) -> str:
    """The URL with the psycopg (3) driver the project's environment has."""
    scheme, rest = url.split("://", 1)
    return "postgresql+psycopg://" + rest if scheme in ("postgres", "postgresql") else url


# ---- Redis -------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is, from ``REDIS_URL``: ``redis://[user:password@]host:port/db``, or ``rediss://`` for TLS,
    with optional ``?ssl_ca_certs=/path/ca.pem`` (a private CA) and ``ssl_certfile=``/``ssl_keyfile=`` (a
    client certificate), the names Rasa's Redis lock store and redis-py use."""

    host: str
    port: int
    db: int = 0
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    tls: bool = False
    ssl_ca_certs: str | None = None
    ssl_certfile: str | None = None
    ssl_keyfile: str | None = None

    TLS_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile")

    @classmethod
    def parse(cls, url: str) -> "RedisAddress":
        parts = urllib.parse.urlsplit(url)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ScaledError(f"REDIS_URL must look like redis://[:password@]host:port/db (rediss:// for TLS), "
                              f"got {parts.scheme or url!r}://...")
        db = parts.path.strip("/") or "0"
        if not db.isdigit():
            raise ScaledError("REDIS_URL: the database after the last / must be a number")
        query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
        unknown = sorted(set(query) - set(cls.TLS_OPTIONS))
        if unknown:
            raise ScaledError(f"REDIS_URL: unknown setting(s) {', '.join(unknown)}; known: {', '.join(cls.TLS_OPTIONS)}")
        options = {key: query[key][-1] for key in cls.TLS_OPTIONS if query.get(key, [""])[-1]}
        if options and parts.scheme != "rediss":
            raise ScaledError("REDIS_URL: ssl_* settings need rediss:// (TLS)")
        return cls(parts.hostname, parts.port or 6379, int(db),
                   urllib.parse.unquote(parts.password) if parts.password else None,
                   urllib.parse.unquote(parts.username) if parts.username else None,
                   tls=parts.scheme == "rediss", **options)

    def lock_store_yaml(self) -> str:
        def quoted(value: object) -> str:  # JSON is YAML: a password may hold : # ' and the like
            return json.dumps(value)

        text = (f"lock_store:\n  type: {LOCK_STORE}\n  url: {quoted(self.host)}\n  port: {self.port}\n  db: {self.db}\n"
                f"  key_prefix: earlyhelp\n  lock_lifetime: {TICKET_LOCK_LIFETIME}\n")
        if self.username:
            text += f"  username: {quoted(self.username)}\n"
        if self.password:
            text += f"  password: {quoted(self.password)}\n"
        if self.tls:
            text += "  use_ssl: true\n"
            for key in self.TLS_OPTIONS:
                if getattr(self, key):
                    text += f"  {key}: {quoted(getattr(self, key))}\n"
        return text

    def ping(self, timeout: float = 1.0) -> bool:
        """True when Redis answers PING (after AUTH when there is a password), over TLS for rediss://."""
        def command(*args: str) -> bytes:
            return f"*{len(args)}\r\n".encode() + b"".join(f"${len(a.encode())}\r\n{a}\r\n".encode() for a in args)

        try:
            with contextlib.ExitStack() as stack:
                sock = stack.enter_context(socket.create_connection((self.host, self.port), timeout=timeout))
                if self.tls:
                    import ssl

                    context = ssl.create_default_context(cafile=self.ssl_ca_certs)
                    if self.ssl_certfile:
                        context.load_cert_chain(self.ssl_certfile, self.ssl_keyfile)
                    sock = stack.enter_context(context.wrap_socket(sock, server_hostname=self.host))
                if self.password:
                    sock.sendall(command("AUTH", *([self.username] if self.username else []), self.password))
                    if not sock.recv(256).startswith(b"+OK"):
                        return False
                sock.sendall(command("PING"))
                return sock.recv(64).startswith(b"+PONG")
        except OSError:  # ssl.SSLError is an OSError
            return False


# ---- nginx -------------------------------------------------------------------------------------------

def nginx_conf(state: Path, public: tuple[str, int], web_ports: list[int], rasa_lb: int, rasa_ports: list[int],
               action_lb: int, action_ports: list[int]) -> str:
    """nginx in front of each pool. Access logs hold times, status and which instance answered; never a
    client address or a query string (the action token travels in a request header, never in the URL)."""
    def upstream(name: str, ports: list[int]) -> str:
        servers = "".join(f"    server 127.0.0.1:{p} max_fails=1 fail_timeout=5s;\n" for p in ports)
        return f"  upstream {name} {{\n    zone {name} 64k;\n{servers}    keepalive 32;\n  }}\n"

    def proxied(name: str, read_timeout: str) -> str:
        return (f"      proxy_pass http://{name};\n"
                "      proxy_http_version 1.1;\n"
                "      proxy_set_header Connection \"\";\n"
                "      proxy_connect_timeout 1s;\n"
                f"      proxy_read_timeout {read_timeout};\n"
                "      proxy_next_upstream error timeout http_502 http_503;\n"
                "      proxy_next_upstream_tries 3;\n")

    host, port = public
    listen = f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
    tmp = state / "nginx-tmp"
    return (
        "# Generated by bot/scaled.py for this run; edit the generator, not this file.\n"
        "worker_processes 1;\n"
        f"pid {state / 'nginx.pid'};\n"
        f"error_log {state / 'nginx-error.log'} warn;\n"
        "events { worker_connections 4096; }\n"
        "http {\n"
        f"  client_body_temp_path {tmp}/body;\n  proxy_temp_path {tmp}/proxy;\n  fastcgi_temp_path {tmp}/fastcgi;\n"
        f"  uwsgi_temp_path {tmp}/uwsgi;\n  scgi_temp_path {tmp}/scgi;\n"
        "  proxy_max_temp_file_size 0;\n"
        "  proxy_buffer_size 64k;\n  proxy_buffers 16 64k;\n"
        "  server_tokens off;\n"
        "  log_format pools '$msec $server_port $request_method $uri $status $request_time \"$upstream_addr\" '\n"
        "                   '\"$upstream_status\" \"$upstream_response_time\"';\n"
        + upstream("earlyhelp_web", web_ports) + upstream("earlyhelp_rasa", rasa_ports) + upstream("earlyhelp_actions", action_ports)
        + "  server {\n"
        f"    listen {listen};\n"
        f"    access_log {state / 'nginx-public-access.log'} pools;\n"
        f"    client_max_body_size {PUBLIC_BODY_LIMIT};\n    client_body_buffer_size {PUBLIC_BODY_LIMIT};\n"
        "    location / {\n"
        + proxied("earlyhelp_web", "3600s")  # the duty inbox's live updates are a long-lived stream
        + "      proxy_buffering off;\n"
        "      proxy_set_header Host $http_host;\n"
        "      proxy_set_header X-Forwarded-For $remote_addr;\n"
        "      proxy_set_header X-Forwarded-Proto $scheme;\n"
        "    }\n  }\n"
        "  server {\n"
        f"    listen 127.0.0.1:{rasa_lb};\n"
        f"    access_log {state / 'nginx-rasa-access.log'} pools;\n"
        f"    client_max_body_size {POOL_BODY_LIMIT};\n    client_body_buffer_size {POOL_BODY_BUFFER};\n"
        "    location / {\n" + proxied("earlyhelp_rasa", "60s") + "    }\n  }\n"
        "  server {\n"
        f"    listen 127.0.0.1:{action_lb};\n"
        f"    access_log {state / 'nginx-actions-access.log'} pools;\n"
        f"    client_max_body_size {POOL_BODY_LIMIT};\n    client_body_buffer_size {POOL_BODY_BUFFER};\n"
        "    location / {\n" + proxied("earlyhelp_actions", "60s") + "    }\n  }\n"
        "}\n"
    )


# ---- the stack ---------------------------------------------------------------------------------------

PREPARE = """
from bot.escalation.store import EscalationStore
from bot.web.storage import WebStore
from directory import Directory
EscalationStore.open().dispose()
WebStore.open().dispose()
Directory.open().close()
"""


@dataclass
class ScaledStack(Stack):
    """Several Rasa instances, action servers and web apps behind nginx, on PostgreSQL and Redis.

    ``rasa_port``/``action_port``/``web_port`` (and so ``rasa_url``/``action_url``) are nginx's: the
    addresses the other parts use. ``database_url``/``redis_url``: existing servers to use; when None a
    throw-away PostgreSQL cluster / redis-server is started for this run.
    """

    rasas: int = 2
    action_servers: int = 2
    web_apps: int = 2
    web_host: str = "127.0.0.1"
    database_url: str | None = None
    redis_url: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)
    postgres: pgcluster.PostgresCluster | None = None
    instance_ports: dict[str, int] = field(default_factory=dict)
    argvs: dict[str, tuple[list[str], dict[str, str]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if min(self.rasas, self.action_servers, self.web_apps) < 1:
            raise ScaledError("every pool needs at least one instance")
        self.state.mkdir(parents=True, exist_ok=True)

    @property
    def public_url(self) -> str:
        host = "127.0.0.1" if self.web_host in ("0.0.0.0", "::", "") else self.web_host
        return f"http://{host}:{self.web_port}"

    def _launch(self, name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen:
        self.argvs[name] = (argv, env)
        return self._spawn(name, argv, {**self.extra_env, **env})

    def start(self, model: Path | None = None, timeout: float = 300) -> "ScaledStack":
        lacking = missing({"DATABASE_URL": self.database_url or "", "REDIS_URL": self.redis_url or ""})
        if lacking:
            raise ScaledError("the scaled stack needs: " + "; ".join(lacking))
        model = model or train()
        try:
            self._start(model, timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self, model: Path, timeout: float) -> None:
        state = self.state
        # 1. PostgreSQL, and every table made once here (two processes creating them at once would race)
        if self.database_url is None:
            self.postgres = pgcluster.PostgresCluster(password=secrets.token_urlsafe(24), database="earlyhelp",
                                                      max_connections=200)
            self.postgres.start()
            self.database_url = self.postgres.url
        database_url = psycopg_url(self.database_url)
        if self.postgres is not None:  # the throw-away cluster's address, for the CLI: readable by its owner only
            secret = state / "database-url"
            secret.write_text(database_url + "\n")
            secret.chmod(0o600)
        common = {"DATABASE_URL": database_url, "EARLYHELP_HOME": str(state)}
        prepared = subprocess.run([str(PYTHON), "-c", PREPARE], cwd=REPO_ROOT, env={**os.environ, **self.extra_env, **common},
                                  capture_output=True, text=True, timeout=timeout)
        if prepared.returncode:
            raise ScaledError("preparing the database failed:\n" + prepared.stderr[-2000:])

        # 2. Redis for Rasa's lock store
        if self.redis_url is None:
            password = secrets.token_urlsafe(24)
            port = free_port()
            conf = state / "redis.conf"
            conf.write_text(f"bind 127.0.0.1\nport {port}\nprotected-mode yes\nrequirepass {password}\nsave \"\"\n"
                            f"appendonly no\ndaemonize no\ndir {state}\n")
            conf.chmod(0o600)
            self._launch("redis", [redis_binary(), str(conf)], {})
            self.redis_url = f"redis://:{urllib.parse.quote(password)}@127.0.0.1:{port}/0"
        redis = RedisAddress.parse(self.redis_url)

        # 3. the pools, each instance on its own loopback port, nginx's balancers in front
        self.rasa_port, self.action_port = free_port(), free_port()
        self.web_port = self.web_port or free_port()
        token = secrets.token_urlsafe(24)
        with _environment(DATABASE_URL=plain_postgres_url(self.database_url)):
            endpoints = write_endpoints(state, self.action_port, token)  # action_endpoint: nginx's balancer
        with endpoints.open("a") as handle:
            handle.write(redis.lock_store_yaml())
        waits: list[tuple[str, str]] = []
        for n in range(1, self.action_servers + 1):
            port = self.instance_ports[f"action-server-{n}"] = free_port()
            self._launch(f"action-server-{n}", [str(PYTHON), "-m", "actions.server", "--port", str(port)],
                         {**common, "EARLYHELP_ACTION_TOKEN": token})
            waits.append((f"action-server-{n}", f"http://127.0.0.1:{port}/health"))
        for n in range(1, self.rasas + 1):
            port = self.instance_ports[f"rasa-{n}"] = free_port()
            self._launch(f"rasa-{n}", [
                str(RASA), "run", "--model", str(model), "--endpoints", str(endpoints),
                "--credentials", str(REPO_ROOT / "credentials.yml"), "--interface", "127.0.0.1", "--port", str(port),
            ], {"TICKET_LOCK_LIFETIME": str(TICKET_LOCK_LIFETIME)})
            waits.append((f"rasa-{n}", f"http://127.0.0.1:{port}/"))
        for n in range(1, self.web_apps + 1):
            port = self.instance_ports[f"web-{n}"] = free_port()
            self._launch(f"web-{n}", [
                str(PYTHON), "-m", "bot.web", "--host", "127.0.0.1", "--port", str(port),
                "--rasa-url", self.rasa_url, "--action-url", self.action_url,
            ], {**common, "EARLYHELP_TRUST_PROXY": "1"})
            waits.append((f"web-{n}", f"http://127.0.0.1:{port}/healthz"))
        conf = state / "nginx.conf"
        conf.write_text(nginx_conf(
            state, (self.web_host, self.web_port),
            [self.instance_ports[f"web-{n}"] for n in range(1, self.web_apps + 1)], self.rasa_port,
            [self.instance_ports[f"rasa-{n}"] for n in range(1, self.rasas + 1)], self.action_port,
            [self.instance_ports[f"action-server-{n}"] for n in range(1, self.action_servers + 1)]))
        (state / "nginx-tmp").mkdir(exist_ok=True)
        self._launch("nginx", [nginx_binary(), "-c", str(conf), "-p", str(state), "-e", str(state / "nginx-error.log"),
                               "-g", "daemon off;"], {})
        waits.append(("nginx", f"{self.public_url}/healthz"))

        deadline = time.monotonic() + timeout
        while not redis.ping():
            if time.monotonic() > deadline:
                raise ScaledError(f"Redis did not answer at {redis.host}:{redis.port} (see {state}/redis.log)")
            time.sleep(0.2)
        for name, url in waits:
            wait_for(url, self.process(name), name, max(1.0, deadline - time.monotonic()))
        wait_for(f"{self.rasa_url}/", self.process("nginx"), "nginx (Rasa pool)", max(1.0, deadline - time.monotonic()))

    def kill(self, name: str) -> None:
        """Kill one process at once (SIGKILL: no clean shutdown), as a crash would."""
        process = self.process(name)
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)

    def stop(self) -> None:
        super().stop()
        if self.postgres is not None:
            self.postgres.remove()
            self.postgres = None
            self.database_url = None

    def fatal_loss(self, lost: list[str]) -> str | None:
        """The others carry on after one instance is lost; not once nginx, or every web app, is."""
        if "nginx" in lost:
            return "nginx stopped"
        if all(f"web-{n}" in lost for n in range(1, self.web_apps + 1)):
            return "No web app left"
        return None

    def describe(self) -> str:
        kept = "throw-away (deleted at Ctrl-C; set DATABASE_URL to keep it)" if self.postgres else "DATABASE_URL"
        lines = [
            "The Early Help assistant is running, scaled out:",
            f"  Chat widget        {self.public_url}/   (nginx -> {self.web_apps} web apps)",
            f"  Duty inbox         {self.public_url}/duty   "
            "(add a duty account: DATABASE_URL="
            + (f"$(cat {self.state}/database-url)" if self.postgres else "...")
            + " .venv/bin/earlyhelp users add --username NAME --areas AREA,...)",
            f"  Health             {self.public_url}/healthz, /readyz",
            f"  Rasa pool          {self.rasa_url}/webhooks/rest/webhook   (loopback, nginx -> {self.rasas} Rasa instances)",
            f"  Action pool        {self.action_url}/webhook   (loopback, nginx -> {self.action_servers} action servers, token required)",
            f"  PostgreSQL         127.0.0.1:{self.postgres.port if self.postgres else '(DATABASE_URL)'}   {kept}",
            f"  Redis (locks)      {RedisAddress.parse(self.redis_url).host}:{RedisAddress.parse(self.redis_url).port}",
            f"  State and logs     {self.state}   (one log per process; nginx-*-access.log: which instance answered)",
            "Press Ctrl-C to stop.",
        ]
        return "\n".join(lines)


@contextlib.contextmanager
def _environment(**values: str):
    """Set environment variables for the duration of a block only (tests share this process)."""
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.scaled", description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=["run", "check"], help="run: start everything; check: say what is missing")
    parser.add_argument("--rasa", type=int, default=int(os.environ.get("EARLYHELP_RASA_INSTANCES", "2")), help="Rasa instances (default 2)")
    parser.add_argument("--actions", type=int, default=int(os.environ.get("EARLYHELP_ACTION_SERVERS", "2")), help="action servers (default 2)")
    parser.add_argument("--web", type=int, default=int(os.environ.get("EARLYHELP_WEB_APPS", "2")), help="web apps (default 2)")
    parser.add_argument("--host", default=os.environ.get("EARLYHELP_HOST", "0.0.0.0"), help="public address (default 0.0.0.0)")
    parser.add_argument("--port", type=int, default=int(os.environ.get("EARLYHELP_PORT", "8080")), help="public port (default 8080)")
    args = parser.parse_args(argv)
    lacking = missing()
    if args.command == "check":
        print("ready" if not lacking else "missing: " + "; ".join(lacking))
        return 1 if lacking else 0
    if lacking:
        print("The scaled stack needs: " + "; ".join(lacking) + "\n(on Debian: apt-get install postgresql redis-server nginx)",
              file=sys.stderr)
        return 2
    state = home() / "scaled"
    state.mkdir(parents=True, exist_ok=True)
    os.chmod(state, 0o700)
    stack = ScaledStack(rasas=args.rasa, action_servers=args.actions, web_apps=args.web, web_host=args.host,
                        web_port=args.port, state=state, database_url=os.environ.get("DATABASE_URL") or None,
                        redis_url=os.environ.get("REDIS_URL") or None)
    try:
        return stack.serve()
    except (ScaledError, RuntimeError, TimeoutError) as err:  # start() has stopped whatever it had started
        print(f"Could not start the scaled stack: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
