"""Escalation durability and speed: a long crash soak, commit latency, cue-to-notification time.

    .venv/bin/python bench/escalation.py              # 1,000 kill/restart cycles (about 12-15 minutes on 2 cores)
    .venv/bin/python bench/escalation.py --cycles 50  # a quick look

1. quiet: ``record_turn`` commit latency on SQLite (WAL, synchronous=FULL) with nothing else running,
   then cue-to-first-notification with one ``escalations worker``-like process polling every 0.5 s;
2. soak: a turn-recording process and two delivery workers SIGKILLed at random moments ``--cycles``
   times and restarted (tests/bot/escalation/harness.py), then a final drain; every escalation a
   person was answered about must be stored once and delivered, nothing counted twice.

Prints a table with targets; exits 1 if a correctness check fails (latency targets are reported only).
"""
from __future__ import annotations

import argparse
import datetime as dt
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.escalation import EscalationStore  # noqa: E402
def _harness():
    """The crash harness, loaded by path (an installed package named ``tests`` can shadow the checkout's)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("escalation_harness", REPO / "tests/bot/escalation/harness.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is built
    spec.loader.exec_module(module)
    return module


_h = _harness()
PYTHON, Receiver, chaos = _h.PYTHON, _h.Receiver, _h.chaos


def pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def ts(iso: str) -> float:
    return dt.datetime.fromisoformat(iso).timestamp()


def first_notifications(accepted: list[dict], stored: dict[str, dict]) -> list[float]:
    first: dict[str, float] = {}
    for a in accepted:
        if a["event"] == "escalation.created":
            first[a["escalation_id"]] = min(first.get(a["escalation_id"], a["at"]), a["at"])
    return [first[i] - ts(e["created_at"]) for i, e in stored.items() if i in first]


def quiet(work: Path, turns: int) -> dict:
    url = f"sqlite:///{work / 'quiet.db'}"
    store = EscalationStore.open(url, channels=["inbox", "webhook"])
    commit_ms, plain_ms = [], []
    for n in range(turns):
        started = time.perf_counter()
        store.record_turn("bench", f"turn {n}: [redacted] hurts me", area="gloucestershire", categories=["physical_abuse"],
                          immediate_danger=n % 5 == 0, escalate=True, message_id=f"q{n}")
        commit_ms.append((time.perf_counter() - started) * 1000)
        started = time.perf_counter()
        store.record_turn("bench", f"ordinary turn {n}", area="gloucestershire", categories=[], immediate_danger=False,
                          escalate=False, message_id=f"p{n}")
        plain_ms.append((time.perf_counter() - started) * 1000)

    # cue to first notification with a production-like worker (poll 0.5 s), turns arriving ~10 a second
    live_url = f"sqlite:///{work / 'live.db'}"
    live = EscalationStore.open(live_url, channels=["inbox", "webhook"])
    receiver = Receiver(work / "quiet-receiver.db").start()
    worker = subprocess.Popen([PYTHON, str(REPO / "tests/bot/escalation/harness.py"), "worker", "--url", live_url,
                               "--hook", receiver.url(), "--lease", "60", "--poll", "0.5"], cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(2)
        for n in range(100):
            live.record_turn("live", f"turn {n}: [redacted]", area=None, categories=["neglect"], immediate_danger=False,
                             escalate=True, message_id=f"l{n}")
            time.sleep(0.1)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and live.outbox_counts().get("pending"):
            time.sleep(0.2)
        time.sleep(0.5)
        stored = {e["id"]: e for e in live.list()}
        latency = first_notifications(receiver.accepted(), stored)
    finally:
        worker.terminate()
        worker.wait(10)
        receiver.stop()
    store.dispose()
    live.dispose()
    return {"commit_ms": commit_ms, "plain_ms": plain_ms, "notify_s": latency, "notify_n": len(stored)}


# who is killed each cycle: mostly one process, sometimes the writer with a worker, sometimes both workers
# (the crash test uses a harsher mix; here the latency figures should mean something too)
VICTIMS = [["writer"], ["writer"], ["worker1"], ["worker2"], ["writer", "worker1"], ["worker1", "worker2"]]


def soak(work: Path, cycles: int, gap: tuple[float, float]) -> dict:
    result = chaos(work / "soak", cycles, gap=gap, lease=1.0, drain_timeout=60, seed=cycles, choices=VICTIMS,
                   log=lambda line: print(line, file=sys.stderr, flush=True))
    store = EscalationStore.open(result.url, channels=["inbox", "webhook"])
    stored = {e["id"]: e for e in store.list()}
    store.dispose()
    printed = [p for p in result.printed if p["id"]]
    seen = {p["id"] for p in printed}
    created = Counter(a["escalation_id"] for a in result.accepted if a["event"] == "escalation.created")
    by_turn: dict[int, set] = {}
    for p in result.printed:
        by_turn.setdefault(p["n"], set()).add(p["id"])
    outcomes = Counter(a["outcome"] for a in result.arrivals)
    return {
        "result": result,
        "answered": len(result.printed),
        "escalations_answered": len(seen),
        "stored": len(stored),
        "lost": len(seen - set(stored)),
        "resend_mismatch": sum(1 for ids in by_turn.values() if len(ids) > 1),
        "undelivered": len(set(stored) - set(created)),
        "phantom": len(set(created) - set(stored)),
        "double_counted": sum(1 for n in Counter(a["key"] for a in result.accepted).values() if n > 1)
        + sum(1 for n in created.values() if n > 1),
        "repeats_deduped": sum(n for o, n in outcomes.items() if o.startswith("duplicate")),
        "receiver_500s": outcomes.get("failed", 0) + sum(n for o, n in outcomes.items() if o.endswith("+lost")),
        "left_pending": result.outbox.get("pending", 0) + result.outbox.get("sending", 0),
        "inbox_missing": sum(1 for e in stored.values() if not e["inbox_visible_at"]),
        "commit_ms": [p["ms"] for p in printed],
        "notify_s": first_notifications(result.accepted, stored),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cycles", type=int, default=1000, help="kill/restart cycles in the soak (default 1000)")
    parser.add_argument("--turns", type=int, default=1000, help="turns for the quiet commit-latency run")
    parser.add_argument("--gap", type=float, nargs=2, default=(0.3, 1.0), metavar=("MIN", "MAX"),
                        help="seconds between kills, drawn uniformly (default 0.3 1.0)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="earlyhelp-bench-escalation-") as tmp:
        work = Path(tmp)
        started = time.monotonic()
        q = quiet(work, args.turns)
        print(f"quiet runs done in {time.monotonic() - started:.0f} s; soak of {args.cycles} cycles ...", file=sys.stderr)
        s = soak(work, args.cycles, tuple(args.gap))
    r = s["result"]
    ok = lambda good: "ok" if good else "FAIL"  # noqa: E731
    rows = [
        ("quiet: escalation commit latency p50", f"{pct(q['commit_ms'], 50):.1f} ms", "", ""),
        ("quiet: escalation commit latency p99", f"{pct(q['commit_ms'], 99):.1f} ms", "<= 20 ms",
         ok(pct(q["commit_ms"], 99) <= 20)),
        ("quiet: ordinary turn commit latency p50 / p99", f"{pct(q['plain_ms'], 50):.1f} / {pct(q['plain_ms'], 99):.1f} ms", "", ""),
        ("quiet: cue to first notification p50 / p95 (poll 0.5 s)",
         f"{pct(q['notify_s'], 50):.2f} / {pct(q['notify_s'], 95):.2f} s", "p95 <= 10 s", ok(pct(q["notify_s"], 95) <= 10)),
        ("soak: kill/restart cycles (writer, worker1, worker2 kills)",
         f"{r.cycles} ({r.kills['writer']}, {r.kills['worker1']}, {r.kills['worker2']})", "", ""),
        ("soak: turns answered / escalations answered / stored", f"{s['answered']} / {s['escalations_answered']} / {s['stored']}", "", ""),
        ("soak: answered escalations lost", str(s["lost"]), "0", ok(s["lost"] == 0)),
        ("soak: resent turn got a different escalation", str(s["resend_mismatch"]), "0", ok(s["resend_mismatch"] == 0)),
        ("soak: stored escalations never delivered / inbox missing", f"{s['undelivered']} / {s['inbox_missing']}", "0 / 0",
         ok(s["undelivered"] == 0 and s["inbox_missing"] == 0)),
        ("soak: delivered but not stored (phantom)", str(s["phantom"]), "0", ok(s["phantom"] == 0)),
        ("soak: counted twice at the receiver", str(s["double_counted"]), "0", ok(s["double_counted"] == 0)),
        ("soak: repeats deduped by key / receiver 500s injected", f"{s['repeats_deduped']} / {s['receiver_500s']}", "", ""),
        ("soak: outbox rows left pending after drain", f"{s['left_pending']} (drained in {r.drained_in:.1f} s)", "0",
         ok(s["left_pending"] == 0)),
        ("soak: commit latency p50 / p99 (2 workers, kills)", f"{pct(s['commit_ms'], 50):.1f} / {pct(s['commit_ms'], 99):.1f} ms", "", ""),
        ("soak: cue to first notification p50 / p95 / max (lease 1 s)",
         f"{pct(s['notify_s'], 50):.2f} / {pct(s['notify_s'], 95):.2f} / {max(s['notify_s'], default=float('nan')):.2f} s",
         "p95 <= 10 s", ok(pct(s["notify_s"], 95) <= 10)),
        ("soak: wall time", f"{r.elapsed:.0f} s", "", ""),
    ]
    width = max(len(row[0]) for row in rows)
    print(f"| {'escalation bench'.ljust(width)} | value | target | |")
    print(f"|{'-' * (width + 2)}|---|---|---|")
    for name, value, target, verdict in rows:
        print(f"| {name.ljust(width)} | {value} | {target} | {verdict} |")
    correctness = [s["lost"], s["resend_mismatch"], s["undelivered"], s["inbox_missing"], s["phantom"],
                   s["double_counted"], s["left_pending"]]
    return 1 if any(correctness) else 0


if __name__ == "__main__":
    sys.exit(main())
