"""Data quality of the directory: what each service lacks, near-duplicates, and the report every import writes.

Two uses:

* ``flags(service)`` says what a service is missing (contact details, an area, a description, a date
  it was last verified ...). Search results carry these as ``flags`` (codes) and ``caution`` (plain
  words), so a card can say "check with the service" instead of showing a gap or an old fact as true.
* ``build_report(...)`` is written to ``$EARLYHELP_HOME/directory-reports/`` on every import (and every
  re-seed): rejected records grouped by kind (ids, contacts, ages, areas, schedules ...), warnings on the
  accepted ones, and near-duplicate services (different ids that look like the same service in the same
  area).

Nothing here changes what is stored; it only reads and reports.
"""
from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path
from typing import Any, Iterable, Sequence

from directory.records import Service
from directory.vocab import NATIONAL

STALE_AFTER_DAYS = 730  # facts not checked for two years are called stale
NEAR_NAME_RATIO = 0.85  # two names this alike, sharing a phone or web address in the same area: a near-duplicate
MAX_BLOCK = 60  # a name, phone or web address shared by more services than this is generic (a switchboard)

# What a service may lack. "essential" ones make a result unsafe to show as fact: the card must say so.
FLAGS: dict[str, tuple[bool, str]] = {
    "no_contact": (True, "No phone number, email or website is recorded for this service; check the details with the council before relying on them."),
    "no_area": (True, "The area this service covers is not recorded; check that it serves your area."),
    "no_description": (True, "There is no description of what this service does."),
    "inactive": (True, "The directory lists this service as not currently running."),
    "no_source": (False, "No source is recorded for these details."),
    "unverified": (False, "These details have not been checked against a source yet; confirm them with the service."),
    "stale": (False, "These details were last checked more than two years ago and may have changed; confirm them with the service."),
    "no_ages": (False, "No age range is stated."),
    "no_hours": (False, "Opening hours are not stated."),
}
SHOWN_IN_RESULTS = ("no_contact", "no_area", "no_description", "inactive", "no_source", "unverified", "stale")


def flags(s: Service, today: dt.date | None = None) -> list[str]:
    """The codes (keys of ``FLAGS``) that apply to ``s``, in ``FLAGS`` order."""
    today = today or dt.date.today()
    found = set()
    if not s.phones and not s.email and not s.url:
        found.add("no_contact")
    if not s.areas:
        found.add("no_area")
    if not s.description.strip():
        found.add("no_description")
    if s.status != "active":
        found.add("inactive")
    if not s.source:
        found.add("no_source")
    if s.last_verified is None:
        found.add("unverified")
    elif (today - s.last_verified).days > STALE_AFTER_DAYS:
        found.add("stale")
    if s.min_age is None and s.max_age is None and not s.eligibility:
        found.add("no_ages")
    if not s.schedules and not s.hours:
        found.add("no_hours")
    return [code for code in FLAGS if code in found]


def result_flags(s: Service, today: dt.date | None = None) -> dict[str, Any]:
    """The fields a search result carries about its own quality."""
    codes = [c for c in flags(s, today) if c in SHOWN_IN_RESULTS]
    return {
        "flags": codes,
        "caution": [FLAGS[c][1] for c in codes],
        "complete": not any(FLAGS[c][0] for c in codes),
    }


# ---- near-duplicates ------------------------------------------------------------------------------

_WORD = re.compile(r"[a-z0-9]+")
_NAME_NOISE = frozenset(
    "the and of for a an in at to buckinghamshire bucks gloucestershire glos bath north east somerset banes "
    "lincolnshire lincs council".split()
)
_BRACKETS = re.compile(r"\([^)]*\)")


def name_key(name: str) -> str:
    """A service name without case, punctuation, bracketed notes and area names: what two copies share."""
    words = [w for w in _WORD.findall(_BRACKETS.sub(" ", name.lower()).replace("&", " and ")) if w not in _NAME_NOISE]
    return " ".join(words) or name.lower().strip()


def _url_key(url: str | None) -> str | None:
    if not url:
        return None
    key = re.sub(r"^https?://(www\.)?", "", url.strip().lower()).rstrip("/")
    return key or None


def _digits(number: str) -> str:
    digits = re.sub(r"\D", "", number)
    return "0" + digits[2:] if digits.startswith("44") else digits


def _areas_overlap(a: frozenset[str], b: frozenset[str]) -> bool:
    if not a or not b:
        return True  # coverage not stated on one side: cannot tell them apart by area
    return bool(a & b) or (NATIONAL in a and NATIONAL in b)


def near_duplicates(rows: Sequence[dict[str, Any]], focus: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Pairs of different ids that look like one service: the same name in the same area, or a shared
    phone number or web address with very similar names. ``rows``: ``{"id", "name", "phones", "url",
    "areas"}``; with ``focus``, only pairs that involve one of those ids are returned."""
    focus_set = set(focus) if focus is not None else None
    keys = [name_key(r["name"]) for r in rows]
    areas = [frozenset(r["areas"]) for r in rows]
    blocks: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        blocks[("name", keys[i])].append(i)
        for number in r["phones"]:
            digits = _digits(number)
            if len(digits) >= 6:
                blocks[("phone", digits)].append(i)
        url = _url_key(r["url"])
        if url:
            blocks[("url", url)].append(i)
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for (kind, value), members in blocks.items():
        if len(members) < 2 or len(members) > MAX_BLOCK:  # a name or number shared that widely is generic
            continue
        if focus_set is not None and not any(rows[i]["id"] in focus_set for i in members):
            continue
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                i, j = members[x], members[y]
                a, b = rows[i], rows[j]
                if a["id"] == b["id"] or not _areas_overlap(areas[i], areas[j]):
                    continue
                if focus_set is not None and a["id"] not in focus_set and b["id"] not in focus_set:
                    continue
                if kind == "name":
                    reason = "the same name in the same area"
                else:
                    ratio = difflib.SequenceMatcher(None, keys[i], keys[j]).ratio()
                    if ratio < NEAR_NAME_RATIO:
                        continue
                    reason = f"very similar names ({ratio:.2f}) and the same {'phone number' if kind == 'phone' else 'web address'}"
                pair = tuple(sorted((a["id"], b["id"])))
                found.setdefault(pair, {"ids": list(pair), "names": [a["name"], b["name"]] if pair[0] == a["id"] else [b["name"], a["name"]],
                                        "reason": reason})
    return [found[p] for p in sorted(found)]


# ---- the report ------------------------------------------------------------------------------------

REJECTION_KINDS = (
    ("ids", ("id", "organization.id")),
    ("contacts", ("contacts", "phones", "email", "url")),
    ("ages", ("eligibilitys", "eligibilities", "eligibility")),
    ("areas", ("service_areas",)),
    ("schedules", ("regular_schedules", "schedules", "hours")),
    ("synthetic", ("synthetic",)),
    ("shape", ("(record)",)),
)


def rejection_kind(field_name: str) -> str:
    head = field_name.split("[", 1)[0]
    for kind, prefixes in REJECTION_KINDS:
        if head in prefixes or field_name in prefixes:
            return kind
    if field_name.startswith("service_id"):
        return "ids"  # an HSDS row that points at no service
    return "other"


def build_report(
    services: Sequence[Service],
    rejected: Sequence[dict[str, str]],
    store_rows: Sequence[dict[str, Any]],
    source: str,
    today: dt.date | None = None,
) -> dict[str, Any]:
    """The quality report of one import: ``services`` were accepted, ``rejected`` were not; ``store_rows``
    describe every service now in the store (for near-duplicates across feeds)."""
    today = today or dt.date.today()
    warnings: dict[str, list[str]] = {code: [] for code in FLAGS}
    for s in services:
        for code in flags(s, today):
            warnings[code].append(s.id)
    by_kind: dict[str, int] = defaultdict(int)
    for problem in rejected:
        by_kind[rejection_kind(problem["field"])] += 1
    duplicates = near_duplicates(store_rows, focus={s.id for s in services})
    return {
        "generated_at": dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat(),
        "source": source,
        "stale_after_days": STALE_AFTER_DAYS,
        "accepted": len(services),
        "rejected": {"count": len(rejected), "by_kind": dict(sorted(by_kind.items())), "records": list(rejected)},
        "warnings": {code: {"essential": FLAGS[code][0], "meaning": FLAGS[code][1], "count": len(ids), "ids": ids}
                     for code, ids in warnings.items()},
        "near_duplicates": duplicates,
        "summary": {
            "accepted": len(services),
            "rejected": len(rejected),
            "missing_essentials": sum(1 for s in services if any(FLAGS[c][0] for c in flags(s, today))),
            "stale": len(warnings["stale"]),
            "unverified": len(warnings["unverified"]),
            "near_duplicates": len(duplicates),
        },
    }


def write_report(report: dict[str, Any], folder: Path) -> Path:
    """Write ``report`` atomically as ``import-<UTC time>.json`` in ``folder``; returns the path."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    path = folder / f"import-{stamp}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        json.dump(report, handle, ensure_ascii=False, indent=1, default=str)
    os.replace(tmp, path)
    return path
