"""Measure the level-of-need triage on the development set and the holdout.

    .venv/bin/python bench/triage.py            # both tables
    .venv/bin/python bench/triage.py --errors   # also list the development cases it gets wrong

Prints, for each set: exact accuracy, within-one accuracy, the confusion matrix (rows: expected level,
columns: given level), level-4 recall, the number of level-4 cases rated 1 or 2, and p50/p95 latency
per assessment (after the model has loaded). The targets apply to the development set; the holdout was
written before the triage and is never used to tune it; the independent check set
(``tests/data/triage_check.jsonl``) was written later by someone who had not tuned the triage, from the
seed documents' level definitions, with the level decided before running it, and is never tuned on either.
The second check set (``tests/data/triage_check2.jsonl``) is in the voices the development set has fewest of
(professionals describing a family in the third person, partners, grandparents, young people about their
parents), labelled from the same definitions before the triage was run on it; it measures over-rating.
Every table also counts the cases rated above (over) and below (under) their level.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bot.triage import assess  # noqa: E402

DEV = REPO / "tests" / "data" / "triage_cases.jsonl"
HOLDOUT = REPO / "tests" / "data" / "triage_holdout.jsonl"
CHECK = REPO / "tests" / "data" / "triage_check.jsonl"
CHECK2 = REPO / "tests" / "data" / "triage_check2.jsonl"
TARGETS = {"exact": 0.80, "within_one": 0.97, "level4_recall": 0.97, "level4_rated_1_or_2": 0}


def load(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def evaluate(cases: list[dict]) -> dict:
    confusion = [[0] * 4 for _ in range(4)]
    latencies, wrong = [], []
    for case in cases:
        start = time.perf_counter()
        result = assess(case["text"], answers=case.get("answers"))
        latencies.append((time.perf_counter() - start) * 1000)
        got = result.shared_level
        confusion[case["level"] - 1][got - 1] += 1
        if got != case["level"]:
            wrong.append((case, result))
    n = len(cases)
    exact = sum(confusion[i][i] for i in range(4)) / n
    within = sum(confusion[i][j] for i in range(4) for j in range(4) if abs(i - j) <= 1) / n
    fours = sum(confusion[3])
    latencies.sort()
    return {
        "n": n,
        "exact": exact,
        "within_one": within,
        "confusion": confusion,
        "level4_recall": confusion[3][3] / fours if fours else 1.0,
        "level4_rated_1_or_2": confusion[3][0] + confusion[3][1],
        "over": sum(confusion[i][j] for i in range(4) for j in range(4) if j > i),
        "under": sum(confusion[i][j] for i in range(4) for j in range(4) if j < i),
        "rated_4_from_1_or_2": confusion[0][3] + confusion[1][3],
        "p50_ms": statistics.median(latencies),
        "p95_ms": latencies[min(n - 1, int(round(0.95 * (n - 1))))],
        "wrong": wrong,
    }


def table(name: str, r: dict, targets: bool) -> str:
    def mark(key: str, ok: bool) -> str:
        return (" ok" if ok else " MISSED") if targets else ""

    lines = [
        f"== {name} ({r['n']} cases)",
        f"exact accuracy        {r['exact']:.3f}{mark('exact', r['exact'] >= TARGETS['exact'])}   (target >= {TARGETS['exact']})",
        f"within-one accuracy   {r['within_one']:.3f}{mark('w', r['within_one'] >= TARGETS['within_one'])}   (target >= {TARGETS['within_one']})",
        f"level-4 recall        {r['level4_recall']:.3f}{mark('r', r['level4_recall'] >= TARGETS['level4_recall'])}   (target >= {TARGETS['level4_recall']})",
        f"level 4 rated 1 or 2  {r['level4_rated_1_or_2']}{mark('z', r['level4_rated_1_or_2'] == 0)}       (target 0)",
        f"over / under rated    {r['over']} / {r['under']}   (levels 1-2 rated 4: {r['rated_4_from_1_or_2']})",
        f"latency p50 / p95     {r['p50_ms']:.1f} ms / {r['p95_ms']:.1f} ms",
        "confusion (rows expected 1-4, columns given 1-4):",
        "        given:  1    2    3    4",
    ]
    for i, row in enumerate(r["confusion"]):
        lines.append(f"  expected {i + 1}: " + " ".join(f"{v:4d}" for v in row))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--errors", action="store_true", help="list the development cases given the wrong level")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    assess("warm up: my child is not sleeping well")  # load the model and the indicator bank once
    print(f"model and bank loaded in {time.perf_counter() - started:.1f} s")
    dev = evaluate(load(DEV))
    print(table("development set tests/data/triage_cases.jsonl", dev, targets=True))
    if args.errors:
        for case, result in dev["wrong"]:
            why = ", ".join(r["indicator"] for r in result.reasons)
            print(f"  expected {case['level']} got {result.shared_level} ({result.confidence}): {case['text'][:110]!r} [{why}]")
    hold = evaluate(load(HOLDOUT))
    print(table("holdout tests/data/triage_holdout.jsonl (never tuned on)", hold, targets=False))
    check = evaluate(load(CHECK))
    print(table("independent check tests/data/triage_check.jsonl (never tuned on)", check, targets=False))
    check2 = evaluate(load(CHECK2))
    print(table("check 2 tests/data/triage_check2.jsonl (third person, professionals, relatives)", check2, targets=False))
    if args.errors:
        for case, result in hold["wrong"] + check["wrong"] + check2["wrong"]:
            print(f"  unseen: expected {case['level']} got {result.shared_level} ({result.confidence}): {case['text'][:110]!r}")
    met = (
        dev["exact"] >= TARGETS["exact"]
        and dev["within_one"] >= TARGETS["within_one"]
        and dev["level4_recall"] >= TARGETS["level4_recall"]
        and dev["level4_rated_1_or_2"] == 0
    )
    print("development targets:", "met" if met else "NOT met")
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
