"""Render the sample commissioners' report from made-up events (no real family, council or conversation).

    .venv/bin/python docs/sample-report/make_sample.py

Writes report.html and report.csv next to this file, through ``bot.report.write`` (what ``earlyhelp report``
runs), from a throw-away SQLite database filled with random but seeded events for Gloucestershire in
October 2026, so the same figures come out every time.
"""
from __future__ import annotations

import datetime as dt
import random
import tempfile
from pathlib import Path

from bot import analytics
from bot.escalation.store import EscalationStore
from bot.report import write

HERE = Path(__file__).resolve().parent
AREA = "gloucestershire"
START, END = dt.date(2026, 10, 1), dt.date(2026, 10, 31)
DISTRICTS = ["GL1", "GL5", "GL20", "GL50", "GL7"]
CATEGORIES = ["domestic_abuse", "physical_abuse", "neglect", "self_harm"]


def fill(url: str, rng: random.Random) -> None:
    days = [START + dt.timedelta(days=i) for i in range((END - START).days + 1)]
    for _ in range(400):
        day = rng.choice(days)
        speaker = rng.choices(["parent", "young_person", "professional"], [5, 3, 2])[0]
        level = rng.choices([1, 2, 3, 4], [30, 44, 18, 8])[0]
        district = rng.choice(DISTRICTS)
        analytics.record("level_given", url=url, area=AREA, speaker=speaker, level=level, outcode=district, day=day)
        if rng.random() < 0.9:
            analytics.record("services_shown", url=url, area=AREA, speaker=speaker, count=rng.randint(1, 5), day=day)
        else:
            analytics.record("no_fitting_service", url=url, area=AREA, speaker=speaker,
                             outcode=rng.choices(DISTRICTS, [6, 3, 8, 4, 1])[0], day=day)
        if rng.random() < 0.3:
            analytics.record("talk_to_person", url=url, area=AREA, speaker=speaker, day=day)
        analytics.record("return_visit" if rng.random() < 0.27 else "first_visit", url=url, area=AREA, day=day)
    clock = [dt.datetime.combine(START, dt.time(9), dt.timezone.utc)]
    store = EscalationStore.open(url, channels=["inbox"], clock=lambda: clock[0])
    for i in range(23):
        created = dt.datetime.combine(rng.choice(days), dt.time(rng.randint(8, 20), rng.randint(0, 59)), dt.timezone.utc)
        clock[0] = created
        category = rng.choices(CATEGORIES, [9, 7, 2, 5])[0]
        escalation = store.record_turn(f"sample-{i}", "made-up text", area=AREA, categories=[category],
                                       immediate_danger=False, escalate=True)
        clock[0] = created + dt.timedelta(minutes=rng.randint(4, 70))
        store.acknowledge(escalation["id"], "sample duty worker")
    store.dispose()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'sample.db'}"
        fill(url, random.Random(2026))
        write(AREA, START, END, HERE, url)
    print(f"wrote {HERE / 'report.html'} and {HERE / 'report.csv'}")


if __name__ == "__main__":
    main()
