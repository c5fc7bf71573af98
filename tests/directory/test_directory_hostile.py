"""Hostile and broken feeds: sanitising, rejection messages, and imports that change nothing on failure."""
from __future__ import annotations

import json

import pytest

from bot.errors import BadInput
from directory import store
from directory.sanitise import plain_text, safe_url

from tests.directory.conftest import FIXTURES


@pytest.mark.parametrize(
    "given, expected",
    [
        ("<p>Hello <b>there</b></p><script>alert(1)</script>", "Hello there"),
        ("Games &amp; crafts<img src=x onerror=alert(1)>", "Games & crafts"),
        ("&lt;script&gt;alert(2)&lt;/script&gt;Safe words", "Safe words"),
        ("<style>p{}</style><a href='javascript:x()'>Click</a> me", "Click me"),
        ("Tea &lt; 3 pounds &gt; 1", "Tea 3 pounds 1"),
        ("Line one<br>Line two", "Line one\nLine two"),
        ("Bell\x07 and \u202edirection\u202c tricks\x00", "Bell and direction tricks"),
    ],
)
def test_plain_text_keeps_words_and_drops_everything_that_could_run(given, expected):
    out = plain_text(given)
    assert out == expected
    assert "<" not in out and ">" not in out


def test_only_plain_web_links_survive():
    assert safe_url("https://example.org/a?b=1") == "https://example.org/a?b=1"
    assert safe_url("glosfamiliesdirectory.org.uk") == "https://glosfamiliesdirectory.org.uk"
    for bad in ("javascript:alert(1)", "data:text/html;base64,xx", "https://ex ample.org", 'https://e.org/"onload="x'):
        assert safe_url(bad) is None


def test_hostile_feed_keeps_good_records_and_names_every_bad_one(empty):
    report = empty.import_path(FIXTURES / "hostile.json")
    assert report["imported"] == 3  # the script-laden record (cleaned), one duplicate pair, one repeated record
    kid = empty.get("hostile-script")
    assert kid["name"] == "Script Kid Club (test fixture)"
    assert kid["description"] == "Games & crafts\nfor kids"
    shown = json.dumps(kid).lower()
    assert not any(bad in shown for bad in ("<", ">", "alert", "onerror", "onclick", "javascript", "evil.example"))
    by_record = {r["record"]: r for r in report["rejected"]}
    expected = {
        "record 2 (id 'hostile-js-link')": ("url", "http or https"),
        "record 3 (id 'hostile-wrong-type')": ("name", "must be text, got dict"),
        "record 4 (id 'hostile-huge')": ("description", "the limit is 20000"),
        "record 5 (id 'hostile-age-words')": ("eligibilitys[0].minimum_age", "whole number"),
        "record 6 (id 'hostile-age-order')": ("eligibilitys[0].maximum_age", "below minimum_age"),
        "record 7 (id 'hostile-bad-day')": ("regular_schedules[0].byday", "FUNDAY"),
        "record 8 (id 'hostile-bad-email')": ("email", "not an email"),
        "record 9 (id 'hostile-no-org')": ("organization", "required"),
        "record 10": ("id", "required"),
        "record 12 (id 'hostile-dup')": ("id", "duplicate id"),
        "record 15": ("(record)", "service object"),
        "record 16 (id 'hostile-bad-category')": ("service_taxonomys[0].taxonomy.name", "not a category"),
        "record 17 (id 'hostile-phone-text')": ("contacts[0].phones[0].number", "not a phone number"),
    }
    assert set(by_record) == set(expected)
    for record, (field, words) in expected.items():
        problem = by_record[record]
        assert problem["file"] == "hostile.json" and problem["field"] == field and words in problem["reason"]
        assert problem["message"].startswith(f"hostile.json, {record}, field {field}: ")
    assert empty.get("hostile-dup")["name"] == "Duplicate One (test fixture)"  # the first copy wins, the clash is reported


def test_malformed_json_is_bad_input_and_changes_nothing(empty):
    empty.import_path(FIXTURES / "oruk_page.json")
    before = empty.export_oruk()
    with pytest.raises(BadInput, match=r"malformed.json: not valid JSON .* line 2"):
        empty.import_path(FIXTURES / "malformed.json")
    assert empty.export_oruk() == before


def test_a_failure_half_way_through_the_write_changes_nothing(empty, monkeypatch):
    empty.import_path(FIXTURES / "oruk_page.json")
    before = empty.export_oruk()
    generation = empty.catalog().generation
    real = store.write_services

    def write_then_fail(conn, services, origin="import"):
        real(conn, services, origin)  # rows are in the transaction ...
        raise RuntimeError("disk full")  # ... and then the write fails

    monkeypatch.setattr(store, "write_services", write_then_fail)
    page = json.loads((FIXTURES / "oruk_page.json").read_text())
    page["content"][0]["name"] = "Changed (test fixture)"
    new = json.loads((FIXTURES / "oruk_service.json").read_text())
    with pytest.raises(RuntimeError, match="disk full"):
        empty.import_services(page["content"] + [new])
    monkeypatch.setattr(store, "write_services", real)
    assert empty.export_oruk() == before
    assert empty.get("fixture-single-service") is None
    assert empty.catalog().generation == generation
    assert [r["id"] for r in empty.search("stay and play for toddlers", k=1)] == ["fixture-stay-and-play"]


def test_synthetic_records_never_enter_a_real_directory(empty):
    from directory.synthetic import generate

    records = list(generate(3))
    report = empty.import_services(records)
    assert report["imported"] == 0 and len(report["rejected"]) == 3
    assert all(r["field"] == "synthetic" for r in report["rejected"])
    assert empty.count() == 0


def test_a_huge_file_is_refused_before_it_is_read(empty, tmp_path, monkeypatch):
    from directory import feeds

    monkeypatch.setattr(feeds, "MAX_FILE_BYTES", 1000)
    with pytest.raises(BadInput, match="the limit is 1000"):
        empty.import_path(FIXTURES / "hostile.json")
    assert empty.count() == 0
