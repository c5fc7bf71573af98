"""The crash soak on the REAL web app: the web app (``bot.web``'s own entry point, with its delivery worker)
and ``earlyhelp escalations worker`` SIGKILLed at random moments ``--cycles`` times (default 1,000) while
three people chat over loopback HTTP; then the guarantees are checked (tests/bot/escalation/webcrash.py,
the same harness as tests/web/test_crash_webapp.py, whose checks are harness.guarantee_problems).

    nice -n 19 .venv/bin/python bench/crash_soak.py                   # 1,000 cycles, SQLite (WAL, synchronous=FULL)
    nice -n 19 .venv/bin/python bench/crash_soak.py --postgres        # 1,000 cycles on a throw-away PostgreSQL 15
    DATABASE_URL=postgresql://... .venv/bin/python bench/crash_soak.py  # on a PostgreSQL server you give
    .venv/bin/python bench/crash_soak.py --cycles 100 --max-minutes 10

It checks correctness, not speed: run it with ``nice -n 19`` and without the bench lock, so that it does
not starve benchmarks. The processes under test are forked from a preloaded parent (imports and read-only
files loaded once, as ``gunicorn --preload`` does; see ``webcrash.PRELOADED``); ``--plain`` starts each as
a new Python instead (seconds of imports per restart). Bounded in time: it stops killing after
``--max-minutes`` (default 60) and reports the cycles it did. Loopback only (the app, the worker, the
webhook receiver and any PostgreSQL all listen on 127.0.0.1). Prints a table; exits 1 if a guarantee failed.
"""
from __future__ import annotations

import argparse
import importlib.util
import os
import signal
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _webcrash():
    """The harness, loaded by path (an installed package named ``tests`` can shadow the checkout's)."""
    spec = importlib.util.spec_from_file_location("webcrash_harness", REPO / "tests/bot/escalation/webcrash.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


class LoadSampler(threading.Thread):
    """The 1-minute load average every 15 s while the soak runs (the machine is shared)."""

    def __init__(self):
        super().__init__(daemon=True)
        self.samples: list[float] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.wait(15):
            self.samples.append(os.getloadavg()[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000)
    parser.add_argument("--max-minutes", type=float, default=60.0, help="stop killing after this long (default 60)")
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--postgres", action="store_true",
                        help="run on a throw-away PostgreSQL cluster started here (bot.pgcluster; loopback only)")
    parser.add_argument("--pause", type=float, nargs=2, default=(0.05, 0.3), metavar=("MIN", "MAX"),
                        help="seconds each person waits after an answer before the next message (default 0.05 0.3)")
    parser.add_argument("--plain", action="store_true",
                        help="start each process as a new Python instead of forking it from the preloaded parent")
    args = parser.parse_args()
    # stopped early (SIGTERM, or SIGINT even when started in the background, where it is ignored by default):
    # unwind, so the processes under test and any PostgreSQL cluster are stopped and removed
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    wc = _webcrash()
    cluster = None
    quiet_url = url = None
    if args.postgres:
        from bot.pgcluster import PostgresCluster

        cluster = PostgresCluster(prefix="earlyhelp-soak-pg-").start()
        quiet_url, url = cluster.create_database("quiet"), cluster.create_database("soak")
    elif os.environ.get("DATABASE_URL"):
        from bot.db import database_url

        quiet_url = url = database_url()
    load_before = os.getloadavg()
    sampler = LoadSampler()
    sampler.start()
    try:
        with tempfile.TemporaryDirectory(prefix="earlyhelp-crash-quiet-") as tmp:
            # first the steady state: the same processes and people for a while, nothing killed, no receiver faults
            quiet = wc.run(Path(tmp) / "quiet", quiet_url, cycles=0, people=args.people, seed=args.seed,
                           quiet_seconds=30, receiver_faults=False, preloaded=not args.plain, pause=tuple(args.pause))
        quiet_facts = wc.summary(quiet)
        quiet_ms = [a.ms for a in quiet.answers if a.escalating and a.card and a.recorded]
        quiet_problems = wc.check(quiet)
        with tempfile.TemporaryDirectory(prefix="earlyhelp-crash-soak-") as tmp:
            result = wc.run(Path(tmp) / "soak", url, cycles=args.cycles, people=args.people, seed=args.seed,
                            max_seconds=args.max_minutes * 60, drain_timeout=60, preloaded=not args.plain,
                            pause=tuple(args.pause),
                            log=lambda line: print(line, f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True))
    finally:
        sampler.stopped.set()
        if cluster is not None:
            cluster.remove()
    problems = wc.check(result)
    facts = wc.summary(result)
    load_after = os.getloadavg()
    confirmed = [a for a in result.answers if a.escalating and a.card and a.recorded]
    rows = [
        ("quiet (30 s, nothing killed): escalations answered / violations",
         f"{quiet_facts['escalations_answered_confirmed']} / {len(quiet_problems)}"),
        ("quiet: answer time p50 / p95 (ms, escalating message, through HTTP)",
         f"{pct(quiet_ms, 50):.0f} / {pct(quiet_ms, 95):.0f}"),
        ("quiet: cue to first webhook delivery p50 / p95 / max (s)",
         " / ".join(str(x) for x in quiet_facts["notify_s_p50_p95_max"] or ["-"])),
        ("database", ("PostgreSQL (throw-away 15 cluster: fsync and synchronous_commit off; the server is not killed)"
                      if args.postgres else "PostgreSQL") if result.url.startswith("postgresql")
         else "SQLite (WAL, synchronous=FULL)"),
        ("processes started", "a new Python each (--plain)" if args.plain
         else "forked from a preloaded parent (imports and read-only files loaded once)"),
        ("people chatting / pause after each answer", f"{args.people} / {args.pause[0]}-{args.pause[1]} s"),
        ("kill/restart cycles done (of asked)", f"{result.cycles} (of {args.cycles})"),
        ("kills: web app / worker", f"{result.kills['web']} / {result.kills['worker']}"),
        ("kills landing while a request was in flight (person-requests cut)", str(result.kills_mid_request)),
        ("messages answered / escalations answered and confirmed / unconfirmed",
         f"{facts['answers']} / {facts['escalations_answered_confirmed']} / {facts['escalations_answered_unconfirmed']}"),
        ("answered only after a resend (same message id)", str(facts["resent_after_a_kill"])),
        ("escalations stored", str(facts["stored"])),
        ("receiver: repeats deduplicated by key / 500s injected", f"{facts['repeats_deduplicated']} / {facts['receiver_500s']}"),
        ("outbox after drain", f"{facts['outbox']} (drained in {facts['drained_in_s']} s)"),
        ("web app kill to its successor's first answer, mean", f"{facts['web_restart_to_first_answer_s']} s"),
        ("answer time p50 / p95 (ms, confirmed escalations)",
         f"{pct([a.ms for a in confirmed], 50):.0f} / {pct([a.ms for a in confirmed], 95):.0f}"),
        ("cue to first webhook delivery p50 / p95 / max (s, while processes are killed)",
         " / ".join(str(x) for x in facts["notify_s_p50_p95_max"] or ["-"])),
        ("guarantee violations", "0" if not problems else f"{len(problems)}: " + "; ".join(problems[:5])),
        ("wall time", f"{result.elapsed:.0f} s"),
        ("load average (1 min) before / during: mean, max / after",
         f"{load_before[0]:.1f} / {sum(sampler.samples) / max(1, len(sampler.samples)):.1f}, "
         f"{max(sampler.samples, default=float('nan')):.1f} / {load_after[0]:.1f}"),
    ]
    width = max(len(r[0]) for r in rows)
    print(f"| {'crash soak (real web app)'.ljust(width)} | value |")
    print(f"|{'-' * (width + 2)}|---|")
    for name, value in rows:
        print(f"| {name.ljust(width)} | {value} |")
    return 1 if problems or quiet_problems else 0


if __name__ == "__main__":
    sys.exit(main())
