"""The commissioners' report: built from events with no personal data, small counts suppressed."""
from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa
from hypothesis import given
from hypothesis import strategies as st

from bot import analytics
from bot.escalation.store import EscalationStore

EARLYHELP = Path(sys.executable).parent / "earlyhelp"
DAY = dt.date(2026, 11, 2)


def test_events_keep_only_the_closed_vocabulary(tmp_path):
    url = f"sqlite:///{tmp_path / 'earlyhelp.db'}"
    analytics.record("level_given", url=url, area="gloucestershire", speaker="parent", level=3, outcode="GL5", day=DAY)
    analytics.record("level_given", url=url, area="Jo Bloggs, 12 High St", speaker="my name is Jo", level=9,
                     outcode="GL5 2AB", day=DAY)
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(sa.select(analytics.events)).mappings()]
    assert rows[0]["area"] == "gloucestershire" and rows[0]["level"] == 3 and rows[0]["outcode"] == "GL5"
    assert rows[1]["area"] is None and rows[1]["speaker"] is None and rows[1]["level"] is None and rows[1]["outcode"] is None


@given(st.text(max_size=80), st.text(max_size=80), st.text(max_size=12))
def test_no_free_text_is_ever_stored(area, speaker, outcode):
    row = analytics.clean("services_shown", area=area, speaker=speaker, outcode=outcode)
    assert row["area"] in (None, "buckinghamshire", "bath-and-north-east-somerset", "gloucestershire", "north-lincolnshire")
    assert row["speaker"] in (None, *analytics.SPEAKERS)
    assert row["outcode"] is None or len(row["outcode"]) <= 4


def test_report_suppresses_small_counts_in_html_csv_and_json(tmp_path):
    url = f"sqlite:///{tmp_path / 'earlyhelp.db'}"
    for _ in range(7):
        analytics.record("level_given", url=url, area="gloucestershire", speaker="parent", level=2, day=DAY)
    for _ in range(2):
        analytics.record("level_given", url=url, area="gloucestershire", speaker="professional", level=4, day=DAY)
    analytics.record("no_fitting_service", url=url, area="gloucestershire", outcode="GL5", day=DAY)
    analytics.record("level_given", url=url, area="north-lincolnshire", level=1, day=DAY)  # another area
    store = EscalationStore.open(url, clock=lambda: dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc))
    store.record_turn("s1", "he hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.dispose()
    out = tmp_path / "out"
    done = subprocess.run([str(EARLYHELP), "report", "--area", "gloucestershire", "--from", "2026-11-01", "--to",
                           "2026-11-30", "--out", str(out), "--json"], capture_output=True, text=True, timeout=180,
                          env={**os.environ, "EARLYHELP_HOME": str(tmp_path)})
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    counts = {(r["section"], r["measure"]): r["count"] for r in doc["rows"]}
    assert counts[("Level of need given", "level 2")] == "7"
    assert counts[("Level of need given", "level 4")] == "<5"
    assert counts[("Unmet need by postcode district", "GL5")] == "<5"
    assert counts[("Escalations by category", "physical abuse")] == "<5"
    assert ("Level of need given", "level 1") not in counts  # North Lincolnshire's event is not Gloucestershire's
    rows = list(csv.reader(open(out / "report.csv")))
    assert ["Level of need given", "level 4", "<5"] in rows and not any(r[2] in ("1", "2") for r in rows[1:])
    page = (out / "report.html").read_text()
    assert "<svg" in page and "&lt;5" in page and ">2<" not in page


def test_bad_dates_and_areas_exit_2(tmp_path):
    for args in (["--area", "atlantis", "--from", "2026-01-01", "--to", "2026-01-02"],
                 ["--area", "gloucestershire", "--from", "yesterday", "--to", "2026-01-02"],
                 ["--area", "gloucestershire", "--from", "2026-02-01", "--to", "2026-01-02"]):
        done = subprocess.run([str(EARLYHELP), "report", *args, "--json"], capture_output=True, text=True, timeout=120,
                              env={**os.environ, "EARLYHELP_HOME": str(tmp_path)})
        assert done.returncode == 2 and "error" in json.loads(done.stdout)


def test_return_visits_and_minutes_to_acknowledge(tmp_path):
    """Visits come from yes/no events; a median wait is shown only over 5 or more escalations, and as minutes
    (not a count, so not suppressed)."""
    from bot.report import MINUTES, figures, shown

    url = f"sqlite:///{tmp_path / 'earlyhelp.db'}"
    for _ in range(6):
        analytics.record("first_visit", url=url, area="gloucestershire", day=DAY)
    for _ in range(3):
        analytics.record("return_visit", url=url, area="gloucestershire", day=DAY)
    analytics.record("return_visit", url=url, area="buckinghamshire", day=DAY)
    created = dt.datetime(2026, 11, 2, 10, tzinfo=dt.timezone.utc)
    now = [created]
    store = EscalationStore.open(url, channels=["inbox"], clock=lambda: now[0])
    for i, (category, wait) in enumerate([("physical_abuse", w) for w in (2, 4, 6, 8, 30, 50)] +
                                         [("neglect", w) for w in (1, 3)]):
        now[0] = created
        esc = store.record_turn(f"s{i}", "text", area="gloucestershire", categories=[category],
                                immediate_danger=False, escalate=True)
        now[0] = created + dt.timedelta(minutes=wait)
        store.acknowledge(esc["id"], "duty")
    store.dispose()
    rows = figures("gloucestershire", dt.date(2026, 11, 1), dt.date(2026, 11, 30), url)
    table = {(s, label): shown(n, s) for s, label, n in rows}
    assert table[("Visits", "first visit from this browser")] == "6"
    assert table[("Visits", "return visit from this browser")] == "<5"
    assert table[(MINUTES, "all categories")] == "5"  # median of 1,2,3,4,6,8,30,50: (4+6)/2
    assert table[(MINUTES, "physical abuse")] == "7"  # (6+8)/2; a small number of minutes is not suppressed
    assert (MINUTES, "neglect") not in table  # two escalations: their waits would describe individual cases
    assert table[("Escalations by category", "neglect")] == "<5"
