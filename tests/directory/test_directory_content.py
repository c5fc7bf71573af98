"""The default directory's content: every service and team the source documents name for the four areas,
and the national services of the project brief, each sourced, dated and real (never synthetic).

The lists below say which seed document names each service; the tests check the list against the
documents themselves (so a name cannot drift into one no document gives) and then check the seeded
directory (the real store, loaded from knowledge/directory through ``Directory.seed``).
"""
from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest

from bot.paths import knowledge_dir
from directory.vocab import NATIONAL

SHARED = Path(__file__).resolve().parents[3] / "shared"  # shared/ sits beside the checkout
SEEDS = SHARED / "seeds"
BRIEF = SHARED / "early-help-brief.md"
KNOWLEDGE = knowledge_dir() / "directory"
needs_sources = pytest.mark.skipif(not SEEDS.is_dir() or not BRIEF.is_file(), reason="the source documents are not beside the repository")

S000 = "000_eeb414605cb3b91b.txt"  # Buckinghamshire Early Help Strategy 2015-17
S001 = "001_6c8180054cf18ac9.txt"  # Buckinghamshire Early Help Strategy 2019-20
S002 = "002_c2ce0fdf7813c71d.txt"  # Bath and North East Somerset Early Help Toolkit, c. 2016
S003 = "003_aa72d77c532b9f3c.txt"  # Gloucestershire Early Help Practice Guidance, March 2020
S004 = "004_886a6b3e813bf8cd.txt"  # North Lincolnshire Children's MARS Early Help, August 2021
# last_verified is the document's date (knowledge/directory/README.md)
DOCUMENT_DATE = {S000: dt.date(2015, 1, 1), S001: dt.date(2020, 4, 30), S002: dt.date(2016, 1, 1),
                 S003: dt.date(2020, 3, 1), S004: dt.date(2021, 8, 1)}
SEED_NAME = re.compile(r"\d{3}_[0-9a-f]{16}\.txt")

BUCKS, BANES, GLOS, NLINCS = "buckinghamshire", "bath-and-north-east-somerset", "gloucestershire", "north-lincolnshire"

# (area, service id, the seed that names it, how the seed names it)
NAMED = [
    (BUCKS, "bucks-family-information-service", S000, "Buckinghamshire Family Information Service"),
    (BUCKS, "bucks-first-response", S000, "First Response"),
    (BUCKS, "bucks-emergency-duty-team", S000, "Emergency Duty Team"),
    (BUCKS, "bucks-mash", S000, "Multi Agency Safeguarding Hub (MASH)"),
    (BUCKS, "bucks-early-help-panels", S000, "Early Help Panel"),
    (BUCKS, "bucks-family-resilience-service", S000, "Family Resilience Service"),
    (BUCKS, "bucks-early-help-training", S000, "Graded Care Profile training"),
    (BUCKS, "bucks-family-support-service", S001, "Family Support Service"),
    (BUCKS, "bucks-family-centres", S001, "family centres"),
    (BUCKS, "bucks-young-carers", S001, "young carers"),
    (BUCKS, "bucks-youth-offending-service", S001, "Youth Offending Service"),
    (BUCKS, "bucks-parent-carers-forum", S001, "Parent Carers Forum"),
    (BUCKS, "bucks-thresholds-and-early-help-toolkit", S001, "Early Help Toolkit"),
    (NATIONAL, "national-relate", S000, "Relate"),
    (BANES, "banes-early-help", S002, "Early_Help@bathnes.gov.uk"),
    (BANES, "banes-early-help-app", S002, "B&NES Early Help"),
    (BANES, "banes-integrated-working-team", S002, "Integrated Working Team"),
    (BANES, "banes-social-care-duty-team", S002, "Social Care Duty team"),
    (BANES, "banes-early-help-allocation-panel", S002, "Early Help Allocation Panel"),
    (BANES, "banes-mash", S002, "Multi-agency Safeguarding Hub (MASH)"),
    (BANES, "banes-childrens-workforce-training", S002, "Children's Workforce Training"),
    (BANES, "banes-thresholds-and-procedures", S002, "Thresholds for Assessment"),
    (GLOS, "glos-family-information-service", S003, "Family Information Service (FIS)"),
    (GLOS, "glos-families-directory", S003, "GlosFamilies Directory"),
    (GLOS, "glos-send-local-offer", S003, "Local Offer"),
    (GLOS, "glos-early-help-cheltenham", S003, "Cheltenham 01452 328160"),
    (GLOS, "glos-early-help-cotswolds", S003, "Cotswolds 01452 328101"),
    (GLOS, "glos-early-help-forest-of-dean", S003, "Forest of Dean 01452 328048"),
    (GLOS, "glos-early-help-gloucester", S003, "Gloucester 01452 328076"),
    (GLOS, "glos-early-help-stroud", S003, "Stroud 01452 328130"),
    (GLOS, "glos-early-help-tewkesbury", S003, "Tewkesbury 01452 328251"),
    (GLOS, "glos-family-group-conferencing", S003, "Family Group Conferencing"),
    (GLOS, "glos-triple-p", S003, "Triple P Parenting"),
    (GLOS, "glos-sendiass", S003, "SENDIASS"),
    (GLOS, "glos-early-years-service", S003, "The Early Years Service"),
    (GLOS, "glos-barnardos-children-and-family-centres", S003, "Barnardo's"),
    (GLOS, "glos-gardeners-lane-oakwood-family-centres", S003, "Gardeners Lane and Oakwood Federation"),
    (GLOS, "glos-mash", S003, "Gloucestershire Multi-Agency Safeguarding Hub"),
    (GLOS, "glos-youth-support-team", S003, "Youth Support Team"),
    (GLOS, "glos-education-inclusion-service", S003, "Education Inclusion Service"),
    (GLOS, "glos-early-years-sen", S003, "Early Years SEN"),
    (GLOS, "glos-disabled-children-team", S003, "Disabled Children and Young People's Service"),
    (GLOS, "glos-send-team", S003, "SEND Team"),
    (GLOS, "glos-early-help-training", S003, "Graduated Pathway of Early Help & Support"),
    (NATIONAL, "national-emergency-999", S003, "call 999"),
    (NLINCS, "nlincs-spoc", S004, "Children's Services Single Point of Contact"),
    (NLINCS, "nlincs-early-help-assessment", S004, "Early Help Assessment"),
    (NLINCS, "nlincs-childrens-mars-early-help-forms", S004, "Early Help Assessment Form"),
]

# ages a document states: (service id, seed, the words that state them, minimum, maximum)
STATED_AGES = [
    ("glos-early-years-service", S003, "children aged 0-5 years", 0, 5),
    ("glos-send-local-offer", S003, "children and young people aged 0-25", 0, 25),
    ("glos-send-team", S003, "everyone aged 0 to 25 with SEN", 0, 25),
    ("glos-barnardos-children-and-family-centres", S003, "families where there are children 0-11", 0, 11),
    ("glos-gardeners-lane-oakwood-family-centres", S003, "families where there are children 0-11", 0, 11),
]

# phrases that are the documents' own names or terms of art, not sentences: left out of the copy check
TERMS_OF_ART = (
    "special educational needs and disability information advice and support service",
    "special educational needs and disabilities",
    "children and young people",
)


def _flat(text: str) -> str:
    return " ".join(text.replace("\u2019", "'").replace("\u2018", "'").split()).lower()


def _words(text: str) -> list[str]:
    text = _flat(text).replace("'", "")
    for term in TERMS_OF_ART:
        text = text.replace(term, " | ")
    return re.findall(r"[a-z0-9|]+", text)


def _seed(name: str) -> str:
    return (SEEDS / name).read_text(encoding="utf-8")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


def _raw_records() -> list[dict]:
    records = []
    for file in sorted(KNOWLEDGE.glob("*.json")):
        records += json.loads(file.read_text(encoding="utf-8"))["content"]
    return records


def _brief_table(heading: str) -> list[list[str]]:
    """The rows (cells) of the first table under a heading of the brief."""
    text = BRIEF.read_text(encoding="utf-8")
    section = text[text.index(heading):]
    rows = []
    for line in section.splitlines()[1:]:
        if line.startswith("#"):
            break
        if line.startswith("|") and not set(line) <= set("|- "):
            rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows[1:]  # without the header row


@needs_sources
@pytest.mark.parametrize("area, service_id, seed, named", NAMED, ids=[n[1] for n in NAMED])
def test_every_service_a_document_names_is_in_the_default_directory(seeded, area, service_id, seed, named):
    assert _flat(named) in _flat(_seed(seed)), f"{seed} does not name {named!r}: the list is wrong"
    service = seeded.get(service_id)
    assert service is not None, f"{service_id} ({named}, {seed}) is missing from the default directory"
    if area == NATIONAL:
        assert service["area"] == NATIONAL
    else:
        assert service["area"] == [area]
    assert seed in service["source"], f"{service_id} does not cite {seed}"


def test_the_named_list_covers_every_area_and_the_directory_holds_nothing_unnamed(seeded):
    """Each local record is in the list above (so an added record needs a document naming it)."""
    named = {n[1] for n in NAMED}
    assert {n[0] for n in NAMED} >= {BUCKS, BANES, GLOS, NLINCS}
    local = {s.id for s in seeded.services() if not s.national}
    assert local <= named, f"local records no document in NAMED names: {sorted(local - named)}"


@needs_sources
def test_every_contact_the_brief_lists_by_area_is_on_a_record_of_that_area(seeded):
    area_of = {"Buckinghamshire": BUCKS, "B&NES": BANES, "Gloucestershire": GLOS, "North Lincolnshire": NLINCS,
               "everywhere": NATIONAL}
    rows = _brief_table("## Who to call, by area")
    assert len(rows) >= 18
    services = seeded.services()
    for area_name, what, contact, _when, seed in rows:
        area = area_of[area_name]
        contact = re.sub(r"`[^`]*`", "", contact)  # a pattern such as `<locality>earlyhelp@...`, not an address
        here = [s for s in services if area in s.areas]
        numbers = {_digits(p.number) for s in here for p in s.phones}
        emails = {(s.email or "").lower() for s in here}
        for number in re.findall(r"\b0\d{3,4} ?\d{3,4} ?\d{3,4}\b|\b999\b", contact):
            assert _digits(number) in numbers, f"{what}: {number} ({seed}) is on no {area} record"
        for email in re.findall(r"[\w.]+@[\w.]+\w", contact):
            assert email.lower() in emails, f"{what}: {email} ({seed}) is on no {area} record"


@needs_sources
def test_every_national_service_of_the_brief_is_present_unverified_and_dated_as_such(seeded):
    rows = _brief_table("## National services every area can signpost to")
    assert len(rows) == 17
    national = [s for s in seeded.services() if s.national]
    by_digits = {_digits(p.number): s for s in national for p in s.phones}
    for name, _for, contact in rows:
        number = _digits(contact.split(",")[0])
        service = by_digits.get(number)
        assert service is not None, f"{name} ({contact}) is missing"
        assert service.source == "national, unverified" and service.last_verified is None, name
        assert service.eligibility, f"{name}: who it is for is not stated"
    # the lines the brief calls 24/7 are open at any hour, every day
    for service_id in ("national-childline", "national-domestic-abuse-helpline", "national-samaritans", "national-shout"):
        assert seeded.get(service_id)["hours"].startswith("24 hours a day, every day"), service_id


def test_every_record_has_a_source_and_last_verified_by_the_convention(seeded):
    services = seeded.services()
    assert len(services) >= 65
    for s in services:
        assert s.source and s.source.strip(), s.id
        cited = SEED_NAME.findall(s.source)
        if cited:
            assert s.source.startswith(cited[0]), s.id
            assert s.last_verified == DOCUMENT_DATE[cited[0]], f"{s.id}: last_verified {s.last_verified} is not the date of {cited[0]}"
        else:
            # only the brief's national services come without a seed; they are marked unverified, never dated
            assert s.national and s.source == "national, unverified" and s.last_verified is None, s.id
    for r in seeded.search("worried about a child", k=50):
        assert r["last_verified"] or "unverified" in r["flags"], r["id"]


def test_no_record_of_the_default_directory_is_synthetic(seeded):
    raw = _raw_records()
    assert raw and all(r["synthetic"] is False for r in raw)
    services = seeded.services()
    assert len(services) == len(raw) and not any(s.synthetic for s in services)
    assert not any(r["synthetic"] for r in seeded.search("family support", k=50))


def test_every_record_says_who_it_is_for(seeded):
    for s in seeded.services():
        assert s.eligibility or s.min_age is not None or s.max_age is not None, f"{s.id}: who it is for is not stated"


@needs_sources
@pytest.mark.parametrize("service_id, seed, words, low, high", STATED_AGES, ids=[a[0] for a in STATED_AGES])
def test_ages_a_document_states_are_on_the_record(seeded, service_id, seed, words, low, high):
    assert _flat(words) in _flat(_seed(seed))
    service = seeded.get(service_id)
    assert service["ages"] == [low, high] or tuple(service["ages"]) == (low, high)


def test_childline_is_for_under_19s_who_contact_it_themselves(seeded):
    childline = next(s for s in seeded.services() if s.id == "national-childline")
    assert childline.max_age == 18 and childline.min_age is None
    assert "under 19" in childline.eligibility and "themselves" in childline.eligibility
    query = dict(query="someone to talk to about my worries", k=50)
    assert "national-childline" in [r["id"] for r in seeded.search(**query, age=18)]
    assert "national-childline" not in [r["id"] for r in seeded.search(**query, age=19)]


def test_only_services_a_source_states_hours_for_have_structured_hours(seeded):
    structured = {s.id for s in seeded.services() if s.schedules}
    assert structured <= {"nlincs-spoc", "nlincs-early-help-assessment", "nlincs-childrens-mars-early-help-forms",
                          "national-emergency-999", "national-nhs-111", "national-childline", "national-domestic-abuse-helpline",
                          "national-samaritans", "national-shout", "national-papyrus-hopeline247"}
    assert seeded.get("nlincs-spoc")["hours"].startswith("Mon-Thu 09:00-17:00; Fri 09:00-16:30")


@needs_sources
def test_descriptions_are_paraphrased_not_copied_from_the_documents():
    seeds = " ".join(_words(" ".join(_seed(name) for name in DOCUMENT_DATE)))
    run = 10  # words in a row shared with a document, names and terms of art aside
    for r in _raw_records():
        texts = [r["description"]] + [e.get("eligibility") or "" for e in r["eligibilitys"]]
        for text in texts:
            words = _words(text)
            for i in range(len(words) - run + 1):
                shingle = " ".join(words[i:i + run])
                assert "|" in shingle or f" {shingle} " not in f" {seeds} ", f"{r['id']} copies {shingle!r}"
