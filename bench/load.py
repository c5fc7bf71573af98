"""Whole-turn latency and throughput under load, beside a bare Rasa 3.6 baseline measured in the same run.

    .venv/bin/python bench/load.py             # baseline, single (SQLite) and scaled (PostgreSQL/Redis/nginx); ~10 min on 2 cores
    .venv/bin/python bench/load.py --quick     # shorter phases (~6 min)
    .venv/bin/python bench/load.py --only baseline,single
    .venv/bin/python bench/load.py --only scaled --phases long --keep-logs /tmp/logs   # the long phase alone, logs kept

Loopback only; every phase is bounded in time (``--seconds``) and in turns (``--max-turns``).

Systems, each started on its own, measured, then stopped (they never share the CPUs):

* baseline: a bare Rasa 3.6 project generated into a temporary folder (one intent that is answered, a
  second only because DIET refuses to train on one, one rule, one no-op custom action on a bare rasa-sdk
  action server, Rasa's default in-memory tracker store) with THE SAME NLU pipeline and policies as
  ours, driven over Rasa's REST webhook with "hello".
* single: ``make run`` (bot.runner.Stack): one web app, one Rasa (SQLite tracker store), one action
  server; driven through the web app exactly as the chat widget does (page, cookie, CSRF, /api/chat).
* scaled: ``python -m bot.scaled run`` (bot.scaled.ScaledStack): nginx, 2 web apps, 2 Rasa, 2 action
  servers, PostgreSQL, Redis; driven the same way through nginx's public port.

A "turn" of ours is one message of a six-turn conversation (greeting, who, town, age, what is
happening, confirm: the answer with level, services and numbers); each virtual person then starts a
new chat. Phases: a closed loop with ``--concurrency`` people and no pause (throughput at saturation),
then turns paced at 25%, 50% and 100% of that throughput (latency measured from the moment each turn
was due, so queueing counts), then ``--long`` conversations of 50 turns (p95 of turns 39-50 against
turns 7-18, the same messages earlier). Web-app turns that came back as the fallback answer (Rasa gave no
answer within the 2.9 s deadline, or none at all; or the action server's health check failed) are counted
as failures, not as fast answers, and the table says why each failed and how long it took (a fallback in
0.2 s is not a time-out: read the kept logs).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import datetime as dt
import hashlib
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.runner import QUIET_ENV, RASA, Stack, free_port, models_dir, train, wait_for  # noqa: E402

RASA_PYTHON = RASA.parent / "python"
LOOSE_LIMITS = {"EARLYHELP_RATE_ADDRESS": "1000000/60", "EARLYHELP_RATE_SESSION": "1000000/60", "HF_HUB_OFFLINE": "1"}

PEOPLE = [  # (who, where, age, what is happening): every area and speaker, so no answer is cached
    ("/identify_parent", "we live in Stroud", "she's 2", "my toddler isn't talking yet and I'm worried she's behind"),
    ("/identify_parent", "Aylesbury", "7", "he won't go to school and cries every morning"),
    ("/identify_young_person", "DN15", "15", "i look after my mum cos shes ill and im always tired at school"),
    ("/identify_professional", "Bath", "9", "attendance has dropped and mum is struggling with his behaviour and money"),
    ("/identify_parent", "Scunthorpe", "4", "we are struggling with money and his sleep is really bad"),
    ("/identify_parent", "Cheltenham", "12", "she is being bullied and won't eat properly"),
]
# after the six-turn form, a long conversation cycles through these; turns 7-18 and 39-50 hold the same
# messages (each twice), so comparing their p95 shows what conversation length alone costs
EARLY, LATE = range(6, 18), range(38, 50)
LONG_TAIL = ["can I talk to a real person", "what services are there near me", "thanks", "what does that level mean",
             "ok", "is there anything for parents"]


# ---- the bare Rasa baseline ----------------------------------------------------------------------------

BASELINE_DOMAIN = """version: "3.1"
intents:
  - greet
  - goodbye
responses:
  utter_greet:
    - text: "Hello! How can I help?"
  utter_goodbye:
    - text: "Goodbye."
actions:
  - action_noop
session_config:
  session_expiration_time: 60
  carry_over_slots_to_new_session: true
"""
BASELINE_NLU = """version: "3.1"
nlu:
- intent: greet
  examples: |
    - hello
    - hi
    - hey there
    - good morning
    - hiya
    - hello there
    - good afternoon
    - hey
- intent: goodbye
  examples: |
    - bye
    - goodbye
    - see you
    - cheerio
    - bye for now
    - that's all thanks
    - see you later
    - good night
"""
BASELINE_RULES = """version: "3.1"
rules:
- rule: greet
  steps:
  - intent: greet
  - action: action_noop
  - action: utter_greet
- rule: goodbye
  steps:
  - intent: goodbye
  - action: utter_goodbye
"""
BASELINE_ACTIONS = """from rasa_sdk import Action


class ActionNoop(Action):
    def name(self):
        return "action_noop"

    async def run(self, dispatcher, tracker, domain):
        return []
"""
BASELINE_SERVER = """import sys
from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor

executor = ActionExecutor()
executor.register_package("noop_actions")
create_app(executor).run(host="127.0.0.1", port=int(sys.argv[1]), workers=1, access_log=False)
"""


def baseline_project(folder: Path) -> Path:
    """Write the bare project (our config.yml's pipeline and policies) and train it once; returns the model."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    config = (REPO / "config.yml").read_text().replace("assistant_id: early-help-assistant", "assistant_id: bare-baseline")
    files = {"config.yml": config, "domain.yml": BASELINE_DOMAIN, "data/nlu.yml": BASELINE_NLU,
             "data/rules.yml": BASELINE_RULES, "noop_actions.py": BASELINE_ACTIONS, "server.py": BASELINE_SERVER,
             "credentials.yml": "rest:\n"}
    digest = hashlib.sha256()
    for name, text in sorted(files.items()):
        (folder / name).write_text(text)
        if name.endswith(".yml") and name != "credentials.yml":  # only what shapes the model
            digest.update(name.encode() + text.encode())
    model = models_dir() / f"bare-baseline-{digest.hexdigest()[:16]}.tar.gz"
    if not model.exists():
        print("Training the bare Rasa baseline (once)...", flush=True)
        subprocess.run([str(RASA), "train", "--fixed-model-name", model.name.removesuffix(".tar.gz"), "--out", str(model.parent)],
                       cwd=folder, env={**os.environ, **QUIET_ENV}, check=True, capture_output=True)
    return model


@dataclass
class Baseline(Stack):
    """The bare project: its action server and Rasa, on loopback ports."""

    folder: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="bare-rasa-")))

    def start(self, model: Path | None = None, timeout: float = 240) -> "Baseline":
        model = baseline_project(self.folder)
        endpoints = self.folder / "endpoints.yml"
        endpoints.write_text(f"action_endpoint:\n  url: http://127.0.0.1:{self.action_port}/webhook\n")
        actions = self._spawn("baseline-actions", [str(RASA_PYTHON), str(self.folder / "server.py"), str(self.action_port)],
                              {"PYTHONPATH": str(self.folder)})
        rasa = self._spawn("baseline-rasa", [str(RASA), "run", "--model", str(model), "--endpoints", str(endpoints),
                                             "--credentials", str(self.folder / "credentials.yml"),
                                             "--interface", "127.0.0.1", "--port", str(self.rasa_port)], {})
        try:
            wait_for(f"{self.action_url}/health", actions, "baseline-actions", timeout)
            wait_for(f"{self.rasa_url}/", rasa, "baseline-rasa", timeout)
        except Exception:
            self.stop()
            raise
        return self


# ---- conversations --------------------------------------------------------------------------------------

CSRF = re.compile(r'<meta name="csrf-token" content="([^"]+)"')


class WebPerson:
    """One person in the chat widget: a session, then six-turn conversations one after another."""

    def __init__(self, base: str, number: int, long_tail: bool = False):
        self.base, self.number, self.long_tail = base, number, long_tail
        self.http = aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True), timeout=aiohttp.ClientTimeout(total=30))
        self.csrf = ""
        self.script: list[str] = []
        self.index = 0  # turn number within the current conversation (0-based)

    async def open(self) -> None:
        async with self.http.get(f"{self.base}/") as response:
            self.csrf = CSRF.search(await response.text()).group(1)
        self._new_script()

    def _new_script(self) -> None:
        who, where, age, what = PEOPLE[(self.number + self.index) % len(PEOPLE)]
        self.script = ["hello", who, where, age, what, "/affirm"]
        self.index = 0

    async def turn(self) -> tuple[int, str | None]:
        """One turn; returns (its index in the conversation, None for a real answer or why it was not one)."""
        if self.index >= len(self.script):
            if self.long_tail:
                self.script.append(LONG_TAIL[(self.index - 6) % len(LONG_TAIL)])
            else:
                async with self.http.post(f"{self.base}/api/chat/reset", json={"csrf": self.csrf},
                                          headers={"X-CSRF-Token": self.csrf}) as response:
                    self.csrf = (await response.json())["csrf"]
                self._new_script()
        message, index = self.script[self.index], self.index
        self.index += 1
        async with self.http.post(f"{self.base}/api/chat", json={"message": message}, headers={"X-CSRF-Token": self.csrf}) as response:
            if response.status != 200:
                return index, f"HTTP {response.status}"
            doc = await response.json()
        return index, web_failure(doc)

    async def close(self) -> None:
        await self.http.close()


def web_failure(doc: dict) -> str | None:
    """Why a web app's answer is not a real one (None when it is): the gateway's fallback because Rasa gave no
    answer in time ("rasa"), or Rasa's answer with the note that the action server's health check failed
    ("actions"), or nothing to show."""
    text = " ".join(m.get("text") or "" for m in doc.get("messages", []))
    if not text:
        return "empty answer"
    if "can't answer" in text:
        return "fallback: no answer from Rasa in time"
    if "part of the assistant is not working" in text:
        return "fallback: action server health check failed"
    return None


class RasaPerson:
    """One person talking to the bare Rasa over its REST webhook: "hello", six turns per sender."""

    def __init__(self, base: str, number: int, long_tail: bool = False):
        self.base, self.number, self.long_tail = base, number, long_tail
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))
        self.conversation, self.index = 0, 0

    async def open(self) -> None:
        return None

    async def turn(self) -> tuple[int, str | None]:
        if self.index >= 6 and not self.long_tail:
            self.conversation, self.index = self.conversation + 1, 0
        index = self.index
        self.index += 1
        body = {"sender": f"bench-{self.number}-{self.conversation}-{os.getpid()}-{id(self)}", "message": "hello"}
        async with self.http.post(f"{self.base}/webhooks/rest/webhook", json=body) as response:
            if response.status != 200:
                return index, f"HTTP {response.status}"
            doc = await response.json()
        return index, None if doc else "empty answer"

    async def close(self) -> None:
        await self.http.close()


# ---- load ----------------------------------------------------------------------------------------------

@dataclass
class Phase:
    name: str
    latencies: list[float] = field(default_factory=list)  # seconds, real answers only
    by_index: dict[int, list[float]] = field(default_factory=dict)
    turns: int = 0
    failed: int = 0
    reasons: collections.Counter = field(default_factory=collections.Counter)  # why turns failed
    slow: list[tuple[int, float, str]] = field(default_factory=list)  # (turn index, seconds, reason) of failed turns
    seconds: float = 0.0
    wall: tuple[float, float] = (0.0, 0.0)  # epoch seconds the phase began and ended (to read nginx's logs)

    @property
    def rate(self) -> float:
        return (self.turns - self.failed) / self.seconds if self.seconds else 0.0

    def pct(self, q: float, values: list[float] | None = None) -> float:
        values = sorted(self.latencies if values is None else values)
        if not values:
            return float("nan")
        return values[min(len(values) - 1, max(0, round(q / 100 * len(values)) - 1))]


async def drive(person_class, base: str, name: str, *, people: int, seconds: float, max_turns: int,
                rate: float | None = None, long_tail: bool = False, turns_each: int | None = None) -> Phase:
    """``people`` persons; unpaced (each sends its next turn as soon as the last is answered) or paced
    (turns due every 1/rate s, taken by whichever person is free; latency counted from when it was due)."""
    phase = Phase(name)
    began = time.time()
    persons = [person_class(base, n, long_tail) for n in range(people)]
    await asyncio.gather(*(p.open() for p in persons))
    started = time.monotonic()
    stop_at = started + seconds
    due: asyncio.Queue[float | None] | None = asyncio.Queue() if rate else None

    async def pacer() -> None:
        n = 0
        while True:
            at = started + n / rate
            if at >= stop_at or n >= max_turns:
                break
            await asyncio.sleep(max(0.0, at - time.monotonic()))
            due.put_nowait(at)
            n += 1
        for _ in persons:
            due.put_nowait(None)

    async def person_loop(person) -> None:
        done = 0
        while time.monotonic() < stop_at and phase.turns < max_turns and (turns_each is None or done < turns_each):
            if due is not None:
                at = await due.get()
                if at is None:
                    return
            else:
                at = time.monotonic()
            try:
                index, why = await person.turn()
            except (aiohttp.ClientError, asyncio.TimeoutError, KeyError, AttributeError) as err:
                index, why = -1, type(err).__name__
            elapsed = time.monotonic() - at
            phase.turns += 1
            done += 1
            if why is None:
                phase.latencies.append(elapsed)
                phase.by_index.setdefault(index, []).append(elapsed)
            else:
                phase.failed += 1
                phase.reasons[why] += 1
                phase.slow.append((index, elapsed, why))

    tasks = [asyncio.create_task(person_loop(p)) for p in persons]
    if due is not None:
        tasks.append(asyncio.create_task(pacer()))
    await asyncio.gather(*tasks)
    phase.seconds = time.monotonic() - started
    phase.wall = (began, time.time())
    await asyncio.gather(*(p.close() for p in persons))
    return phase


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def measure(system: str, stack: Stack, base: str, person_class, args) -> dict:
    async def run() -> dict:
        await drive(person_class, base, "warm-up", people=2, seconds=min(10, args.seconds), max_turns=24)
        phases = {}
        if "load" in args.phases:
            saturation = await drive(person_class, base, "saturation", people=args.concurrency, seconds=args.seconds,
                                     max_turns=args.max_turns)
            phases["saturation"] = saturation
            capacity = max(saturation.rate, 0.5)
            for share in (25, 50, 100):
                phases[f"{share}%"] = await drive(person_class, base, f"{share}%", people=max(args.concurrency, 16),
                                                  seconds=args.seconds, max_turns=args.max_turns, rate=capacity * share / 100)
        if args.long and "long" in args.phases:
            phases["long"] = await drive(person_class, base, "long", people=args.long, seconds=args.seconds * 6,
                                         max_turns=args.long * 50, long_tail=True, turns_each=50)
        return phases

    load_before = os.getloadavg()
    phases = asyncio.run(run())
    load_after = os.getloadavg()
    memory = {name: rss_mb(process.pid) for name, process in stack.processes}
    return {"system": system, "phases": phases, "memory": memory, "parts": where_time_goes(stack, phases),
            "load": (load_before, load_after)}


def where_time_goes(stack: Stack, phases: dict) -> dict[str, dict]:
    """From nginx's access logs (scaled stack only): for the turns of the 50% phase, the time of the whole
    turn in the web app, of Rasa's webhook call, and of each action server call, and calls per turn."""
    phase = phases.get("50%")
    if phase is None or not (stack.state / "nginx-public-access.log").exists():
        return {}
    begin, end = phase.wall
    found: dict[str, list[float]] = {}
    for pool, uri, label in (("public", "/api/chat", "web app (whole turn)"), ("rasa", "/webhooks/rest/webhook", "Rasa webhook"),
                             ("actions", "/webhook", "action server call"), ("actions", "/health", "action server /health")):
        for line in (stack.state / f"nginx-{pool}-access.log").read_text().splitlines():
            fields = line.split()
            if len(fields) > 5 and fields[3] == uri and begin <= float(fields[0]) <= end:
                found.setdefault(label, []).append(float(fields[5]))
    turns = len(found.get("web app (whole turn)", [])) or 1
    return {label: {"calls per turn": len(values) / turns, "p50": Phase("x").pct(50, values) * 1000,
                    "p95": Phase("x").pct(95, values) * 1000} for label, values in found.items()}


# ---- report -------------------------------------------------------------------------------------------

def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor() or "unknown CPU")
    memory = next((int(line.split()[1]) // (1024 * 1024) for line in Path("/proc/meminfo").read_text().splitlines()
                   if line.startswith("MemTotal")), 0)
    return f"{os.cpu_count()} cores ({model}), {memory} GB RAM, {platform.system()} {platform.release()}"


def commit() -> str:
    done = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True)
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=REPO, capture_output=True, text=True)
    return (done.stdout.strip() or "unknown") + ("+uncommitted" if dirty.stdout.strip() else "")


def table(results: list[dict], startup: dict[str, float]) -> str:
    base = next((r for r in results if r["system"] == "baseline"), None)

    def ratio(value: float, reference: float | None) -> str:
        if reference is None or not reference or value != value or reference != reference:
            return "-"
        return f"{value / reference:.2f}x"

    lines = [f"Load bench, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; machine: {machine()}; commit {commit()}",
             "latency in ms (whole turn as the client sees it); ratios against the bare Rasa baseline at the same load",
             "",
             "| system | load | turns/s | p50 | p95 | p99 | p50 vs bare | p95 vs bare | failed |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        for name, phase in result["phases"].items():
            if name == "long":
                continue
            reference = base["phases"].get(name) if base else None
            p50, p95, p99 = (phase.pct(q) * 1000 for q in (50, 95, 99))
            lines.append(f"| {result['system']} | {name} | {phase.rate:.1f} | {p50:.0f} | {p95:.0f} | {p99:.0f} | "
                         f"{ratio(p50, reference.pct(50) * 1000 if reference else None)} | "
                         f"{ratio(p95, reference.pct(95) * 1000 if reference else None)} | "
                         f"{phase.failed}/{phase.turns} |")
    lines += ["", "| system | throughput at saturation | vs bare | long: p95 turns 7-18 | p95 turns 39-50 | late/early | "
              "long failed | start-up s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|"]
    for result in results:
        saturation = result["phases"].get("saturation") or Phase("saturation")
        long = result["phases"].get("long")
        early = late = float("nan")
        if long:
            early = long.pct(95, [v for i in EARLY for v in long.by_index.get(i, [])]) * 1000
            late = long.pct(95, [v for i in LATE for v in long.by_index.get(i, [])]) * 1000
        lines.append(f"| {result['system']} | {saturation.rate:.1f} turns/s | "
                     f"{ratio(saturation.rate, base['phases']['saturation'].rate if base and 'saturation' in base['phases'] else None)} | "
                     f"{early:.0f} | {late:.0f} | {ratio(late, early)} | "
                     f"{f'{long.failed}/{long.turns}' if long else '-'} | {startup.get(result['system'], float('nan')):.0f} |")
    failures = [(r["system"], name, why, count) for r in results for name, phase in r["phases"].items()
                 for why, count in sorted(phase.reasons.items())]
    if failures:
        lines += ["", "why turns failed (the web app's fallback answers by cause; HTTP errors; client time-outs)", "",
                  "| system | phase | reason | turns | their time as the client saw it (s, min-max) |", "|---|---|---|---:|---|"]
        for system, name, why, count in failures:
            phase = next(r for r in results if r["system"] == system)["phases"][name]
            times = [s for _, s, w in phase.slow if w == why]
            lines.append(f"| {system} | {name} | {why} | {count} | {min(times):.2f}-{max(times):.2f} |")
    parts = [(r["system"], label, figures) for r in results for label, figures in (r.get("parts") or {}).items()]
    if parts:
        lines += ["", "where a turn's time goes at 50% load (nginx's request times; a Rasa call includes its action calls)", "",
                  "| system | part | calls per turn | p50 ms | p95 ms |", "|---|---|---:|---:|---:|"]
        lines += [f"| {system} | {label} | {f['calls per turn']:.2f} | {f['p50']:.0f} | {f['p95']:.0f} |" for system, label, f in parts]
    lines += ["", "machine load average (uptime's 1, 5 and 15 minutes) when each system's measuring began and ended "
              "(the bench's own processes included; 2 cores are saturated at 2):", ""]
    lines += [f"- {r['system']}: " + " -> ".join("/".join(f"{x:.1f}" for x in at) for at in r["load"])
              for r in results if r.get("load")]
    lines += ["", "| system | resident memory per process (MB) |", "|---|---|"]
    for result in results:
        memory = ", ".join(f"{name} {mb:.0f}" for name, mb in result["memory"].items())
        lines.append(f"| {result['system']} | {memory} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", default="baseline,single,scaled", help="comma-separated: baseline, single, scaled")
    parser.add_argument("--seconds", type=float, default=20, help="length of each phase (default 20)")
    parser.add_argument("--concurrency", type=int, default=8, help="people in the saturation phase (default 8)")
    parser.add_argument("--max-turns", type=int, default=3000, help="at most this many turns per phase")
    parser.add_argument("--long", type=int, default=4, help="people in the long-conversation phase, 50 turns each (0: skip)")
    parser.add_argument("--quick", action="store_true", help="10-second phases, 2 long conversations")
    parser.add_argument("--phases", default="load,long", help="load (saturation and paced), long, or both (default)")
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--keep-logs", type=Path, metavar="DIR",
                        help="copy each system's state folder (its processes' logs, nginx's access logs) here before it is deleted")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.long = 10, 2
    args.phases = {p.strip() for p in args.phases.split(",") if p.strip()}
    if not args.phases or args.phases - {"load", "long"}:
        parser.error("--phases: load, long or load,long")
    systems = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(systems) - {"baseline", "single", "scaled"}
    if unknown:
        parser.error(f"unknown system(s) {sorted(unknown)}; use baseline, single, scaled")
    os.environ.update(LOOSE_LIMITS)  # the bench is one client address with many people: lift the per-address limit
    for name in ("DATABASE_URL", "REDIS_URL"):  # single is SQLite; scaled makes its own throw-away servers
        os.environ.pop(name, None)
    work = Path(tempfile.mkdtemp(prefix="earlyhelp-load-"))
    results, startup = [], {}
    try:
        if "single" in systems or "scaled" in systems:
            model = train()
        for system in systems:
            print(f"== {system}: starting", flush=True)
            state = work / system
            state.mkdir()
            began = time.monotonic()
            if system == "baseline":
                stack: Stack = Baseline(rasa_port=free_port(), action_port=free_port(), state=state, folder=state / "project")
                stack.start()
                base, person = stack.rasa_url, RasaPerson
            elif system == "single":
                stack = Stack(rasa_port=free_port(), action_port=free_port(), state=state, web_port=free_port())
                stack.start(model=model)
                base, person = f"http://127.0.0.1:{stack.web_port}", WebPerson
            else:
                from bot.scaled import ScaledStack

                stack = ScaledStack(state=state, web_port=free_port(), extra_env=dict(LOOSE_LIMITS))
                stack.start(model=model)
                base, person = stack.public_url, WebPerson
            startup[system] = time.monotonic() - began
            print(f"== {system}: up in {startup[system]:.0f} s; measuring", flush=True)
            try:
                results.append(measure(system, stack, base, person, args))
            finally:
                stack.stop()
                if args.keep_logs:
                    kept = args.keep_logs / system
                    shutil.copytree(state, kept, dirs_exist_ok=True, ignore=shutil.ignore_patterns(
                        "*.tar.gz", "pgdata*", "nginx-tmp", "*.sqlite*", "*.key", "database-url", "redis.conf", "endpoints.yml"))
                    print(f"== {system}: logs kept in {kept}", flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    report = table(results, startup)
    print("\n" + report)
    if args.json:
        args.json.write_text(json.dumps({"report": report, "results": [
            {"system": r["system"], "memory": r["memory"], "phases": {n: {"rate": p.rate, "turns": p.turns, "failed": p.failed,
             "p50": p.pct(50), "p95": p.pct(95), "p99": p.pct(99),
             "failed_by_reason": dict(p.reasons), "failed_turns": p.slow} for n, p in r["phases"].items()}} for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
