"""Opening times: words for people, and "is it open at this moment?" for the open-now filter.

Times are Europe/London. A regular schedule is taken to be closed on England and Wales bank holidays
unless it runs round the clock every day (a 24/7 helpline). A service with no schedule at all is never
called "open now": we do not know, and saying so is safer than guessing.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence
from zoneinfo import ZoneInfo

from directory.records import DAY_NAMES, DAYS, Schedule

LONDON = ZoneInfo("Europe/London")
NOT_STATED = "opening hours not stated in the source document"


def always_open(schedules: Sequence[Schedule]) -> bool:
    days = {d for s in schedules if s.opens_at == "00:00" and s.closes_at == "24:00" for d in s.byday}
    return days == set(DAYS)


def _is_bank_holiday(day: dt.date) -> bool:
    from bot.contacts import is_bank_holiday  # England and Wales, from the maintained holidays package

    return is_bank_holiday(day)


def local_moment(moment: dt.datetime) -> dt.datetime:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment.astimezone(LONDON)


def open_at(schedules: Sequence[Schedule], moment: dt.datetime) -> bool:
    if not schedules:
        return False
    if always_open(schedules):
        return True
    local = local_moment(moment)
    if _is_bank_holiday(local.date()):
        return False
    day = DAYS[local.weekday()]
    now = local.strftime("%H:%M")
    return any(day in s.byday and s.opens_at <= now < s.closes_at for s in schedules)


def _day_ranges(days: Sequence[str]) -> str:
    idx = sorted(DAYS.index(d) for d in set(days))
    parts, start = [], None
    for pos, i in enumerate(idx):
        if start is None:
            start = i
        if pos + 1 == len(idx) or idx[pos + 1] != i + 1:
            parts.append(DAY_NAMES[start] if start == i else f"{DAY_NAMES[start]}-{DAY_NAMES[i]}")
            start = None
    return ", ".join(parts)


def describe(schedules: Sequence[Schedule], note: str | None) -> str:
    """Opening times in words, e.g. 'Mon-Thu 09:00-17:00; Fri 09:00-16:30'."""
    if always_open(schedules):
        text = "24 hours a day, every day"
    else:
        by_span: dict[tuple[str, str], list[str]] = {}
        for s in schedules:
            by_span.setdefault((s.opens_at, s.closes_at), []).extend(s.byday)
        ordered = sorted(by_span.items(), key=lambda item: min(DAYS.index(d) for d in item[1]))
        text = "; ".join(f"{_day_ranges(days)} {start}-{end}" for (start, end), days in ordered)
    notes = [n for n in [note, *[s.description for s in schedules]] if n]
    if notes:
        text = f"{text} ({'; '.join(dict.fromkeys(notes))})" if text else "; ".join(dict.fromkeys(notes))
    return text or NOT_STATED
