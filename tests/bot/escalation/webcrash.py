"""The crash harness for the REAL web app: the web app (``bot.web``'s entry point) and ``earlyhelp escalations
worker`` are SIGKILLed at random moments while people keep chatting, then everything is checked.

- The web app is the public entry: it screens each message, commits the turn, its escalation and the
  outbox rows in one transaction, and only then replies. It runs ``bot.web``'s own ``main()`` (what
  ``python -m bot.web`` runs) with its own delivery worker inside, on SQLite (WAL, synchronous=FULL) or
  PostgreSQL (``DATABASE_URL``). The sentence model and the spaCy redaction model are switched off in the
  children (their own switches). Rasa is a closed loopback port: the gateway's own answer (999, the safety
  card, the number to call) is the reply, exactly as when Rasa is down, so no Rasa is needed and each
  turn takes milliseconds.
- Both processes are forked from a preloaded parent (``PRELOADED``, as ``gunicorn --preload`` does): the
  imports and read-only files are loaded once, and each child runs the real entry point from its start,
  so a restarted app answers within a second or two instead of after seconds of imports
  (``run(preloaded=False)`` starts each as a new Python instead).
- A second delivery worker runs as its own process (``earlyhelp escalations worker``).
- The webhook goes to :class:`tests.bot.escalation.harness.Receiver`, a real loopback HTTP server that
  checks the HMAC signature, keeps one row per idempotency key and logs every arrival; it also fails
  some requests (500) and "loses" some responses (accepts, then answers 500), so retries happen.
- :class:`Person` threads chat over HTTP like the widget (cookie session, CSRF token, a message id per
  message). A message whose request failed (the app was killed under it) is sent again with the same
  message id once the app is back, as the widget does. A reply counts as "reached the person" only
  when the whole JSON answer was read.

:func:`run` returns a :class:`CrashResult`; :func:`check` turns it into a list of violations (empty when
every answered escalation is stored exactly once and delivered at least once, nothing was counted twice
at the receiver and nothing is left pending).
"""
from __future__ import annotations

import http.cookiejar
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))


def _harness():
    """The escalation harness (Receiver ...), by path: bench/ loads this file by path too."""
    import importlib.util

    name = "escalation_harness"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(name, HERE / "harness.py")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module  # dataclasses look their module up while the class is built
        spec.loader.exec_module(module)
    return sys.modules[name]


_h = _harness()
PYTHON, SECRET, Receiver, free_port = _h.PYTHON, _h.SECRET, _h.Receiver, _h.free_port
drain, guarantee_problems = _h.drain, _h.guarantee_problems

# messages the cue bank escalates on its own (the embedding classifier is off in the child processes, so
# they start in a second or two); every fourth message is an ordinary one that must not escalate
ESCALATING = [
    "my dad hits me every night and I am scared to go home",
    "he is hitting her right now and she is screaming",
    "my uncle touches me in my private parts",
    "I took a load of pills an hour ago",
    "he says he will kill us if we tell anyone",
    "my stepdad punches my little brother",
]
ORDINARY = [
    "what help is there for toddlers who don't sleep",
    "we need help with my son's behaviour at school",
    "who can I talk to about parenting courses",
]
CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')

# The processes under test are forked from a preloaded parent, as ``gunicorn --preload`` does: it has
# imported the code (the web app and the CLI) and loaded the read-only files the app's warm-up loads (the
# cue bank, the area files, the area finder's and redaction's patterns, the contacts, national helplines
# and bank holidays of the safety answer), and has opened no database, no
# socket and no thread. Each child then runs the real entry point, ``bot.web``'s ``main()`` (what
# ``python -m bot.web`` runs) or ``earlyhelp escalations worker``: everything that touches the database or
# the network (opening and migrating the stores, the delivery worker taking over leased outbox rows, binding
# the port, the sessions) happens in the child, after the previous one was SIGKILLed, as in a plain
# restart. Only the 3-5 s of CPU per start spent importing and reading files on this 2-core machine are
# saved, so a 1,000-cycle soak spends its time killing. The parent leaves when its stdin closes.
PRELOADED = r"""
import json, os, signal, sys, traceback
from bot.cli import main as cli_main
from bot.web.__main__ import main as web_main
from bot.areas import load_areas
from bot.places import resolve_area
from bot.privacy.redact import redact
from bot.safeguarding import screen
from bot.web.gateway import fallback_replies, safety_card
import bot.privacy.retention
screen("hello"); load_areas(); resolve_area("Gloucester"); redact("my son Tom")
fallback_replies({"escalate": True, "immediate_danger": True, "categories": ["physical_abuse"]}, None, None)
safety_card({"escalate": True}, None)

def reap(*_):
    while True:
        try:
            pid, _status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return

signal.signal(signal.SIGCHLD, reap)
answers = os.fdopen(os.dup(1), "w")
null = os.open(os.devnull, os.O_RDWR)
os.dup2(null, 1)
print("ready", file=answers, flush=True)
for line in sys.stdin:
    role, *argv = json.loads(line)
    pid = os.fork()
    if pid == 0:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        os.dup2(null, 0)
        sys.stdin = open(os.devnull)
        try:
            code = (web_main if role == "web" else cli_main)(argv)
        except SystemExit as exit:
            code = exit.code
        except BaseException:
            traceback.print_exc()
            code = 1
        sys.stderr.flush()
        os._exit(code if isinstance(code, int) else 1)
    print(pid, file=answers, flush=True)
"""


class Forked:
    """A child of the preloaded parent, with the part of ``subprocess.Popen`` the harness uses."""

    def __init__(self, pid: int, parent: int):
        self.pid, self.parent, self.returncode = pid, parent, None

    def poll(self) -> int | None:
        if self.returncode is None:
            try:  # alive while /proc has it as the parent's child and not a zombie (pids are reused)
                stat = Path(f"/proc/{self.pid}/stat").read_text()
                state, ppid = stat.rsplit(")", 1)[1].split()[:2]
                if int(ppid) != self.parent or state in ("Z", "X"):
                    self.returncode = -1
            except (OSError, ValueError, IndexError):
                self.returncode = -1
        return self.returncode

    def send_signal(self, sig: int) -> None:
        if self.poll() is None:
            try:
                os.kill(self.pid, sig)
            except ProcessLookupError:
                pass

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        while self.poll() is None:
            if deadline is not None and time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout)
            time.sleep(0.005)
        return self.returncode


class Preloaded:
    """The preloaded parent (``PRELOADED``): ``start(role, argv)`` forks a child running that entry point."""

    def __init__(self, env: dict, errors: Path):
        with open(errors, "ab") as err:
            self.proc = subprocess.Popen([PYTHON, "-c", PRELOADED], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=err, env=env, cwd=REPO)
        if self.proc.stdout.readline().strip() != b"ready":
            raise RuntimeError(f"the preloaded parent did not start; see {errors}")

    def start(self, role: str, argv: list[str]) -> Forked:
        self.proc.stdin.write((json.dumps([role, *argv]) + "\n").encode())
        self.proc.stdin.flush()
        return Forked(int(self.proc.stdout.readline()), self.proc.pid)

    def close(self) -> None:
        self.proc.stdin.close()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@dataclass
class Answer:
    person: int
    message_id: str
    escalating: bool  # what the person's message was meant to be
    card: bool  # the reply started with the safety card
    recorded: bool | None  # the card's "recorded" flag
    tries: int
    ms: float
    at: float


@dataclass
class CrashResult(_h.CrashOutcome):
    answers: list[Answer] = field(default_factory=list)
    unanswered: int = 0  # messages still being retried when the people stopped
    failed_requests: int = 0  # requests that died with the app (connection reset/refused, timeouts)
    kills_mid_request: int = 0
    counters: dict[str, int] = field(default_factory=dict)


class Person(threading.Thread):
    """One person chatting through the web app's public API, resending an unanswered message as the widget does."""

    def __init__(self, index: int, base: str, stop: threading.Event, sink: list, lock: threading.Lock,
                 counters: Counter, seed: int, pause: tuple[float, float] = (0.01, 0.08)):
        super().__init__(daemon=True, name=f"person-{index}")
        self.index, self.base, self.stop, self.sink, self.lock = index, base, stop, sink, lock
        self.counters = counters
        self.rng = random.Random(seed)
        self.pause = pause
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        self.csrf: str | None = None
        self.pending: tuple[str, str, bool, int, float] | None = None
        self.in_flight = False

    def _open_page(self) -> None:
        while not self.stop.is_set():
            try:
                page = self.opener.open(self.base + "/", timeout=10).read().decode()
                self.csrf = CSRF.search(page).group(1)
                return
            except (OSError, urllib.error.URLError, AttributeError):
                time.sleep(0.1)

    def run(self) -> None:
        self._open_page()
        n = 0
        while not self.stop.is_set():
            if self.pending is None:
                escalating = n % 4 != 3
                pool = ESCALATING if escalating else ORDINARY
                self.pending = (uuid.uuid4().hex, self.rng.choice(pool), escalating, 0, time.monotonic())
                n += 1
            message_id, text, escalating, tries, first = self.pending
            self.pending = (message_id, text, escalating, tries + 1, first)
            body = json.dumps({"message": text, "message_id": message_id}).encode()
            request = urllib.request.Request(self.base + "/api/chat", data=body, headers={
                "Content-Type": "application/json", "X-CSRF-Token": self.csrf or "", "Origin": self.base})
            started = time.monotonic()
            self.in_flight = True
            try:
                with self.opener.open(request, timeout=15) as response:
                    doc = json.loads(response.read())
            except urllib.error.HTTPError as err:
                self.in_flight = False
                with self.lock:
                    self.counters["http_" + str(err.code)] += 1
                time.sleep(0.1)
                continue
            except (OSError, ValueError, urllib.error.URLError):
                # the app died under the request (or is restarting): the widget tries again, same message id
                self.in_flight = False
                with self.lock:
                    self.counters["failed_requests"] += 1
                time.sleep(0.05)
                continue
            self.in_flight = False
            first_card = (doc.get("messages") or [{}])[0].get("custom") or {}
            card = first_card.get("type") == "safety"
            answer = Answer(self.index, message_id, escalating, card, first_card.get("recorded") if card else None,
                            tries + 1, (time.monotonic() - started) * 1000, time.time())
            with self.lock:
                self.sink.append(answer)
                if not self.counters["answered_since_restart"] and self.counters["restarted_at_ms"]:
                    self.counters["restart_ms_total"] += int(time.monotonic() * 1000) - self.counters["restarted_at_ms"]
                    self.counters["restarts_answered"] += 1
                self.counters["answered_since_restart"] += 1
            self.pending = None
            time.sleep(self.rng.uniform(*self.pause))


def _env(workdir: Path, url: str, receiver: Receiver) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EARLYHELP_", "DATABASE_URL"))}
    env.update({
        "PYTHONDONTWRITEBYTECODE": "1",
        "EARLYHELP_HOME": str(workdir),
        "DATABASE_URL": url,
        "EARLYHELP_SECRET_KEY": secrets.token_urlsafe(48),
        # the cue bank alone and pattern-only redaction: the app answers a second or two after a restart
        # instead of waiting for the sentence and spaCy models (tens of seconds on a loaded machine)
        "EARLYHELP_SAFEGUARDING_EMBEDDINGS": "0",
        "EARLYHELP_REDACTION_MODEL": "off",
        "EARLYHELP_WEB_DELIVERY": "1",
        "EARLYHELP_WEBHOOK_URL": receiver.url(),
        "EARLYHELP_WEBHOOK_SECRET": SECRET,
        "EARLYHELP_OUTBOX_LEASE_SECONDS": "1",
        "EARLYHELP_SEND_TIMEOUT_SECONDS": "0.7",
        "EARLYHELP_BACKOFF_BASE_SECONDS": "0.05",
        "EARLYHELP_BACKOFF_CAP_SECONDS": "0.5",
        "EARLYHELP_RATE_SESSION": "1000000/60",
        "EARLYHELP_RATE_ADDRESS": "1000000/60",
        "OMP_NUM_THREADS": "1",
    })
    return env


def run(workdir: Path, url: str | None = None, *, cycles: int = 20, people: int = 3, gap: tuple[float, float] = (0.1, 0.6),
        seed: int = 1, max_seconds: float | None = None, drain_timeout: float = 30.0, receiver_faults: bool = True,
        quiet_seconds: float = 0.0, log=None, preloaded: bool = True,
        pause: tuple[float, float] = (0.01, 0.08)) -> CrashResult:
    """Run the web app and a worker, kill them ``cycles`` times (or until ``max_seconds``), drain, and collect.
    ``preloaded``: the web app and the worker are forked from the preloaded parent (``PRELOADED``); False
    starts each as a new Python (``python -m bot.web``; seconds of imports before the app can answer).
    ``pause``: each person waits between this many seconds (drawn uniformly) after an answer."""
    from bot.escalation import EscalationStore
    from bot.web.storage import WebStore

    workdir.mkdir(parents=True, exist_ok=True)
    url = url or f"sqlite:///{workdir / 'earlyhelp.db'}"
    EscalationStore.open(url, channels=["inbox", "webhook"]).dispose()  # the schema once, before two processes race
    WebStore.open(url).dispose()
    receiver = Receiver(workdir / "receiver.db", fail_rate=0.05 if receiver_faults else 0.0,
                        lost_response_rate=0.05 if receiver_faults else 0.0, max_delay=0.02, seed=seed).start()
    env = _env(workdir, url, receiver)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    closed = free_port()
    rng = random.Random(seed)
    result = CrashResult(url=url, cycles=0, kills={"web": 0, "worker": 0})
    started = time.monotonic()

    web_args = ["--port", str(port), "--rasa-url", f"http://127.0.0.1:{closed}", "--action-url",
                f"http://127.0.0.1:{closed}", "--log-level", "WARNING"]
    worker_args = ["escalations", "worker", "--poll", "0.2"]
    parent = Preloaded(env, workdir / "preloaded.err") if preloaded else None

    def start(role: str):
        if parent is not None:
            return parent.start(role, web_args if role == "web" else worker_args)
        errors = open(workdir / f"{role}.err", "ab")
        if role == "web":
            cmd = [PYTHON, "-m", "bot.web", *web_args]
        else:
            cmd = [PYTHON, "-c", "import sys; from bot.cli import main; sys.exit(main())", *worker_args]
        try:
            return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=errors, env=env, cwd=REPO)
        finally:
            errors.close()

    procs = {"web": start("web"), "worker": start("worker")}
    lock = threading.Lock()
    counters: Counter = Counter()
    stop = threading.Event()
    persons = [Person(i, base, stop, result.answers, lock, counters, seed * 100 + i, pause) for i in range(people)]
    for person in persons:
        person.start()

    def web_answering(timeout: float = 30.0) -> None:
        """Wait until the (re)started web app has answered a message, so kills land while it works."""
        began = time.monotonic()
        deadline = began + timeout
        while time.monotonic() < deadline and counters["answered_since_restart"] < 1:
            if procs["web"].poll() is not None:
                procs["web"] = start("web")
            time.sleep(0.02)
        if log and time.monotonic() >= deadline:
            log(f"  the web app gave no answer within {timeout:.0f} s of its restart")

    choices = [["web"], ["worker"], ["web", "worker"]]
    try:
        if quiet_seconds:  # nothing killed: the steady-state figures
            web_answering()
            time.sleep(quiet_seconds)
        for cycle in range(cycles):
            if max_seconds is not None and time.monotonic() - started > max_seconds:
                break
            victims = rng.choice(choices)
            if "web" in victims:
                web_answering()
            time.sleep(rng.uniform(*gap))
            for role in victims:
                if role == "web":
                    result.kills_mid_request += sum(1 for p in persons if p.in_flight)
                procs[role].send_signal(signal.SIGKILL)
                procs[role].wait(10)
                result.kills[role] += 1
                if role == "web":
                    with lock:
                        counters["answered_since_restart"] = 0
                        counters["restarted_at_ms"] = int(time.monotonic() * 1000)
                procs[role] = start(role)
            result.cycles = cycle + 1
            if log and (cycle + 1) % 25 == 0:
                log(f"  cycle {cycle + 1}/{cycles}: {len(result.answers)} answers, {time.monotonic() - started:.0f} s")
        # the people stop: each finishes (or gives up on) the message it was sending
        web_answering()
        stop.set()
        for person in persons:
            person.join(20)
        result.unanswered = sum(1 for p in persons if p.pending is not None)
        result.drained_in, result.outbox, result.stored, result.per_message = drain(url, drain_timeout)
    finally:
        stop.set()
        for proc in procs.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs.values():
            try:
                proc.wait(15)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if parent is not None:
            parent.close()
        result.accepted = receiver.accepted()
        result.arrivals = receiver.arrivals()
        receiver.stop()
    result.failed_requests = counters["failed_requests"]
    result.counters = dict(counters)
    result.elapsed = time.monotonic() - started
    return result


def check(result: CrashResult) -> list[str]:
    """Everything that went wrong, in words (an empty list: the guarantees held): the shared guarantees
    (harness.guarantee_problems), plus what the people saw: each answered escalation stored exactly once,
    each message answered once, the safety card on every escalating message and on no ordinary one."""
    problems = guarantee_problems(result)
    by_mid: dict[str, tuple[int, int]] = {}
    for message_id, turns, escalations in result.per_message:
        mid = str(message_id).rsplit(":", 1)[-1]
        if mid in by_mid:
            problems.append(f"message {mid} was recorded under two sessions")
        by_mid[mid] = (turns, escalations)
    for a in result.answers:
        if a.escalating and not a.card:
            problems.append(f"escalating message {a.message_id} was answered without the safety card")
        if not a.escalating and a.card:
            problems.append(f"ordinary message {a.message_id} was answered with the safety card")
        if a.escalating and a.card and a.recorded and by_mid.get(a.message_id, (0, 0)) != (1, 1):
            turns, escalations = by_mid.get(a.message_id, (0, 0))
            problems.append(f"answered escalation {a.message_id}: {turns} turns and {escalations} escalations stored")
    answered_ids = Counter(a.message_id for a in result.answers)
    problems += [f"message {mid} was answered {n} times" for mid, n in answered_ids.items() if n > 1]
    return problems


def notify_seconds(result: CrashResult) -> list[float]:
    """Per stored escalation: from its commit to the first time the webhook receiver accepted it."""
    return _h.first_notification_seconds(result.accepted, result.stored)


def summary(result: CrashResult) -> dict:
    confirmed = [a for a in result.answers if a.escalating and a.card and a.recorded]
    notify = sorted(notify_seconds(result))
    outcomes = Counter(a["outcome"] for a in result.arrivals)
    return {
        "cycles": result.cycles,
        "kills": dict(result.kills),
        "kills_mid_request": result.kills_mid_request,
        "answers": len(result.answers),
        "escalations_answered_confirmed": len(confirmed),
        "escalations_answered_unconfirmed": sum(1 for a in result.answers if a.escalating and a.card and not a.recorded),
        "resent_after_a_kill": sum(1 for a in result.answers if a.tries > 1),
        "failed_requests": result.failed_requests,
        "unanswered_at_end": result.unanswered,
        "stored": len(result.stored),
        "repeats_deduplicated": sum(n for o, n in outcomes.items() if o.startswith("duplicate")),
        "receiver_500s": outcomes.get("failed", 0) + sum(n for o, n in outcomes.items() if o.endswith("+lost")),
        "drained_in_s": round(result.drained_in, 1),
        "outbox": dict(result.outbox),
        "elapsed_s": round(result.elapsed, 1),
        "web_restart_to_first_answer_s": round(result.counters.get("restart_ms_total", 0) / 1000
                                               / max(1, result.counters.get("restarts_answered", 0)), 2),
        "http_errors": {k: v for k, v in result.counters.items() if k.startswith("http_")},
        "notify_s_p50_p95_max": [round(notify[len(notify) // 2], 2), round(notify[int(len(notify) * 0.95)], 2),
                                 round(notify[-1], 2)] if notify else None,
    }
