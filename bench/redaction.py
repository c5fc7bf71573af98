"""Redaction on the development set (tests/data/redaction_cases.jsonl): recall per kind, precision, words that
must survive, safeguarding cues lost, and the time per message.

    flock /tmp/earlyhelp-bench.lock .venv/bin/python bench/redaction.py [--patterns-only] [--show] [--no-screen]

* recall: a personal detail counts as removed when every letter and digit of it was replaced (for a postcode:
  the inward code; its outward code is meant to stay). Any placeholder counts: what matters is that it is gone.
* precision: of the spans redacted, the share that overlap a labelled detail ("[date]" spans, which are
  redacted by design, are left out).
* kept: each case lists words the triage, the area routing or the safeguarding screen read (ages, towns,
  "year 9", "bill"); any that did not survive is listed.
* safeguarding: the screen on the original and on the redacted text, in two parts. The cue bank (the
  curated patterns, ``bot.safeguarding.detector._screen``): a cue is lost when the original escalates and
  the redacted text does not, loses a category or immediate danger, or an unsure result becomes nothing;
  this must be zero. The whole screen (``screen``, with its by-meaning classifier over an embedding of the
  message): any change of outcome is listed, both ways, because a placeholder moves the embedding. The
  deployed app screens the original, in memory, so these changes cannot stop an escalation; they show what
  a reader of the redacted text (Rasa, the duty team's excerpt) would see differently.
* time: per message, ``find_personal_details`` with the engine already loaded; and the engine's load time.

``--patterns-only`` measures the fallback used when the library or model cannot load. Exit status 1 when
recall < 0.95, a kept word is lost or a cue is lost.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CASES = ROOT / "tests" / "data" / "redaction_cases.jsonl"
RECALL_TARGET = 0.95


def load_cases(path: Path = CASES) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def expected_spans(case: dict) -> list[tuple[str, int, int]]:
    """(kind, start, end) of every labelled detail, each occurrence of its text (whole words)."""
    spans = []
    for item in case["personal"]:
        pattern = r"(?<![\w])" + re.escape(item["text"]) + r"(?![\w])"
        hits = [(item["kind"], m.start(), m.end()) for m in re.finditer(pattern, case["text"])]
        if not hits:
            raise ValueError(f"case {case['id']}: {item['text']!r} not found as a whole word")
        spans.extend(hits)
    return sorted(set(spans), key=lambda s: s[1])


def must_go(text: str, kind: str, start: int, end: int) -> list[int]:
    """Character positions that must be replaced for the detail to count as removed."""
    positions = [i for i in range(start, end) if text[i].isalnum()]
    return positions[-3:] if kind == "postcode" else positions


def _lost(before, after) -> list[str]:
    lost = []
    if before.escalate and not after.escalate:
        lost.append("escalation")
    if set(before.categories) - set(after.categories):
        lost.append(f"categories {sorted(set(before.categories) - set(after.categories))}")
    if before.immediate_danger and not after.immediate_danger:
        lost.append("immediate danger")
    if before.unsure and not (after.unsure or after.escalate):
        lost.append("unsure")
    return lost


def _outcome(s) -> str:
    level = "escalate" if s.escalate else "unsure" if s.unsure else "none"
    return f"{level}{' immediate' if s.immediate_danger else ''} {','.join(s.categories)}".strip()


def score(cases: list[dict], find, with_screen: bool = True) -> dict:
    from bot.privacy.redact import replace

    screen = bank_screen = None
    if with_screen:
        from bot.safeguarding import screen
        from bot.safeguarding.cues import default_bank
        from bot.safeguarding.detector import _screen

        def bank_screen(text):
            return _screen(text, default_bank())[0]

    per_kind = defaultdict(lambda: [0, 0])  # kind -> [removed, total]
    misses, false_positives, lost_keep, lost_cues, times = [], [], [], [], []
    redacted_spans = true_spans = 0
    cues = whole_cues = 0
    changed = []
    for case in cases:
        text = case["text"]
        started = time.perf_counter()
        found = find(text)
        times.append(time.perf_counter() - started)
        redacted = replace(text, found)
        covered = set()
        for f in found:
            covered.update(range(f.start, f.end))
        expected = expected_spans(case)
        for kind, start, end in expected:
            per_kind[kind][1] += 1
            if set(must_go(text, kind, start, end)) <= covered:
                per_kind[kind][0] += 1
            else:
                misses.append((case["id"], kind, text[start:end], text))
        for f in found:
            if f.kind == "date":
                continue
            redacted_spans += 1
            if any(f.start < end and start < f.end for _, start, end in expected):
                true_spans += 1
            else:
                false_positives.append((case["id"], f.kind, f.text, text))
        for word in case.get("keep", []):
            if not re.search(r"(?<![\w])" + re.escape(word) + r"(?![\w])", redacted):
                lost_keep.append((case["id"], word, redacted))
        if screen is not None:
            before, after = bank_screen(text), bank_screen(redacted)
            if before.escalate or before.unsure:
                cues += 1
            lost = _lost(before, after)
            if lost:
                lost_cues.append((case["id"], ", ".join(lost), text, redacted))
            whole_before, whole_after = screen(text), screen(redacted)
            if whole_before.escalate or whole_before.unsure:
                whole_cues += 1
            if _outcome(whole_before) != _outcome(whole_after):
                changed.append((case["id"], _outcome(whole_before), _outcome(whole_after), text, redacted))
    removed = sum(v[0] for v in per_kind.values())
    total = sum(v[1] for v in per_kind.values())
    return {
        "per_kind": dict(per_kind), "recall": removed / total if total else 1.0, "removed": removed, "total": total,
        "precision": true_spans / redacted_spans if redacted_spans else 1.0, "redacted_spans": redacted_spans,
        "misses": misses, "false_positives": false_positives, "lost_keep": lost_keep, "lost_cues": lost_cues,
        "cases_with_cue": cues, "screened": screen is not None, "times": times,
        "cases_with_any_flag": whole_cues, "classifier_changes": changed,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--patterns-only", action="store_true", help="measure the fallback without the entity model")
    parser.add_argument("--show", action="store_true", help="list every miss and false positive")
    parser.add_argument("--no-screen", action="store_true", help="skip the safeguarding comparison (faster)")
    args = parser.parse_args(argv)
    if args.patterns_only:
        os.environ["EARLYHELP_REDACTION_MODEL"] = "off"

    started = time.perf_counter()
    import importlib

    module = importlib.import_module("bot.privacy.redact")

    loaded = module.load_engine()
    load_seconds = time.perf_counter() - started
    cases = load_cases()
    result = score(cases, module.find_personal_details, with_screen=not args.no_screen)
    splits = {name: score([c for c in cases if c.get("split", "dev") == name], module.find_personal_details, False)
              for name in ("dev", "holdout")}

    status = module.engine_status()
    print(f"Redaction on {len(cases)} messages ({CASES.relative_to(ROOT)}: {sum(c.get('split', 'dev') == 'dev' for c in cases)} "
          f"development, {sum(c.get('split') == 'holdout' for c in cases)} held out), engine: "
          f"{status['model'] if loaded else 'patterns only'} ({status['state']})")
    print(f"load average: {os.getloadavg()[0]:.2f} {os.getloadavg()[1]:.2f} {os.getloadavg()[2]:.2f}")
    print()
    print(f"| {'kind':<14} | {'dev':>11} | {'held out':>11} | {'all':>11} | {'recall (all)':>12} |")
    print(f"|{'-' * 16}|{'-' * 13}|{'-' * 13}|{'-' * 13}|{'-' * 14}|")

    def cell(res, kind):
        ok, total = res["per_kind"].get(kind, (0, 0))
        return f"{ok}/{total}"

    for kind, (ok, total) in sorted(result["per_kind"].items(), key=lambda kv: -kv[1][1]):
        print(f"| {kind:<14} | {cell(splits['dev'], kind):>11} | {cell(splits['holdout'], kind):>11} | "
              f"{ok}/{total:<{10 - len(str(ok))}} | {ok / total:>12.3f} |")
    print(f"| {'RECALL':<14} | {splits['dev']['recall']:>11.3f} | {splits['holdout']['recall']:>11.3f} | "
          f"{result['removed']}/{result['total']:<{10 - len(str(result['removed']))}} | {result['recall']:>12.3f} |")
    print(f"| {'PRECISION':<14} | {splits['dev']['precision']:>11.3f} | {splits['holdout']['precision']:>11.3f} | "
          f"{'':>11} | {result['precision']:>12.3f} |")
    print()
    times_ms = sorted(t * 1000 for t in result["times"])
    p95 = times_ms[int(0.95 * (len(times_ms) - 1))]
    print(f"precision (redacted spans that are personal data): {result['precision']:.3f} "
          f"of {result['redacted_spans']} spans, {len(result['false_positives'])} false positive(s)")
    print(f"words that must survive, lost: {len(result['lost_keep'])}")
    if result["screened"]:
        print(f"safeguarding, cue bank: {result['cases_with_cue']} messages with a cue (escalate or unsure); "
              f"cues lost by redaction: {len(result['lost_cues'])}")
        print(f"safeguarding, whole screen incl. the by-meaning classifier: {result['cases_with_any_flag']} messages "
              f"flagged; outcome changed by redaction: {len(result['classifier_changes'])} (listed below)")
    print(f"time per message: median {statistics.median(times_ms):.1f} ms, p95 {p95:.1f} ms, max {times_ms[-1]:.1f} ms; "
          f"engine load (first use, incl. imports): {load_seconds:.1f} s")
    print(f"recall target {RECALL_TARGET}: {'met' if result['recall'] >= RECALL_TARGET else 'NOT met'}")
    for case_id, word, redacted in result["lost_keep"]:
        print(f"  lost word #{case_id}: {word!r} in {redacted!r}")
    for case_id, what, text, redacted in result["lost_cues"]:
        print(f"  cue lost #{case_id}: {what}: {text!r} -> {redacted!r}")
    for case_id, before, after, text, redacted in result["classifier_changes"]:
        print(f"  screen changed #{case_id}: {before!r} -> {after!r}: {text!r} -> {redacted!r}")
    if args.show:
        for case_id, kind, value, text in result["misses"]:
            print(f"  miss #{case_id} {kind}: {value!r} in {text!r}")
        for case_id, kind, value, text in result["false_positives"]:
            print(f"  false positive #{case_id} {kind}: {value!r} in {text!r}")
    failed = result["recall"] < RECALL_TARGET or result["lost_keep"] or result["lost_cues"]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
