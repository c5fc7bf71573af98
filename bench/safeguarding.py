"""Safeguarding screen: quality on the dev set and on fresh holdouts, and latency.

    .venv/bin/python bench/safeguarding.py [--no-embeddings] [--show]

Prints, for each set: recall of escalation, immediate-danger recall, false alarms on benign messages
(escalated although benign), how often benign messages got the gentle "unsure" question, recall per
category, and p50/p95 latency of ``screen`` per message (warm; the one-off model load is shown apart).
Targets on dev: recall >= 0.98, immediate-danger recall 1.00, false alarms <= 0.05.

Sets: ``dev`` (tests/data/safeguarding_cases.jsonl) is what the cue bank was tuned on and what the
classifier is trained on, so its figures are in-sample (the classifier's trainer prints 5-fold
cross-validated ones). ``holdout2``, ``holdout3``, ``holdout4``, ``holdout6`` and ``holdout7`` were each written blind and
measured once before the change after them; they are TRAINING data now (``TRAINING_FILES``), so their figures
are in-sample; ``--loho`` scores each of them with heads trained on the rest (the figure thresholds are chosen
on). The blind sets ``holdout5`` and ``holdout8`` (``BLIND_SETS``, never trained or tuned on) are scored only
when named with ``--sets`` (a blind set should be measured once, at the end of a round):

    .venv/bin/python bench/safeguarding.py                      # dev and the training holdouts
    .venv/bin/python bench/safeguarding.py --sets holdout5      # the blind set, once
    .venv/bin/python bench/safeguarding.py --loho [--grid]      # leave one training holdout out
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
        "holdout6": ROOT / "tests/data/safeguarding_holdout6.jsonl",
        "holdout7": ROOT / "tests/data/safeguarding_holdout7.jsonl",
        "holdout8": ROOT / "tests/data/safeguarding_holdout8.jsonl"}
BLIND = ("holdout5", "holdout8")  # scored only when named with --sets
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
        "immediate_misses": [r["text"] for r in imm if not res[id(r)].immediate_danger],
    }


def leave_one_holdout_out(grid: bool = False, show: bool = False) -> None:
    """Each older holdout scored by the whole screen with classifier heads (and neighbour vote) trained on
    the other training files only: the honest figure for choosing thresholds. Reads only TRAINING_FILES
    (never a blind set). Scores through ``Screener(weights=...)``: nothing in the module is swapped."""
    import dataclasses

    import numpy as np

    from bot.safeguarding import Screener, classifier

    files = [ROOT / f for f in classifier.TRAINING_FILES]
    rows = {f.name: [json.loads(l) for l in f.open(encoding="utf-8") if l.strip()] for f in files}
    real_embed, cache = classifier._embed, {}

    def embed(pieces):
        # the real embedding, remembered: every setting scores the same units again
        missing = [p for p in pieces if p not in cache]
        if missing:
            cache.update(zip(missing, real_embed(missing)))
        return np.stack([cache[p] for p in pieces])

    shipped = classifier.default_weights()
    vec = {name: embed([classifier.prepared(r["text"]) for r in rs]).astype(np.float64) for name, rs in rows.items()}
    settings = [{}]
    if grid:
        settings = [{"t_escalate": te, "t_unsure": min(tu, te), "t_immediate_after_cue": tc, "t_override_unsure": to}
                    for te in (0.65, 0.7, 0.75) for tu in (0.5,) for tc in (0.5, 0.6, 0.7, 0.8) for to in (0.9,)]
    held_out = [n for n in rows if n != "safeguarding_cases.jsonl"]
    weights_for = {}
    for name in held_out:
        train_rows = [r for n in rows if n != name for r in rows[n]]
        x = np.vstack([vec[n] for n in rows if n != name])
        esc, imm, cats = classifier._heads(x, train_rows)
        knn = shipped.knn and classifier.Neighbours(x.astype(np.float32), np.array([r["escalate"] for r in train_rows]),
                                                     shipped.knn.k, shipped.knn.weight, shipped.knn.scale)
        weights_for[name] = dataclasses.replace(shipped, escalate=esc, immediate=imm, categories=cats, knn=knn)
    print("| setting | held out | recall | or asked | immediate | imm. when not | false alarms | benign asked |")
    for setting in settings:
        tot = {"pos": 0, "hit": 0, "imm": 0, "imm_hit": 0, "neg": 0, "fa": 0, "imm_not": 0}
        for name in held_out:
            w = dataclasses.replace(weights_for[name], **setting)
            r = evaluate(rows[name], Screener(weights=w, embed=embed))
            tot["pos"] += r["cues"]; tot["hit"] += round(r["recall"] * r["cues"])
            tot["imm"] += r["immediate"]; tot["imm_hit"] += round(r["immediate_recall"] * r["immediate"])
            tot["neg"] += r["benign"]; tot["fa"] += round(r["false_alarms"] * r["benign"])
            tot["imm_not"] += r["immediate_false"]
            print(f"| {setting or 'shipped'} | {name.removeprefix('safeguarding_').removesuffix('.jsonl')} | {r['recall']:.3f} | "
                  f"{r['recall_or_asked']:.3f} | {r['immediate_recall']:.3f} | {r['immediate_false']} | "
                  f"{r['false_alarms']:.3f} | {r['benign_unsure']:.3f} |")
            if show:
                for t in r["misses"]:
                    print(f"    missed: {t}")
                for t in r["alarms"]:
                    print(f"    false alarm: {t}")
                for t in r["immediate_misses"]:
                    print(f"    not flagged immediate: {t}")
        print(f"| {setting or 'shipped'} | ALL | {tot['hit'] / tot['pos']:.3f} | | {tot['imm_hit'] / tot['imm']:.3f} | {tot['imm_not']} | "
              f"{tot['fa'] / tot['neg']:.3f} | |")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-embeddings", action="store_true", help="cue bank only (the classifier by meaning off)")
    parser.add_argument("--show", action="store_true", help="list missed cues and false alarms")
    parser.add_argument("--sets", nargs="+", choices=sorted(SETS), default=None,
                        help="only these sets (default: dev and the training holdouts; the blind sets only when named)")
    parser.add_argument("--loho", action="store_true",
                        help="leave one holdout out: each training holdout scored by heads trained on the rest")
    parser.add_argument("--grid", action="store_true", help="with --loho: a small grid of thresholds")
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

    if args.loho:
        leave_one_holdout_out(args.grid, args.show)
        return 0
    mode = "cue bank + classifier by meaning" if classifier.enabled() else "cue bank only (classifier off)"
    results = {name: evaluate([json.loads(l) for l in path.open(encoding="utf-8") if l.strip()], screen)
               for name, path in SETS.items() if (name in args.sets if args.sets else name not in BLIND) and path.exists()}

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
    dev = results.get("dev")
    if dev is None:
        return 0
    ok = dev["recall"] >= TARGETS["recall"] and dev["immediate_recall"] >= TARGETS["immediate_recall"] and dev["false_alarms"] <= TARGETS["false_alarms"]
    print(f"\ndev targets {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
