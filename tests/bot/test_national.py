"""The national helplines table: it loads, holds the brief's numbers, and a broken file names the field."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from bot.national import NationalFileError, load_national_file, load_national_services

FILE = Path(__file__).resolve().parents[2] / "knowledge" / "national_services.yml"
IDS = {
    "nhs_111", "childline", "nspcc", "domestic_abuse_helpline", "mens_advice_line", "samaritans", "shout", "papyrus",
    "missing_people", "modern_slavery_helpline", "karma_nirvana", "frank", "family_lives", "youngminds_parents",
    "gingerbread", "contact", "citizens_advice", "emergency_999",
}
ROUND_THE_CLOCK = {"childline", "domestic_abuse_helpline", "samaritans", "shout"}  # 24/7 in the brief


def test_loads_every_service_with_the_agreed_ids():
    services = load_national_services()
    assert set(services) == IDS
    assert load_national_services() is services  # cached


def test_every_service_is_marked_national_and_unverified():
    for service in load_national_services().values():
        assert service.source == "national, unverified"
        assert service.last_verified == dt.date(2026, 11, 24)
        assert service.for_whom.strip() and service.hours.strip()


@pytest.mark.parametrize(
    "service_id, phone",
    [
        ("emergency_999", "999"), ("nhs_111", "111"), ("childline", "0800 1111"), ("nspcc", "0808 800 5000"),
        ("domestic_abuse_helpline", "0808 2000 247"), ("mens_advice_line", "0808 8010 327"),
        ("samaritans", "116 123"), ("papyrus", "0800 068 4141"), ("missing_people", "116 000"),
        ("modern_slavery_helpline", "08000 121 700"), ("karma_nirvana", "0800 5999 247"), ("frank", "0300 123 6600"),
        ("family_lives", "0808 800 2222"), ("youngminds_parents", "0808 802 5544"), ("gingerbread", "0808 802 0925"),
        ("contact", "0808 808 3555"), ("citizens_advice", "0800 144 8848"),
    ],
)
def test_numbers_from_the_brief(service_id, phone):
    assert load_national_services()[service_id].phone == phone


def test_text_email_and_web_details():
    services = load_national_services()
    assert services["shout"].phone is None and services["shout"].text == "text SHOUT to 85258"
    assert services["nspcc"].email == "help@nspcc.org.uk"
    assert services["childline"].url == "childline.org.uk"


def test_24_hours_only_where_the_brief_says_so():
    for service_id, service in load_national_services().items():
        says_24_7 = "24 hours" in service.hours
        assert says_24_7 == (service_id in ROUND_THE_CLOCK), (service_id, service.hours)
    assert "any time" in load_national_services()["nhs_111"].hours


def test_how_to_reach_in_plain_words():
    services = load_national_services()
    assert services["childline"].how_to_reach() == "call 0800 1111 or go to childline.org.uk"
    assert services["shout"].how_to_reach() == "text SHOUT to 85258"
    assert services["nspcc"].how_to_reach() == "call 0808 800 5000 or email help@nspcc.org.uk"
    assert services["samaritans"].how_to_reach() == "call 116 123"


def broken(tmp_path: Path, change) -> Path:
    raw = yaml.safe_load(FILE.read_text(encoding="utf-8"))
    change(raw)
    path = tmp_path / "national_services.yml"
    path.write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")
    return path


def service(raw: dict, service_id: str) -> dict:
    return next(s for s in raw["services"] if s["id"] == service_id)


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda raw: service(raw, "samaritans").update(phone="ring us"), "(samaritans).phone"),
        (lambda raw: service(raw, "frank").pop("source"), "(frank).source"),
        (lambda raw: service(raw, "frank").update(source="003"), "(frank).source"),
        (lambda raw: service(raw, "nspcc").pop("hours"), "(nspcc).hours"),
        (lambda raw: service(raw, "contact").update(colour="blue"), "(contact).colour"),
        (lambda raw: service(raw, "gingerbread").update(last_verified="last week"), "(gingerbread).last_verified"),
        (lambda raw: service(raw, "shout").pop("text"), "(shout)"),
        (lambda raw: raw["services"].append(dict(service(raw, "nhs_111"))), "repeated: nhs_111"),
        (lambda raw: raw.update(services=[]), "services"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path, change, field):
    path = broken(tmp_path, change)
    with pytest.raises(NationalFileError) as err:
        load_national_file(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_not_yaml_or_not_a_mapping_or_missing(tmp_path):
    bad = tmp_path / "bad.yml"
    bad.write_text("services: [unclosed")
    with pytest.raises(NationalFileError, match="not valid YAML"):
        load_national_file(bad)
    bad.write_text("- just a list")
    with pytest.raises(NationalFileError, match="top level"):
        load_national_file(bad)
    with pytest.raises(NationalFileError, match="cannot be read"):
        load_national_file(tmp_path / "missing.yml")
