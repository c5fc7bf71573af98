"""Fixtures for the web app: real app, real SQLite under the test's own folder, real HTTP on loopback.

* ``make_settings(**overrides)`` gives Settings for a fresh database and secret, pointing at a closed
  port for Rasa (so every chat answer is the fallback unless a test gives another Rasa).
* ``client_for(settings)`` is an aiohttp test client (cookies kept, including for 127.0.0.1).
* ``RasaRecorder`` is a loopback HTTP server that answers like Rasa's REST webhook and records what
  it was sent, so tests can read exactly what the gateway forwards (and when). It can also be slow.
* ``ServerThread`` runs the real app on a free port in its own thread, for urllib, hypothesis and the
  browser; ``fuzz_settings(folder)`` is the Settings the hypothesis servers run with (no Rasa, rate
  limits out of the way).
"""
from __future__ import annotations

import asyncio
import json
import re
import secrets
import socket
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot import pgcluster
from bot.web import Settings, create_app


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def closed_port() -> int:
    """A loopback port nothing listens on (bound and released: connection refused)."""
    return free_port()


def fuzz_settings(folder: Path, **overrides) -> Settings:
    """Settings for a server that hypothesis hammers: Rasa and the action server on closed ports (every chat
    answer is the fallback), its own SQLite files in ``folder``, rate limits high enough not to refuse it."""
    from bot.web.settings import Rate

    many = Rate(10_000, 60)
    values = dict(
        port=free_port(), rasa_url=f"http://127.0.0.1:{closed_port()}", action_url=f"http://127.0.0.1:{closed_port()}",
        secret_key=secrets.token_urlsafe(48), database_url=f"sqlite:///{folder / 'fuzz.db'}",
        tracker_url=f"sqlite:///{folder / 'tracker.db'}", rate_session=many, rate_address=many, rate_login=many,
        run_delivery_worker=False,
    )
    return Settings(**{**values, **overrides})


@pytest.fixture
def make_settings(tmp_path) -> Callable[..., Settings]:
    def make(**overrides) -> Settings:
        values = dict(
            host="127.0.0.1",
            port=free_port(),
            rasa_url=f"http://127.0.0.1:{closed_port()}",
            action_url=f"http://127.0.0.1:{closed_port()}",
            secret_key=secrets.token_urlsafe(48),
            database_url=f"sqlite:///{tmp_path / ('web-' + secrets.token_hex(4) + '.db')}",
            run_delivery_worker=False,
            sse_poll_seconds=0.5,
        )
        if "rasa_url" in overrides and "action_url" not in overrides:
            # the stand-in Rasa also answers the action server's /health, as the real pair would
            overrides = {**overrides, "action_url": overrides["rasa_url"]}
        values.update(overrides)
        return Settings(**values)

    return make


@pytest.fixture(scope="session", autouse=True)
def safeguarding_screen_loaded():
    """Load the safeguarding screen (its embedding model and classifier) once, before any app answers: a
    deployed app does this at start-up and /readyz waits for it; the tests must not spend the 3-second
    answer budget on it. The same for the redaction engine (spaCy)."""
    from bot.privacy.redact import load_engine
    from bot.safeguarding import screen

    screen("hello")
    load_engine()


@pytest.fixture
async def client_for():
    clients: list[TestClient] = []

    async def make(settings: Settings) -> TestClient:
        client = TestClient(TestServer(create_app(settings)), cookie_jar=aiohttp.CookieJar(unsafe=True))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()


CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


async def open_chat(client: TestClient) -> str:
    """Open the chat page like a browser (gets the cookie); returns the page's CSRF token."""
    response = await client.get("/")
    assert response.status == 200
    return CSRF.search(await response.text()).group(1)


async def say(client: TestClient, csrf: str, message, **extra) -> aiohttp.ClientResponse:
    body = {"message": message, **extra}
    return await client.post("/api/chat", json=body, headers={"X-CSRF-Token": csrf})


def texts(doc: dict) -> str:
    return "\n".join(m.get("text") or "" for m in doc["messages"])


@dataclass
class RasaRecorder:
    """A loopback stand-in for Rasa's REST webhook that records each request (and can be slow)."""

    delay: float = 0.0
    reply: list[dict] = field(default_factory=lambda: [{"recipient_id": "x", "text": "Hello from the test Rasa"}])
    on_request: Callable[[dict], None] | None = None
    received: list[dict] = field(default_factory=list)
    port: int = 0
    _runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> "RasaRecorder":
        async def webhook(request: web.Request) -> web.Response:
            body = await request.json()
            self.received.append(body)
            if self.on_request:
                self.on_request(body)
            if self.delay:
                await asyncio.sleep(self.delay)
            return web.json_response([{**r, "recipient_id": body["sender"]} for r in self.reply])

        async def hello(_request):
            return web.Response(text="Hello from Rasa: 3.6.21")

        app = web.Application()
        app.router.add_post("/webhooks/rest/webhook", webhook)
        app.router.add_get("/", hello)
        async def health(_request):
            return web.json_response({"status": "ok"})

        app.router.add_get("/health", health)
        self._runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self._runner.setup()
        self.port = free_port()
        await web.TCPSite(self._runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        if self._runner:
            await self._runner.cleanup()


@pytest.fixture
async def rasa_recorder():
    recorders: list[RasaRecorder] = []

    async def make(**kwargs) -> RasaRecorder:
        recorder = await RasaRecorder(**kwargs).start()
        recorders.append(recorder)
        return recorder

    yield make
    for recorder in recorders:
        await recorder.stop()


class ServerThread:
    """The real app served on a free loopback port from its own thread and event loop."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.app: web.Application | None = None
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="web-app")
        self.error: BaseException | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.settings.port}"

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve())
        except BaseException as err:  # reported by start()
            self.error = err
            self._ready.set()

    async def _serve(self) -> None:
        self._stop = asyncio.Event()
        self.app = create_app(self.settings)
        runner = web.AppRunner(self.app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, "127.0.0.1", self.settings.port).start()
        self._ready.set()
        await self._stop.wait()
        await runner.cleanup()

    def start(self) -> "ServerThread":
        self._thread.start()
        self._ready.wait(30)
        if self.error:
            raise self.error
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(self.url + "/healthz", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        else:
            raise TimeoutError("web app did not start")
        from bot.web.keys import WARM

        # the safeguarding screen loads in the background (once per process): wait, as /readyz would
        if not self.app[WARM].wait(300):
            raise TimeoutError("the safeguarding screen did not load")
        return self

    def stop(self) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(15)

    def call(self, coro_fn, timeout: float = 30):
        """Run ``coro_fn()`` on the app's loop and wait for its result."""
        return asyncio.run_coroutine_threadsafe(coro_fn(), self._loop).result(timeout)


@pytest.fixture
def serve():
    servers: list[ServerThread] = []

    def start(settings: Settings) -> ServerThread:
        server = ServerThread(settings).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def open_store(settings: Settings):
    from bot.escalation.store import EscalationStore

    return EscalationStore.open(settings.database_url, channels=["inbox"])


def add_duty_user(settings: Settings, username: str, areas: list[str], password: str = "correct horse battery") -> str:
    from bot.web.storage import WebStore

    store = WebStore.open(settings.database_url)
    try:
        store.add_user(username, password, areas)
    finally:
        store.dispose()
    return password


def json_of(raw: bytes) -> dict:
    return json.loads(raw.decode())


class LoopThread:
    """An event loop running in its own thread, for loopback servers used by synchronous (browser) tests."""

    def __init__(self):
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, daemon=True, name="test-loop")
        self._thread.start()

    def call(self, coro_fn, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro_fn(), self.loop).result(timeout)

    def stop(self) -> None:
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(10)


@pytest.fixture
def rasa_in_thread():
    """``start(**kwargs) -> RasaRecorder`` serving from a background thread (for synchronous tests)."""
    thread = LoopThread()
    recorders: list[RasaRecorder] = []

    def start(**kwargs) -> RasaRecorder:
        recorder = RasaRecorder(**kwargs)
        thread.call(recorder.start)
        recorders.append(recorder)
        return recorder

    yield start
    for recorder in recorders:
        thread.call(recorder.stop)
    thread.stop()


@pytest.fixture(scope="session")
def web_stack(stack):
    """The whole assistant as deployed: the session's real action server and Rasa (tests/conftest.py)
    behind the real web app, which keeps its tables in the stack's state folder."""
    state = stack.state
    settings = Settings(
        port=free_port(), rasa_url=stack.rasa_url, action_url=stack.action_url, secret_key=secrets.token_urlsafe(48),
        database_url=f"sqlite:///{state / 'web.db'}", run_delivery_worker=True, sse_poll_seconds=0.5,
        tracker_url=f"sqlite:///{state / 'rasa-tracker.db'}",  # where the runner points Rasa
        # These tests are about what the real assistant says, on a machine that may be busy (the first
        # triage loads a model): give Rasa time. The 3-second rule is tested in test_chat_api.py and
        # test_parts_down.py, and measured in bench/.
        rasa_timeout=12, answer_seconds=12.5,
        duty_token=secrets.token_urlsafe(32),  # the case-system API, for acknowledging in the stack tests
    )
    server = ServerThread(settings).start()
    server.stack = stack
    yield server
    server.stop()


class PostgresCluster(pgcluster.PostgresCluster):
    """A throw-away PostgreSQL cluster (bot.pgcluster) on a loopback port, started, that a test can stop (as a
    crash would) and start again; ``url`` is its ``postgres`` database. Skipped where it cannot run."""

    def __init__(self):
        pytest.importorskip("psycopg")
        reason = pgcluster.unavailable()
        if reason:
            pytest.skip(reason)
        super().__init__(prefix="earlyhelp-web-pg-")
        self.start()

    def stop(self, mode: str = "immediate") -> None:
        super().stop(mode)


@pytest.fixture
def postgres():
    cluster = PostgresCluster()
    yield cluster
    cluster.remove()
