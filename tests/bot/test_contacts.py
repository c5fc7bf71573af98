"""Who to call now: office hours, Friday's early close, bank holidays and both clock changes."""
from __future__ import annotations

import datetime as dt
import json
import subprocess
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.areas import get_area, load_area_file, load_areas
from bot.contacts import LONDON, child_at_risk_contacts, contacts_report, is_bank_holiday, parse_moment, talk_to_person_contacts
from bot.errors import BadInput, UnknownArea
from tests.conftest import EARLYHELP

FIXTURE = load_area_file(Path(__file__).resolve().parents[1] / "data" / "areas_fixture" / "testshire.yml")
SPOC, ANSWERPHONE = "01724 296500", "01724 296555"


def first_phone(area: str, at: str) -> str:
    return contacts_report(area, at)["contacts"][0]["phone"]


@pytest.mark.parametrize(
    "at, phone, why",
    [
        ("2026-11-26T16:45:00+00:00", SPOC, "Thursday: open until 17:00"),
        ("2026-11-27T16:15:00+00:00", SPOC, "Friday before 16:30"),
        ("2026-11-27T16:45:00+00:00", ANSWERPHONE, "Friday after 16:30"),
        ("2026-11-28T11:00:00+00:00", ANSWERPHONE, "Saturday"),
        ("2026-11-30T08:59:00+00:00", ANSWERPHONE, "Monday before nine"),
        ("2026-12-25T11:00:00+00:00", ANSWERPHONE, "Christmas Day, a Friday"),
        ("2026-08-31T10:00:00+01:00", ANSWERPHONE, "Summer bank holiday Monday"),
        ("2026-10-23T15:45:00+00:00", ANSWERPHONE, "Friday 16:45 in summer time (15:45 UTC)"),
        ("2026-10-30T15:45:00+00:00", SPOC, "Friday 15:45 after the clocks went back"),
        ("2026-03-26T16:30:00+00:00", SPOC, "Thursday 16:30 before the clocks go forward"),
        ("2026-04-02T16:30:00+00:00", ANSWERPHONE, "Thursday 17:30 in summer time (16:30 UTC)"),
        ("2026-11-26T16:45:00", SPOC, "no offset means London time"),
    ],
)
def test_north_lincolnshire_number_to_call_now(at, phone, why):
    assert first_phone("north-lincolnshire", at) == phone, why


def test_buckinghamshire_out_of_hours_goes_to_the_emergency_duty_team():
    assert first_phone("buckinghamshire", "2026-11-24T11:00:00+00:00") == "0845 4600 001"
    assert first_phone("buckinghamshire", "2026-11-24T22:00:00+00:00") == "0800 999 7677"


def test_report_shape_and_emergency():
    doc = contacts_report("north-lincolnshire", "2026-11-27T16:45:00+00:00")
    assert doc["emergency"] == "999" and doc["in_hours"] is False
    assert set(doc["contacts"][0]) >= {"name", "phone", "role", "hours", "source"}
    assert "North Lincolnshire" in doc["contacts"][0]["source"] or "004" in doc["contacts"][0]["source"]


def test_bank_holidays_come_from_the_holidays_package():
    assert is_bank_holiday(dt.date(2026, 12, 28))  # Boxing Day substitute
    assert not is_bank_holiday(dt.date(2026, 3, 1))  # St David's Day is not one


def test_fixture_routing_mechanism():
    tuesday_noon = dt.datetime(2026, 11, 24, 12, tzinfo=LONDON)
    tuesday_night = dt.datetime(2026, 11, 24, 23, tzinfo=LONDON)
    saturday = dt.datetime(2026, 11, 28, 11, tzinfo=LONDON)
    assert child_at_risk_contacts(FIXTURE, tuesday_noon)[0].id == "front_door"
    assert child_at_risk_contacts(FIXTURE, tuesday_night)[0].id == "out_of_hours"
    assert [c.id for c in talk_to_person_contacts(FIXTURE, saturday)] == ["family_info", "front_door"]
    assert [c.id for c in talk_to_person_contacts(FIXTURE, tuesday_noon)] == ["front_door", "family_info"]
    shown = talk_to_person_contacts(FIXTURE, saturday)[0]
    assert "Sat 10:00-12:00" in shown.hours and shown.source.startswith("Early Help assistant tests")


@pytest.mark.parametrize("bad", ["tomorrow", "2026-13-01T00:00", "", 12])
def test_bad_moment_is_bad_input(bad):
    with pytest.raises(BadInput):
        parse_moment(bad)


def test_unknown_area_is_bad_input():
    with pytest.raises(UnknownArea):
        contacts_report("narnia")


@settings(max_examples=200, deadline=None)
@given(moment=st.datetimes(min_value=dt.datetime(2024, 1, 1), max_value=dt.datetime(2030, 12, 31), timezones=st.just(LONDON)))
def test_someone_is_always_answering_first(moment):
    for area in load_areas().values():
        assert child_at_risk_contacts(area, moment)[0].answering_now, (area.id, moment)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(EARLYHELP), *args], capture_output=True, text=True, timeout=60)


def test_cli_names_the_out_of_hours_number_first():
    out = run_cli("contacts", "--area", "north-lincolnshire", "--at", "2026-11-27T16:45:00+00:00", "--json")
    assert out.returncode == 0, out.stderr
    doc = json.loads(out.stdout)
    assert doc["contacts"][0]["phone"] == ANSWERPHONE and doc["emergency"] == "999"


def test_cli_unknown_area_exits_2_naming_known_areas():
    out = run_cli("contacts", "--area", "narnia", "--json")
    assert out.returncode == 2
    assert "north-lincolnshire" in out.stderr and "error" in json.loads(out.stdout)


def test_cli_bad_time_exits_2():
    assert run_cli("contacts", "--area", "gloucestershire", "--at", "teatime").returncode == 2


def test_cli_pathway_and_areas():
    out = run_cli("pathway", "--area", "buckinghamshire", "--level", "3", "--json")
    doc = json.loads(out.stdout)
    assert out.returncode == 0 and doc["label"] == get_area("buckinghamshire").level(3).name
    assert run_cli("areas", "where", "GL5 2AB").stdout.strip() == "gloucestershire"
