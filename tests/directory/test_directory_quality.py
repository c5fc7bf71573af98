"""Data quality: the report every import writes, flags on search results, closed services never offered,
and what "none of these fit" and "show more" need (``refine``, ``exclude``)."""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from bot.errors import BadInput
from directory import quality
from directory.records import service_from_oruk

from tests.directory.conftest import FIXTURES
from tests.directory.test_directory_cli import earlyhelp


def ids(results):
    return [r["id"] for r in results]


def test_every_import_writes_a_quality_report(empty, test_home):
    first = empty.import_path(FIXTURES / "oruk_page.json")
    report = empty.import_path(FIXTURES / "quality.json")
    assert report["imported"] == 4 and report["rejected"] == []
    path = Path(report["quality"]["report"])
    assert path.parent == test_home / "directory-reports" and path.name.startswith("import-")
    assert Path(first["quality"]["report"]) != path  # one report per import, none overwritten
    doc = json.loads(path.read_text())
    assert doc["source"].endswith("quality.json") and doc["accepted"] == 4
    warnings = {code: w["ids"] for code, w in doc["warnings"].items()}
    assert warnings["no_contact"] == ["quality-no-contact"] and warnings["no_area"] == ["quality-no-contact"]
    assert warnings["inactive"] == ["quality-defunct"]
    assert warnings["no_source"] == ["quality-unverified"] and warnings["unverified"] == ["quality-unverified"]
    assert warnings["stale"] == ["quality-copy-of-stay-and-play"]  # 2019: more than two years before today
    assert doc["warnings"]["no_contact"]["essential"] is True and doc["warnings"]["stale"]["essential"] is False
    assert set(warnings["no_hours"]) == {"quality-no-contact", "quality-defunct", "quality-copy-of-stay-and-play", "quality-unverified"}
    # a copy of a service already in the store, under another id, from another feed
    assert doc["near_duplicates"] == [{"ids": ["fixture-stay-and-play", "quality-copy-of-stay-and-play"],
                                       "names": ["Stay and Play at Example Family Hub (test fixture)",
                                                 "Stay & Play at Example Family Hub (Gloucestershire)"],
                                       "reason": "the same name in the same area"}]
    assert report["quality"]["near_duplicates"] == doc["near_duplicates"]
    assert report["quality"]["missing_essentials"] == 2 and report["quality"]["stale"] == 1


def test_rejections_are_counted_by_kind_in_the_report(empty):
    report = empty.import_path(FIXTURES / "hostile.json")
    doc = json.loads(Path(report["quality"]["report"]).read_text())
    assert doc["rejected"]["count"] == len(report["rejected"]) == 13
    # url, email, phone | two ages | byday | missing and duplicate id | a list item that is no object | name,
    # description, organization, category
    assert doc["rejected"]["by_kind"] == {"ages": 2, "contacts": 3, "ids": 2, "other": 4, "schedules": 1, "shape": 1}
    assert [r["record"] for r in doc["rejected"]["records"]] == [r["record"] for r in report["rejected"]]


@pytest.mark.parametrize("field, kind", [
    ("id", "ids"), ("organization.id", "ids"), ("service_id", "ids"), ("contacts[0].phones[1].number", "contacts"),
    ("email", "contacts"), ("url", "contacts"), ("eligibilitys[0].maximum_age", "ages"), ("service_areas[2].service_area", "areas"),
    ("regular_schedules[0].byday", "schedules"), ("synthetic", "synthetic"), ("(record)", "shape"), ("name", "other"),
])
def test_rejection_kinds(field, kind):
    assert quality.rejection_kind(field) == kind


def test_results_with_missing_essentials_are_flagged_not_shown_as_fact(empty):
    empty.import_path(FIXTURES / "oruk_page.json")
    empty.import_path(FIXTURES / "quality.json")
    found = {r["id"]: r for r in empty.search("toddler splash club in the pool", k=10)}
    lacking = found["quality-no-contact"]
    assert lacking["flags"] == ["no_contact", "no_area"]
    assert lacking["complete"] is False and lacking["phone"] is None
    assert any("No phone number, email or website" in c for c in lacking["caution"])
    assert any("area this service covers is not recorded" in c for c in lacking["caution"])
    fine = {r["id"]: r for r in empty.search("stay and play", area="gloucestershire", k=5)}["fixture-stay-and-play"]
    assert fine["complete"] is True and fine["phone"] == "01452 000111"  # all the essentials
    assert fine["flags"] == ["no_source"] + (["stale"] if (dt.date.today() - dt.date(2024, 5, 1)).days > 730 else [])
    assert len(fine["caution"]) == len(fine["flags"])
    assert fine["who_for"] == fine["eligibility"] == "babies and toddlers with a parent or carer"
    assert lacking["eligibility"] is None and lacking["who_for"] == "ages 1 to 4"
    unverified = empty.get("quality-unverified")
    assert unverified["flags"] == ["no_source", "unverified"] and unverified["complete"] is True
    assert any("not been checked" in c for c in unverified["caution"])


def test_a_closed_service_is_never_offered(empty):
    empty.import_path(FIXTURES / "quality.json")
    for kwargs in ({}, {"area": "gloucestershire"}, {"age": 2}, {"category": "early_years"}):
        assert "quality-defunct" not in ids(empty.search("closed toddler splash club", k=50, **kwargs))
    closed = empty.get("quality-defunct")  # still looked up by id, and says it is closed
    assert closed["status"] == "defunct" and "inactive" in closed["flags"] and closed["complete"] is False
    page = json.loads((FIXTURES / "quality.json").read_text())
    page["content"][1]["status"] = "active"  # reopened: offered again at the next search
    empty.import_services(page["content"])
    assert "quality-defunct" in ids(empty.search("closed toddler splash club", k=50))


def test_flags_follow_the_date(tmp_path):
    raw = json.loads((FIXTURES / "oruk_page.json").read_text())["content"][0]
    service = service_from_oruk(raw)  # verified 2024-05-01
    assert "stale" not in quality.flags(service, today=dt.date(2026, 4, 30))
    assert "stale" in quality.flags(service, today=dt.date(2026, 5, 2))


def test_the_default_content_has_no_missing_essentials_and_no_near_duplicates(seeded):
    doc = seeded.quality_report()
    assert doc["summary"]["missing_essentials"] == 0
    assert doc["near_duplicates"] == []
    assert doc["summary"]["unverified"] == doc["warnings"]["unverified"]["count"] >= 17  # the national entries
    # the same service name in two areas is two services, not a duplicate
    rows = [{"id": "a", "name": "Family Information Service (Gloucestershire)", "phones": ["01452 427362"], "url": None, "areas": ["gloucestershire"]},
            {"id": "b", "name": "Family Information Service (Buckinghamshire)", "phones": [], "url": None, "areas": ["buckinghamshire"]},
            {"id": "c", "name": "Family Information Service", "phones": ["+44 1452 427362"], "url": None, "areas": ["gloucestershire"]}]
    assert [d["ids"] for d in quality.near_duplicates(rows)] == [["a", "c"]]


def test_exclude_and_refine_for_show_more_and_none_of_these_fit(seeded):
    query = dict(query="my toddler isn't talking yet", area="gloucestershire", age=2)
    first = seeded.search(**query, k=3)
    shown = ids(first)
    more = seeded.search(**query, k=3, exclude=shown)
    assert not set(ids(more)) & set(shown) and len(more) == 3
    assert ids(seeded.search(**query, k=6))[3:] == ids(more)
    question = seeded.refine(**query, shown=shown)
    assert question["question"].endswith("closest to what you need?") and question["exclude"] == sorted(shown)
    assert 2 <= len(question["choices"]) <= 4
    for choice in question["choices"]:
        assert choice["label"] and choice["category"] != "get_help_now"
        results = seeded.search(**query, k=5, category=choice["category"], exclude=shown)
        assert results and not set(ids(results)) & set(shown)
        assert all(choice["category"] in r["categories"] for r in results)
    with pytest.raises(BadInput, match="list of service ids"):
        seeded.search("help", exclude="glos-triple-p")
    batch = seeded.search_requests([{**query, "exclude": shown}, {**query, "exclude": 7}])  # what --batch lines call
    assert ids(batch[0]) == ids(seeded.search(**query, exclude=shown)) and isinstance(batch[1], BadInput)


def test_a_query_nothing_fits_is_marked_weak(seeded):
    weak = seeded.search("quantum chromodynamics lecture notes", k=3)
    assert weak and all(r["weak_match"] for r in weak)
    strong = seeded.search("Triple P parenting", area="gloucestershire", k=1)[0]
    assert strong["weak_match"] is False


def test_quality_and_export_on_the_command_line(tmp_path):
    home = tmp_path / "home"
    done = earlyhelp("import", str(FIXTURES / "quality.json"), "--json", home=home)
    assert done.returncode == 0, done.stderr
    imported = json.loads(done.stdout)
    assert Path(imported["quality"]["report"]).parent == home / "directory-reports"
    text = earlyhelp("quality", home=home)
    assert text.returncode == 0 and "missing essentials" in text.stdout and "no_contact (1, essential): quality-no-contact" in text.stdout
    doc = json.loads(earlyhelp("quality", "--json", home=home).stdout)
    assert doc["warnings"]["inactive"]["ids"] == ["quality-defunct"]
    exported = earlyhelp("export", "--json", home=home)
    assert exported.returncode == 0 and len(exported.stdout.strip().splitlines()) == 1
    assert {"quality-no-contact", "quality-defunct"} <= {s["id"] for s in json.loads(exported.stdout)["content"]}


def test_a_generic_name_or_switchboard_shared_by_many_is_not_a_duplicate_storm():
    rows = [{"id": f"s{i}", "name": "Stay and play", "phones": ["01452 425000"], "url": None, "areas": ["gloucestershire"]}
            for i in range(quality.MAX_BLOCK + 1)]
    assert quality.near_duplicates(rows) == []
    assert len(quality.near_duplicates(rows[:3])) == 3  # a few copies are reported, each pair once
