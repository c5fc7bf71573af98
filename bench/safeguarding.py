"""Safeguarding screen: quality on the dev set and on fresh holdouts, and latency.

    .venv/bin/python bench/safeguarding.py [--no-embeddings] [--show]

Prints, for each set: recall of escalation, immediate-danger recall, false alarms on benign messages
(escalated although benign), how often benign messages got the gentle "unsure" question, recall per
category, and p50/p95 latency of ``screen`` per message (warm; the one-off model load is shown apart).
Targets on dev: recall >= 0.98, immediate-danger recall 1.00, false alarms <= 0.05.

Sets: ``dev`` (tests/data/safeguarding_cases.jsonl) is what the cue bank was tuned on and what the
classifier is trained on, so its figures are in-sample (the classifier's trainer prints 5-fold
cross-validated ones). ``holdout2``, ``holdout3`` and ``holdout4`` were each written blind, before the change
they measured; since helper 23's round they are TRAINING data too (the classifier trains on dev + holdouts
2-4, and the cue bank was fixed on their misses), so their figures are in-sample now. ``holdout5`` (204
messages written blind before that round, never trained or tuned on; a test checks) and ``holdout6`` (163
messages written after it by someone who had seen none of the screen's data or code, never trained or
tuned on) are the honest ones.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETS = {"dev": ROOT / "tests/data/safeguarding_cases.jsonl",
        "holdout2": ROOT / "tests/data/safeguarding_holdout2.jsonl",
        "holdout3": ROOT / "tests/data/safeguarding_holdout3.jsonl",
        "holdout4": ROOT / "tests/data/safeguarding_holdout4.jsonl",
        "holdout5": ROOT / "tests/data/safeguarding_holdout5.jsonl",
        "holdout6": ROOT / "tests/data/safeguarding_holdout6.jsonl"}
TARGETS = {"recall": 0.98, "immediate_recall": 1.0, "false_alarms": 0.05}


def evaluate(rows: list[dict], screen) -> dict:
    pos = [r for r in rows if r["escalate"]]
    imm = [r for r in rows if r["immediate_danger"]]
    neg = [r for r in rows if not r["escalate"]]
    times, out = [], []
    for r in rows:
        t0 = time.perf_counter()
        s = screen(r["text"])
        times.append((time.perf_counter() - t0) * 1000)
        out.append(s)
    res = dict(zip((id(r) for r in rows), out))
    per_cat: dict[str, list[bool]] = {}
    for r in pos:
        for c in r["categories"]:
            per_cat.setdefault(c, []).append(c in res[id(r)].categories)
    times.sort()
    return {
        "n": len(rows),
        "cues": len(pos),
        "immediate": len(imm),
        "benign": len(neg),
        "recall": sum(res[id(r)].escalate for r in pos) / max(1, len(pos)),
        "recall_or_asked": sum(res[id(r)].escalate or res[id(r)].unsure for r in pos) / max(1, len(pos)),
        "immediate_recall": sum(res[id(r)].immediate_danger for r in imm) / max(1, len(imm)),
        "immediate_false": sum(res[id(r)].immediate_danger for r in rows if not r["immediate_danger"]),
        "false_alarms": sum(res[id(r)].escalate for r in neg) / max(1, len(neg)),
        "benign_unsure": sum(res[id(r)].unsure for r in neg) / max(1, len(neg)),
        "per_category": {c: (sum(v), len(v)) for c, v in sorted(per_cat.items())},
        "p50_ms": statistics.median(times),
        "p95_ms": times[int(0.95 * (len(times) - 1))],
        "max_ms": times[-1],
        "misses": [r["text"] for r in pos if not res[id(r)].escalate],
        "alarms": [r["text"] for r in neg if res[id(r)].escalate],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-embeddings", action="store_true", help="cue bank only (the classifier by meaning off)")
    parser.add_argument("--show", action="store_true", help="list missed cues and false alarms")
    args = parser.parse_args()
    os.environ["EARLYHELP_SAFEGUARDING_EMBEDDINGS"] = "0" if args.no_embeddings else "1"
    sys.path.insert(0, str(ROOT))
    import torch

    torch.set_num_threads(1)  # what a shared 2-core server should use; two contending threads are far slower
    t0 = time.perf_counter()
    from bot.safeguarding import screen

    screen("warm up: my dad scares me when he shouts")  # loads the bank and (if on) the model
    cold_ms = (time.perf_counter() - t0) * 1000
    from bot.safeguarding import classifier

    mode = "cue bank + classifier by meaning" if classifier.enabled() else "cue bank only (classifier off)"
    results = {name: evaluate([json.loads(l) for l in path.open(encoding="utf-8") if l.strip()], screen)
               for name, path in SETS.items() if path.exists()}

    import datetime as dt
    import subprocess

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    print(f"safeguarding screen - {mode}; {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC, commit {commit or '?'}; "
          f"first call (bank + model load) {cold_ms:.0f} ms")
    cols = list(results)
    def row(label, fmt, key, target=None):
        cells = [fmt(results[c][key]) for c in cols]
        tgt = "" if target is None else target
        print(f"| {label:<34} | " + " | ".join(f"{x:>10}" for x in cells) + f" | {tgt:<12} |")
    print(f"| {'metric':<34} | " + " | ".join(f"{c:>10}" for c in cols) + f" | {'dev target':<12} |")
    print("|" + "-" * 36 + "|" + "|".join("-" * 12 for _ in cols) + "|" + "-" * 14 + "|")
    row("messages (cues / immediate / benign)", lambda v: v, "n")
    print(f"| {'':<34} | " + " | ".join(f"{results[c]['cues']:>3}/{results[c]['immediate']:>2}/{results[c]['benign']:>3}".rjust(10) for c in cols) + f" | {'':<12} |")
    row("recall (escalate)", lambda v: f"{v:.3f}", "recall", ">= 0.98")
    row("recall (escalate or safety question)", lambda v: f"{v:.3f}", "recall_or_asked")
    row("immediate-danger recall", lambda v: f"{v:.3f}", "immediate_recall", "1.00")
    row("immediate flagged when not", lambda v: f"{v}", "immediate_false")
    row("false alarms on benign", lambda v: f"{v:.3f}", "false_alarms", "<= 0.05")
    row("benign asked 'unsure' question", lambda v: f"{v:.3f}", "benign_unsure")
    row("latency p50 ms", lambda v: f"{v:.2f}", "p50_ms")
    row("latency p95 ms", lambda v: f"{v:.2f}", "p95_ms")
    row("latency max ms", lambda v: f"{v:.2f}", "max_ms")
    cats = sorted({c for r in results.values() for c in r["per_category"]})
    print()
    print(f"| {'per-category recall':<34} | " + " | ".join(f"{c:>10}" for c in cols) + " |")
    print("|" + "-" * 36 + "|" + "|".join("-" * 12 for _ in cols) + "|")
    for cat in cats:
        cells = []
        for c in cols:
            hit, n = results[c]["per_category"].get(cat, (0, 0))
            cells.append(f"{hit}/{n}" if n else "-")
        print(f"| {cat:<34} | " + " | ".join(f"{x:>10}" for x in cells) + " |")
    if args.show:
        for c in cols:
            for t in results[c]["misses"]:
                print(f"[{c}] missed: {t}")
            for t in results[c]["alarms"]:
                print(f"[{c}] false alarm: {t}")
    dev = results["dev"]
    ok = dev["recall"] >= TARGETS["recall"] and dev["immediate_recall"] >= TARGETS["immediate_recall"] and dev["false_alarms"] <= TARGETS["false_alarms"]
    print(f"\ndev targets {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
