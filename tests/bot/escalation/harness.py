"""Real parts for the escalation tests and bench: a webhook receiver, an SMTP sink, and a crash harness.

- :class:`Receiver`: an aiohttp server on 127.0.0.1 (own thread and loop) that checks the HMAC
  signature, dedupes by ``Idempotency-Key`` in its own SQLite file (``accepted`` has the key as
  primary key; ``arrivals`` logs every request), and can be told to fail: answer 500 before
  accepting, or accept and then answer 500 (a lost response), or be slow.
- :class:`SmtpSink`: an aiosmtpd server on a free loopback port keeping every message.
- ``python harness.py writer|worker ...``: the child processes of the crash test. The writer records
  turns in a loop and prints one JSON line per turn only after ``record_turn`` returned (committed):
  what a person would have seen. The worker runs a DeliveryWorker against the receiver.
- :func:`chaos`: runs a writer and two workers, SIGKILLs them at random moments and restarts them,
  then drains and returns everything needed to check that nothing was lost or counted twice.
- :func:`drain` and :func:`guarantee_problems`: the one place that waits for the outbox to empty, reads
  back what is stored, and checks the guarantees every crash run must keep (each message stored once with
  at most one escalation; each stored escalation at the receiver and in the duty inbox; nothing counted
  twice at the receiver; a lost response sent again; nothing left pending). :func:`check_chaos` (this
  harness) and ``webcrash.check`` (the real web app) add only what their "person" saw.
"""
from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from email import message_from_bytes
from email import policy as email_policy
from pathlib import Path

REPO = Path(__file__).resolve().parents[3]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

PYTHON = sys.executable
SECRET = "test-webhook-secret"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Receiver:
    """A duty system's webhook endpoint, as a real HTTP server that dedupes by idempotency key."""

    def __init__(self, db_path: Path, secret: str = SECRET, *, fail_rate: float = 0.0, lost_response_rate: float = 0.0,
                 max_delay: float = 0.0, seed: int = 0):
        self.db_path = Path(db_path)
        self.secret = secret
        self.fail_rate, self.lost_response_rate, self.max_delay = fail_rate, lost_response_rate, max_delay
        self.fail_next = 0  # answer 500 (without accepting) to the next N requests
        self.lose_next = 0  # accept, then answer 500, for the next N requests
        self.random = random.Random(seed)
        self.port = free_port()
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.db_path, check_same_thread=False, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS accepted (key TEXT PRIMARY KEY, escalation_id TEXT, event TEXT,"
                         " path TEXT, at REAL, body TEXT)")
        self._db.execute("CREATE TABLE IF NOT EXISTS arrivals (n INTEGER PRIMARY KEY, key TEXT, path TEXT, at REAL,"
                         " outcome TEXT)")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._ready = threading.Event()

    def url(self, path: str = "/hook") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def _log(self, key: str | None, path: str, outcome: str) -> None:
        self._db.execute("INSERT INTO arrivals (key, path, at, outcome) VALUES (?, ?, ?, ?)", (key, path, time.time(), outcome))

    async def _handle(self, request):
        from aiohttp import web

        from bot.escalation.channels import verify

        body = await request.read()
        key = request.headers.get("Idempotency-Key")
        if self.max_delay:
            await asyncio.sleep(self.random.uniform(0, self.max_delay))
        with self._lock:
            if not verify(body, self.secret, request.headers.get("X-EarlyHelp-Signature")):
                self._log(key, request.path, "bad_signature")
                return web.json_response({"error": "bad signature"}, status=401)
            if not key:
                self._log(key, request.path, "no_key")
                return web.json_response({"error": "no idempotency key"}, status=400)
            if self.fail_next > 0 or self.random.random() < self.fail_rate:
                self.fail_next = max(0, self.fail_next - 1)
                self._log(key, request.path, "failed")
                return web.json_response({"error": "unavailable"}, status=500)
            doc = json.loads(body)
            new = self._db.execute(
                "INSERT OR IGNORE INTO accepted (key, escalation_id, event, path, at, body) VALUES (?, ?, ?, ?, ?, ?)",
                (key, doc["escalation_id"], doc["event"], request.path, time.time(), body.decode()),
            ).rowcount
            lost = self.lose_next > 0 or self.random.random() < self.lost_response_rate
            self.lose_next = max(0, self.lose_next - 1) if lost else self.lose_next
            self._log(key, request.path, ("accepted" if new else "duplicate") + ("+lost" if lost else ""))
        if lost:
            return web.json_response({"error": "response lost"}, status=500)
        return web.json_response({"ok": True, "duplicate": not new}, status=200)

    def start(self) -> "Receiver":
        from aiohttp import web

        def serve() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            app = web.Application()
            app.router.add_post("/{tail:.*}", self._handle)
            runner = web.AppRunner(app, access_log=None)
            loop.run_until_complete(runner.setup())
            loop.run_until_complete(web.TCPSite(runner, "127.0.0.1", self.port).start())
            self._ready.set()
            loop.run_forever()
            loop.run_until_complete(runner.cleanup())
            loop.close()

        self._thread = threading.Thread(target=serve, name="webhook-receiver", daemon=True)
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError("receiver did not start")
        return self

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._db.close()

    # what the receiver saw
    def accepted(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT key, escalation_id, event, path, at, body FROM accepted ORDER BY at").fetchall()
        return [dict(zip(("key", "escalation_id", "event", "path", "at", "body"), row)) for row in rows]

    def arrivals(self) -> list[dict]:
        with self._lock:
            rows = self._db.execute("SELECT key, path, at, outcome FROM arrivals ORDER BY n").fetchall()
        return [dict(zip(("key", "path", "at", "outcome"), row)) for row in rows]


class SmtpSink:
    """A real SMTP server (aiosmtpd) on a free loopback port; keeps each message and dedupes by key."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages: list = []
        self.port = free_port()
        sink = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):
                msg = message_from_bytes(envelope.original_content or envelope.content, policy=email_policy.default)
                sink.messages.append({"to": list(envelope.rcpt_tos), "from": envelope.mail_from, "msg": msg})
                return "250 OK"

        self.controller = Controller(Handler(), hostname="127.0.0.1", port=self.port)

    def start(self) -> "SmtpSink":
        self.controller.start()
        return self

    def stop(self) -> None:
        self.controller.stop()

    def by_key(self) -> dict[str, list]:
        out: dict[str, list] = {}
        for item in self.messages:
            out.setdefault(item["msg"]["X-EarlyHelp-Idempotency-Key"], []).append(item)
        return out


# -- child processes -----------------------------------------------------------------------------

def writer_main(args: argparse.Namespace) -> None:
    """Record turns forever (until killed); print a line per turn only once record_turn has returned."""
    from bot.escalation import EscalationStore

    store = EscalationStore.open(args.url, channels=["inbox", "webhook"])
    rng = random.Random(args.start * 7919 + os.getpid())
    areas = ["north-lincolnshire", "gloucestershire", "buckinghamshire", None]
    for n in range(args.start, args.start + args.limit):
        escalate = n % 4 != 3  # every fourth turn is an ordinary one
        started = time.perf_counter()
        esc = store.record_turn(
            args.session,
            f"turn {n}: [redacted] says he hurts me and I must not tell anyone",
            area=areas[n % len(areas)],
            categories=["physical_abuse"] if escalate else [],
            immediate_danger=n % 5 == 0,
            escalate=escalate,
            contact={"phone": "[redacted]"} if n % 7 == 0 else None,
            message_id=f"m{n}",
        )
        ms = (time.perf_counter() - started) * 1000
        sys.stdout.write(json.dumps({"n": n, "id": esc["id"] if esc else None, "ms": round(ms, 3)}) + "\n")
        sys.stdout.flush()
        time.sleep(rng.uniform(0.002, args.pause))


def worker_main(args: argparse.Namespace) -> None:
    from bot.escalation import DeliveryWorker, EscalationStore, InboxChannel, WebhookChannel

    store = EscalationStore.open(args.url, channels=["inbox", "webhook"])
    worker = DeliveryWorker(
        store,
        channels=[InboxChannel(store), WebhookChannel(args.hook, args.secret, timeout=args.lease * 0.7)],
        lease=dt.timedelta(seconds=args.lease),
        backoff_base=0.05,
        backoff_cap=0.5,
    )

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, stop.set)
        await worker.run_forever(poll_interval=args.poll, stop_event=stop)

    asyncio.run(main())


# -- the crash harness ---------------------------------------------------------------------------

@dataclass
class CrashOutcome:
    """What every crash run ends with: the kills, and after the drain the database and the receiver."""
    url: str
    cycles: int
    kills: dict[str, int] = field(default_factory=dict)
    drained_in: float = 0.0
    outbox: dict[str, int] = field(default_factory=dict)
    stored: dict[str, dict] = field(default_factory=dict)
    per_message: list[tuple] = field(default_factory=list)  # (message_id, turns, escalations) per session+message
    accepted: list[dict] = field(default_factory=list)
    arrivals: list[dict] = field(default_factory=list)
    elapsed: float = 0.0


@dataclass
class ChaosResult(CrashOutcome):
    printed: list[dict] = field(default_factory=list)
    restarts: int = 0


# -- the guarantees, checked in one place --------------------------------------------------------

def drain(url: str, timeout: float) -> tuple[float, dict[str, int], dict[str, dict], list[tuple]]:
    """Wait (the workers still running) until no outbox row is pending or sending, or ``timeout``; then read
    back the outbox counts, every stored escalation and, per (session, message id), its turns and escalations.
    Returns ``(seconds waited, outbox counts, {escalation id: escalation}, [(message_id, turns, escalations)])``."""
    import sqlalchemy as sa

    from bot.escalation import EscalationStore

    store = EscalationStore.open(url, channels=["inbox", "webhook"])
    try:
        began = time.monotonic()
        while time.monotonic() - began < timeout:
            counts = store.outbox_counts()
            if not counts.get("pending") and not counts.get("sending"):
                break
            time.sleep(0.1)
        waited = time.monotonic() - began
        outbox = store.outbox_counts()
        stored = {e["id"]: e for e in store.list()}
        with store.engine.connect() as conn:
            per_message = [tuple(r) for r in conn.execute(sa.text(
                "SELECT m.message_id, count(DISTINCT m.id), count(e.id) FROM esc_messages m "
                "LEFT JOIN esc_escalations e ON e.message_pk = m.id GROUP BY m.session_id, m.message_id"))]
    finally:
        store.dispose()
    return waited, outbox, stored, per_message


def guarantee_problems(outcome: CrashOutcome) -> list[str]:
    """What broke the guarantees of a crash run, in words (empty: they held). ``stored``, ``per_message`` and
    ``outbox`` as :func:`drain` returns them; ``accepted`` and ``arrivals`` from the :class:`Receiver`."""
    stored, per_message, outbox = outcome.stored, outcome.per_message, outcome.outbox
    accepted, arrivals = outcome.accepted, outcome.arrivals
    problems: list[str] = []
    for message_id, turns, escalations in per_message:
        if turns != 1 or escalations > 1:
            problems.append(f"message {message_id}: {turns} turns and {escalations} escalations stored")
    if sum(escalations for *_x, escalations in per_message) != len(stored):
        problems.append("the escalations listed and the escalations joined to their messages disagree")
    accepted_keys = Counter(a["key"] for a in accepted)
    problems += [f"key {k} counted {n} times at the receiver" for k, n in accepted_keys.items() if n > 1]
    created = Counter(a["escalation_id"] for a in accepted if a["event"] == "escalation.created")
    problems += [f"escalation {i} created {n} times at the receiver" for i, n in created.items() if n > 1]
    missing = set(stored) - set(created)
    if missing:
        problems.append(f"{len(missing)} stored escalations never reached the webhook receiver")
    phantom = set(created) - set(stored)
    if phantom:
        problems.append(f"{len(phantom)} escalations reached the receiver but are not stored")
    not_in_inbox = [i for i, e in stored.items() if not e["inbox_visible_at"]]
    if not_in_inbox:
        problems.append(f"{len(not_in_inbox)} stored escalations never reached the duty inbox")
    stuck = outbox.get("pending", 0) + outbox.get("sending", 0)
    if stuck:
        problems.append(f"{stuck} outbox rows left pending or sending after the drain")
    outcomes = Counter(a["outcome"].split("+")[0] for a in arrivals)
    if outcomes["accepted"] != len(accepted_keys):
        problems.append("the receiver's arrivals and accepted rows disagree")
    lost = {a["key"] for a in arrivals if a["outcome"] == "accepted+lost"}
    repeated = {a["key"] for a in arrivals if a["outcome"].startswith("duplicate")}
    if lost - repeated:
        problems.append(f"{len(lost - repeated)} notifications whose response was lost were never sent again")
    return problems


def first_notification_seconds(accepted: list[dict], stored: dict[str, dict]) -> list[float]:
    """Per stored escalation that reached the receiver: from its commit to the first time the receiver
    accepted its ``escalation.created`` notification (the cue-to-notification time)."""
    first: dict[str, float] = {}
    for a in accepted:
        if a["event"] == "escalation.created":
            first[a["escalation_id"]] = min(first.get(a["escalation_id"], a["at"]), a["at"])
    return [first[i] - dt.datetime.fromisoformat(e["created_at"]).timestamp() for i, e in stored.items() if i in first]


def check_chaos(result: "ChaosResult") -> list[str]:
    """:func:`guarantee_problems` plus what the writer's "person" saw: every escalation id printed (answered)
    is stored, and a resent turn (the writer restarts from the first turn it never answered) got back the
    same escalation, never a second one."""
    problems = guarantee_problems(result)
    seen = {p["id"] for p in result.printed if p["id"]}
    if seen - set(result.stored):
        problems.append(f"{len(seen - set(result.stored))} answered escalations are not stored")
    by_turn: dict[int, set] = {}
    for p in result.printed:
        by_turn.setdefault(p["n"], set()).add(p["id"])
    problems += [f"turn {n} was answered with {len(ids)} different results" for n, ids in by_turn.items() if len(ids) > 1]
    return problems


def _printed(path: Path) -> list[dict]:
    out = []
    if path.exists():
        for line in path.read_text().splitlines():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:  # a line cut by SIGKILL was never "shown to the person"
                continue
    return out


def chaos(workdir: Path, cycles: int, *, gap: tuple[float, float] = (0.2, 0.7), lease: float = 1.0,
          drain_timeout: float = 20.0, seed: int = 1, receiver_faults: bool = True, log=None,
          choices: list[list[str]] | None = None, writer_turns: int = 1) -> ChaosResult:
    """Writer + two workers, SIGKILLed at random moments ``cycles`` times and restarted; then drain.
    The writer is killed only once it has answered ``writer_turns`` turns since its last restart."""
    from bot.escalation import EscalationStore

    workdir.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{workdir / 'escalations.db'}"
    EscalationStore.open(url, channels=["inbox", "webhook"]).dispose()  # create the schema once, up front
    receiver = Receiver(workdir / "receiver.db", fail_rate=0.05 if receiver_faults else 0.0,
                        lost_response_rate=0.05 if receiver_faults else 0.0, max_delay=0.03, seed=seed).start()
    rng = random.Random(seed)
    out_path = workdir / "writer.out"
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", EARLYHELP_HOME=str(workdir))
    me = str(Path(__file__).resolve())
    result = ChaosResult(url=url, cycles=cycles, kills={"writer": 0, "worker1": 0, "worker2": 0})
    started = time.monotonic()

    def start(role: str) -> subprocess.Popen:
        if role == "writer":
            done = _printed(out_path)
            first = max((p["n"] for p in done), default=-1) + 1  # the client resends what it never saw answered
            cmd = [PYTHON, me, "writer", "--url", url, "--start", str(first)]
            with open(out_path, "a") as sink:
                return subprocess.Popen(cmd, stdout=sink, stderr=subprocess.DEVNULL, env=env, cwd=REPO)
        cmd = [PYTHON, me, "worker", "--url", url, "--hook", receiver.url(), "--lease", str(lease)]
        with open(workdir / f"{role}.err", "a") as errors:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=REPO)

    procs = {role: start(role) for role in ("writer", "worker1", "worker2")}
    writer_lines = [len(_printed(out_path))]

    def writer_up(timeout: float = 20.0) -> None:
        """Wait until the (re)started writer has answered at least one turn, so that on a loaded machine
        (where starting Python takes seconds) kills still land while it works, not only while it starts."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and len(_printed(out_path)) < writer_lines[0] + writer_turns:
            if procs["writer"].poll() is not None:
                return
            time.sleep(0.05)

    choices = choices or [["writer"], ["worker1"], ["worker2"], ["writer", "worker1"], ["worker1", "worker2"],
                          ["writer", "worker1", "worker2"]]
    try:
        for cycle in range(cycles):
            time.sleep(rng.uniform(*gap))
            victims = rng.choice(choices)
            if "writer" in victims:
                writer_up()
            for role in victims:
                if role == "writer":
                    writer_lines[0] = len(_printed(out_path))
                procs[role].send_signal(signal.SIGKILL)
                procs[role].wait(10)
                result.kills[role] += 1
                procs[role] = start(role)
                result.restarts += 1
            if log and (cycle + 1) % 50 == 0:
                log(f"  cycle {cycle + 1}/{cycles}: {len(_printed(out_path))} turns answered")
        # the person stops talking: the writer is killed one last time, the workers drain
        procs["writer"].send_signal(signal.SIGKILL)
        procs["writer"].wait(10)
        result.drained_in, result.outbox, result.stored, result.per_message = drain(url, drain_timeout)
    finally:
        for role, proc in procs.items():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for role, proc in procs.items():
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        result.accepted = receiver.accepted()
        result.arrivals = receiver.arrivals()
        receiver.stop()
    result.printed = _printed(out_path)
    result.elapsed = time.monotonic() - started
    return result


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="role", required=True)
    w = sub.add_parser("writer")
    w.add_argument("--url", required=True)
    w.add_argument("--session", default="crash-session")
    w.add_argument("--start", type=int, default=0)
    w.add_argument("--limit", type=int, default=1_000_000)
    w.add_argument("--pause", type=float, default=0.02)
    k = sub.add_parser("worker")
    k.add_argument("--url", required=True)
    k.add_argument("--hook", required=True)
    k.add_argument("--secret", default=SECRET)
    k.add_argument("--lease", type=float, default=1.0)
    k.add_argument("--poll", type=float, default=0.1)
    args = parser.parse_args(argv)
    writer_main(args) if args.role == "writer" else worker_main(args)


if __name__ == "__main__":
    main()
