"""Import (ORUK JSON pages, single objects, lists, HSDS CSV packages) and the ORUK export round trip."""
from __future__ import annotations

import json

import pytest
from sqlalchemy import func, select

from bot.errors import BadInput, UnknownArea
from directory import Directory
from directory import schema as t
from directory.records import service_from_oruk, service_to_oruk

from tests.directory.conftest import FIXTURES


def test_an_oruk_services_page_is_imported_whole(empty):
    report = empty.import_path(FIXTURES / "oruk_page.json")
    assert (report["imported"], report["updated"], report["rejected"]) == (3, 0, [])
    hub = empty.get("fixture-stay-and-play")
    assert hub["area"] == ["gloucestershire"]  # "Gloucestershire" in the feed maps to the area id
    assert hub["ages"] == (0, 4) and hub["free"] is True and hub["phone"] == "01452 000111"
    assert hub["hours"] == "Tue, Thu 09:30-11:30"
    assert hub["last_verified"] == "2024-05-01" and hub["category"] == "early_years"
    boxing = empty.get("fixture-teen-boxing")
    assert boxing["free"] is False and "3.50" in boxing["cost"]
    with empty.engine.connect() as conn:  # the relational shape, not a blob
        assert conn.execute(select(func.count()).select_from(t.location)).scalar() == 1
        assert conn.execute(select(t.service_area.c.area_id).where(t.service_area.c.service_id == "fixture-debt-advice")).scalar() \
            == "bath-and-north-east-somerset"


def test_a_single_service_object_and_a_folder_of_json(empty, tmp_path):
    assert empty.import_path(FIXTURES / "oruk_service.json")["imported"] == 1
    assert empty.get("fixture-single-service")["area"] == ["buckinghamshire"]  # "Bucks"
    folder = tmp_path / "feeds"
    folder.mkdir()
    (folder / "a.json").write_text((FIXTURES / "oruk_page.json").read_text())
    (folder / "b.json").write_text(json.dumps([json.loads((FIXTURES / "oruk_service.json").read_text())]))
    report = empty.import_path(folder)
    assert (report["imported"], report["updated"], report["unchanged"]) == (3, 0, 1)


def test_an_hsds_csv_package(empty):
    report = empty.import_path(FIXTURES / "hsds")
    assert report["imported"] == 2
    massage = empty.get("hsds-baby-massage")
    assert massage["description"] == "Five weekly sessions to learn baby massage and bond with your baby."
    assert massage["organization"] == "Example Children's Centre (test fixture)"
    assert massage["ages"] == (0, 1) and massage["free"] is False and massage["area"] == ["north-lincolnshire"]
    club = empty.get("hsds-homework-club")
    assert club["free"] is True and club["hours"] == "Mon-Thu 15:30-17:30 (term time only)" and club["category"] == "education"
    messages = [r["message"] for r in report["rejected"]]
    assert "phones.csv, row 4, field service_id: no service with id 'hsds-missing-service' in services.csv" in messages
    assert any(m.startswith("services.csv, row 4 (id 'hsds-bad-age'), field eligibilitys[0].maximum_age") for m in messages)


def test_reimporting_counts_updates_and_unchanged(empty):
    empty.import_path(FIXTURES / "oruk_page.json")
    again = empty.import_path(FIXTURES / "oruk_page.json")
    assert (again["imported"], again["updated"], again["unchanged"]) == (0, 0, 3)
    page = json.loads((FIXTURES / "oruk_page.json").read_text())
    page["content"][1]["name"] = "Money Advice Drop-in, renamed (test fixture)"
    changed = empty.import_services(page["content"])
    assert (changed["imported"], changed["updated"], changed["unchanged"]) == (0, 1, 2)
    assert empty.get("fixture-debt-advice")["name"] == "Money Advice Drop-in, renamed (test fixture)"
    with empty.engine.connect() as conn:  # replaced whole: no leftover child rows from the first copy
        assert conn.execute(select(func.count()).select_from(t.phone).where(t.phone.c.service_id == "fixture-debt-advice")).scalar() == 1


def test_area_flag_marks_every_imported_service(empty):
    report = empty.import_path(FIXTURES / "oruk_page.json", area="buckinghamshire")
    assert report["imported"] == 3
    for sid in ("fixture-stay-and-play", "fixture-debt-advice", "fixture-teen-boxing"):
        assert "buckinghamshire" in empty.get(sid)["area"]
    with pytest.raises(UnknownArea):
        empty.import_path(FIXTURES / "oruk_page.json", area="atlantis")


def test_export_round_trips_to_the_same_services(seeded, empty, tmp_path):
    exported = seeded.export_oruk()
    assert exported["totalElements"] == len(exported["content"]) == seeded.count()
    path = tmp_path / "export.json"
    path.write_text(json.dumps(exported))
    report = empty.import_path(path)
    assert report["imported"] == seeded.count() and report["rejected"] == []
    original = {s.id: s for s in seeded.services()}
    copy = {s.id: s for s in empty.services()}
    assert original == copy
    assert empty.export_oruk()["content"] == exported["content"]


def test_export_round_trips_imported_fixtures_too(empty, tmp_path):
    empty.import_path(FIXTURES / "oruk_page.json")
    empty.import_path(FIXTURES / "hsds")
    first = empty.services()
    other = Directory.open(url=f"sqlite:///{tmp_path / 'other.db'}", seed=False)
    other.import_services(empty.export_oruk()["content"])
    assert other.services() == first


def test_record_level_round_trip_is_exact():
    raw = json.loads((FIXTURES / "oruk_page.json").read_text())["content"][0]
    service = service_from_oruk(raw)
    assert service_from_oruk(service_to_oruk(service)) == service


def test_a_missing_path_or_unknown_file_kind_is_bad_input(empty, tmp_path):
    with pytest.raises(BadInput, match="no such file"):
        empty.import_path(tmp_path / "nope.json")
    (tmp_path / "feed.xml").write_text("<services/>")
    with pytest.raises(BadInput, match="expected an ORUK .json file"):
        empty.import_path(tmp_path / "feed.xml")
    (tmp_path / "shape.json").write_text('{"hello": "world"}')
    with pytest.raises(BadInput, match="not an Open Referral UK feed"):
        empty.import_path(tmp_path / "shape.json")
