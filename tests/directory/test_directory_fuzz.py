"""Hostile feeds, generated: whatever a feed sends, a record is either read into safe plain text or rejected
with the field that broke it, an import never half-writes, and nothing a feed says can become markup."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import BadInput
from directory import Directory
from directory.records import RecordError, Service, service_from_oruk, service_to_oruk
from directory.sanitise import plain_text, safe_url

from tests.directory.conftest import FIXTURES

BASE = json.loads((FIXTURES / "oruk_page.json").read_text())["content"][0]
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f\u202a-\u202e\u2066-\u2069]")

html_bits = st.sampled_from([
    "<script>alert(1)</script>", "<img src=x onerror=alert(1)>", "&lt;script&gt;", "&amp;lt;b&amp;gt;", "<a href='javascript:x'>",
    "</p>", "<br/>", "<!-- c -->", "<style>*{}</style>", "<<b>>", "&#60;svg onload=1&#62;", "\x00", "\u202e", "\r\n", "&", "<", ">",
    "<![CDATA[x]]>", "<iframe src=//evil>", "\ufeff", "&#x3C;", "javascript:alert(1)",
])
hostile_text = st.lists(st.one_of(st.text(max_size=30), html_bits), max_size=12).map("".join)
scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True, allow_infinity=True),
                    hostile_text)
json_values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                            st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                           max_leaves=20)

FIELDS = ["id", "name", "description", "url", "email", "status", "fees", "assured_date", "organization", "contacts",
          "regular_schedules", "eligibilitys", "cost_options", "service_areas", "service_taxonomys",
          "service_at_locations", "source", "synthetic", "hours", "phones", "categories"]
NESTED = [("organization", "name"), ("organization", "url"), ("contacts", 0, "phones", 0, "number"),
          ("regular_schedules", 0, "byday"), ("regular_schedules", 0, "opens_at"), ("eligibilitys", 0, "minimum_age"),
          ("eligibilitys", 0, "maximum_age"), ("cost_options", 0, "amount"), ("service_areas", 0, "service_area"),
          ("service_taxonomys", 0, "taxonomy", "name"), ("service_at_locations", 0, "location", "latitude"),
          ("service_at_locations", 0, "location", "physical_addresses", 0, "postal_code")]


@st.composite
def hostile_records(draw):
    """A real-shaped record with a few of its fields, top-level or deep, replaced by anything at all."""
    record = json.loads(json.dumps(BASE))
    for _ in range(draw(st.integers(1, 4))):
        if draw(st.booleans()):
            record[draw(st.sampled_from(FIELDS))] = draw(json_values)
        else:
            path = draw(st.sampled_from(NESTED))
            node = record
            try:
                for step in path[:-1]:
                    node = node[step]
                node[path[-1]] = draw(json_values)
            except (KeyError, IndexError, TypeError):
                pass
    if draw(st.integers(0, 9)) == 0:
        return draw(json_values)  # sometimes not a service object at all
    return record


def _texts(service: Service) -> list[str]:
    out = [service.name, service.organization, service.description, service.eligibility, service.hours, service.fees,
           service.source, service.cost, *service.area_names, *service.terms]
    out += [p.number for p in service.phones] + [p.description for p in service.phones]
    out += [s.description for s in service.schedules] + [loc.name for loc in service.locations]
    out += [loc.address for loc in service.locations]
    return [t for t in out if t]


@settings(max_examples=150, deadline=None)
@given(raw=hostile_records())
def test_any_record_is_read_safely_or_rejected_with_its_field(raw):
    try:
        service = service_from_oruk(raw)
    except RecordError as err:
        assert err.field and err.reason and len(err.reason) < 400
        return
    for text in _texts(service):
        assert "<" not in text and ">" not in text, text
        assert not CONTROL.search(text), repr(text)
    for url in (service.url, service.organization_url):
        assert url is None or url.lower().startswith(("http://", "https://"))
    if service.min_age is not None and service.max_age is not None:
        assert 0 <= service.min_age <= service.max_age <= 120
    assert all(s.opens_at < s.closes_at for s in service.schedules)
    assert service_from_oruk(service_to_oruk(service)) == service  # what we store exports and reads back the same


@settings(max_examples=300, deadline=None)
@given(text=hostile_text)
def test_plain_text_never_leaves_markup_or_control_characters(text):
    out = plain_text(text)
    assert "<" not in out and ">" not in out and not CONTROL.search(out)
    assert plain_text(out) == out  # clean text stays as it is
    url = safe_url(text)
    assert url is None or (url.startswith(("http://", "https://")) and "<" not in url and " " not in url)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batch=st.lists(hostile_records(), min_size=1, max_size=8))
def test_a_hostile_batch_imports_the_good_records_and_names_the_rest(tmp_path_factory, batch):
    folder = tmp_path_factory.mktemp("fuzz")
    d = Directory.open(url=f"sqlite:///{folder / 'd.db'}", seed=False)
    try:
        report = d.import_services(batch)
        assert report["imported"] + report["unchanged"] + len(report["rejected"]) <= len(batch)
        assert d.count() == report["imported"]
        for problem in report["rejected"]:
            assert problem["record"].startswith("record ") and problem["field"] and problem["reason"]
        for service in d.services():  # what was stored is what validation accepted, and exports cleanly
            assert all("<" not in t and ">" not in t for t in _texts(service))
        exported = d.export_oruk()["content"]
        again = Directory.open(url=f"sqlite:///{folder / 'again.db'}", seed=False)
        assert again.import_services(exported)["rejected"] == []
        assert again.services() == d.services()
        again.close()
    finally:
        d.close()


def _csv(rows: list[dict]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(rows[0]))
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(cells=st.lists(st.tuples(hostile_text, hostile_text, hostile_text, hostile_text), min_size=1, max_size=5))
def test_a_hostile_hsds_package_is_read_or_refused_cleanly(tmp_path_factory, cells):
    folder = tmp_path_factory.mktemp("hsds")
    (folder / "services.csv").write_text(_csv([
        {"id": sid.strip() or "x", "organization_id": "org", "name": name, "description": description, "url": url}
        for sid, name, description, url in cells
    ]), encoding="utf-8")
    (folder / "organizations.csv").write_text("id,name\norg,Example organisation (test fixture)\n", encoding="utf-8")
    d = Directory.open(url=f"sqlite:///{folder / 'd.db'}", seed=False)
    try:
        try:
            report = d.import_path(folder)
        except BadInput as err:
            assert str(err)
            assert d.count() == 0
            return
        assert d.count() == report["imported"]
        for problem in report["rejected"]:
            assert problem["file"] == "services.csv" and problem["record"].startswith("row ")
        for service in d.services():
            assert all("<" not in t and ">" not in t for t in _texts(service))
    finally:
        d.close()


def test_deeply_nested_json_is_refused_not_a_crash(empty, tmp_path):
    path = tmp_path / "deep.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(BadInput):
        empty.import_path(path)
    report = empty.import_services([{"id": "deep", "name": "x", "organization": {"id": "o", "name": "o"},
                                     "contacts": [{"phones": [[[[[[[]]]]]]]}]}])
    assert report["imported"] == 0 and report["rejected"][0]["field"] == "contacts[0].phones[0]"
