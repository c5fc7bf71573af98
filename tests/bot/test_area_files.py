"""The shipped area files: they load, cite real sources, carry the key numbers, and copy no seed text.

Facts in ``knowledge/areas/*.yml`` are paraphrased from the seed documents in ``shared/seeds`` (which
sits beside the checkout; override with ``$EARLYHELP_SEEDS``). These tests hold each file to that: every
contact's number and address can be found in the seed it cites, and no text field shares a run of
twelve words with any seed.
"""
from __future__ import annotations

import datetime as dt
import os
import re
from pathlib import Path

import pytest
import yaml

from bot.areas import CANONICAL_LEVELS, NATIONAL_SOURCE, Area, load_area_file
from bot.contacts import LONDON, child_at_risk_contacts
from bot.places import normalise, resolve_area

REPO = Path(__file__).resolve().parents[2]
AREAS_DIR = REPO / "knowledge" / "areas"
NATIONAL_FILE = REPO / "knowledge" / "national_services.yml"
SEEDS = Path(os.environ.get("EARLYHELP_SEEDS", REPO.parent / "shared" / "seeds"))
AREA_IDS = ("bath-and-north-east-somerset", "buckinghamshire", "gloucestershire", "north-lincolnshire")
RUN = 12  # words in a row that may not be shared with a seed
ADDRESSES = {"url", "email", "file"}  # must match the seed exactly, so they are not prose to paraphrase
EVERYDAY_ACRONYMS = {"GP", "NHS"}  # no need to spell these out for a family


def area_file(area_id: str) -> Path:
    return AREAS_DIR / f"{area_id}.yml"


@pytest.fixture(scope="module")
def areas() -> dict[str, Area]:
    return {area_id: load_area_file(area_file(area_id)) for area_id in AREA_IDS}


# ---------------------------------------------------------------- the seed text and copy detection


def words(text: str) -> list[str]:
    """Lower-case words, apostrophes dropped, so "child’s" and "child's" compare equal."""
    return re.findall(r"[a-z0-9]+", re.sub(r"['’‘`]", "", text.lower()))


def runs(text: str, n: int = RUN) -> set[tuple[str, ...]]:
    w = words(text)
    return {tuple(w[i : i + n]) for i in range(len(w) - n + 1)}


def seed_files() -> list[Path]:
    assert SEEDS.is_dir(), f"seed documents not found at {SEEDS}; set EARLYHELP_SEEDS"
    files = sorted(SEEDS.glob("*.txt"))
    assert len(files) >= 5, f"expected the five seed documents in {SEEDS}"
    return files


@pytest.fixture(scope="module")
def seed_runs() -> set[tuple[str, ...]]:
    found: set[tuple[str, ...]] = set()
    for path in seed_files():
        found |= runs(path.read_text(encoding="utf-8"))
    return found


def strings(node, where: str = ""):
    """Every string in a parsed YAML document, with where it is (``contacts.2.role``)."""
    if isinstance(node, str):
        yield where, node
    elif isinstance(node, dict):
        for key, value in node.items():
            if key not in ADDRESSES:
                yield from strings(value, f"{where}.{key}" if where else str(key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            yield from strings(value, f"{where}.{i}")


def copied(text: str, seed_runs: set[tuple[str, ...]]) -> list[str]:
    return [" ".join(run) for run in runs(text) if run in seed_runs]


def test_the_copy_check_catches_a_copied_sentence_and_passes_a_paraphrase(seed_runs):
    seed = seed_files()[-1].read_text(encoding="utf-8")
    sentence = " ".join(words(seed)[200:216])  # sixteen words in a row from a seed
    assert copied(sentence.upper(), seed_runs), "a verbatim run (any case) must be caught"
    assert not copied(" ".join(reversed(sentence.split())), seed_runs)
    assert not copied("Phone the council if you are worried about a child, and call 999 in an emergency.", seed_runs)


@pytest.mark.parametrize("path", [*(area_file(a) for a in AREA_IDS), NATIONAL_FILE], ids=lambda p: p.name)
def test_no_text_field_copies_a_seed(path, seed_runs):
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    problems = [f"{where}: '{run}'" for where, text in strings(raw) for run in copied(text, seed_runs)]
    assert not problems, f"{path.name} copies {RUN} or more words from a seed:\n" + "\n".join(problems)


# ---------------------------------------------------------------- loading and sources


def test_every_area_file_is_shipped_and_loads(areas):
    shipped = sorted(p.stem for p in AREAS_DIR.glob("*.yml"))
    assert set(AREA_IDS) <= set(shipped)
    for area_id, area in areas.items():
        assert area.id == area_id


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_every_fact_cites_a_source_of_its_own_file(areas, area_id):
    area = areas[area_id]
    own = {s.id for s in area.sources}
    cited = [area.office_hours.source, area.places.source]
    cited += [lvl.source for lvl in area.levels] + [p.source for p in area.pathways]
    cited += [c.source for c in area.contacts]
    for source in cited:
        assert source in own, f"{area_id}: {source!r} is not one of {sorted(own)}"
    for contact in area.contacts:
        assert contact.source != NATIONAL_SOURCE and contact.source != "places", contact.id
        assert area.source(contact.source).file, f"{contact.id} must cite a seed document"
    assert area.source("places").title.startswith("Towns and postcode districts")


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_seed_sources_name_real_seed_files(areas, area_id):
    seeds = {p.name for p in seed_files()}
    for source in areas[area_id].sources:
        if source.id != "places":
            assert source.file in seeds, f"{area_id}: source {source.id} names {source.file!r}"
            assert source.file.startswith(source.id + "_")


def _digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_every_contact_detail_is_in_the_seed_it_cites(areas, area_id):
    area = areas[area_id]
    for contact in area.contacts:
        seed = (SEEDS / area.source(contact.source).file).read_text(encoding="utf-8")
        for number in re.findall(r"[0-9][0-9 ]{5,}[0-9]", f"{contact.phone or ''} {contact.phone_note or ''}"):
            assert _digits(number) in _digits(seed), f"{contact.id}: {number} is not in seed {contact.source}"
        if contact.email:
            assert contact.email.lower() in seed.lower(), f"{contact.id}: {contact.email}"
        if contact.url:
            bare = re.sub(r"^https?://(www\.)?", "", contact.url).rstrip("/")
            assert bare.lower() in seed.lower(), f"{contact.id}: {contact.url}"


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_last_verified_is_the_first_of_a_month_in_the_document_date(areas, area_id):
    area = areas[area_id]
    for contact in area.contacts:
        assert contact.last_verified.day == 1, contact.id
        assert str(contact.last_verified.year) in area.source(contact.source).date, contact.id


# ---------------------------------------------------------------- the brief's key facts


@pytest.mark.parametrize(
    "area_id, contact_id, phone, kind",
    [
        ("north-lincolnshire", "spoc", "01724 296500", "office"),
        ("north-lincolnshire", "spoc_freephone", "08081 689667", "office"),
        ("north-lincolnshire", "spoc_answerphone", "01724 296555", "out_of_office"),
        ("buckinghamshire", "first_response", "0845 4600 001", "office"),
        ("buckinghamshire", "emergency_duty_team", "0800 999 7677", "out_of_office"),
        ("buckinghamshire", "bfis", "01296 383293", "office"),
        ("gloucestershire", "mash", "01452 426565", "always"),
        ("gloucestershire", "fis", "01452 427362", "office"),
        ("gloucestershire", "early_help_stroud", "01452 328130", "office"),
        ("gloucestershire", "family_group_conferencing", "01242 532353", "office"),
        ("gloucestershire", "sendiass", "01452 389345", "office"),
        ("bath-and-north-east-somerset", "social_care_duty", "01225 396312", "not_stated"),
        ("bath-and-north-east-somerset", "integrated_working_team", "01225 395021", "office"),
    ],
)
def test_key_numbers_and_their_hours(areas, area_id, contact_id, phone, kind):
    contact = areas[area_id].contact(contact_id)
    assert contact.phone == phone and contact.hours.kind == kind


def test_second_numbers_and_option(areas):
    assert areas["gloucestershire"].contact("mash").phone_note == "option 1"
    assert "0800 542 0202" in areas["gloucestershire"].contact("fis").phone_note
    assert "01225 396313" in areas["bath-and-north-east-somerset"].contact("social_care_duty").phone_note
    assert areas["bath-and-north-east-somerset"].contact("early_help").email == "Early_Help@bathnes.gov.uk"


def test_gloucestershire_has_all_six_locality_teams(areas):
    teams = {c.id: c for c in areas["gloucestershire"].contacts if c.id.startswith("early_help_")}
    assert len(teams) == 6
    for team in teams.values():
        assert team.phone.startswith("01452 328") and team.email.endswith("earlyhelp@gloucestershire.gov.uk")


def test_north_lincolnshire_office_hours_are_stated_and_others_assumed(areas):
    office = areas["north-lincolnshire"].office_hours
    assert not office.assumed
    assert office.weekly.thu == ["09:00-17:00"] and office.weekly.fri == ["09:00-16:30"]
    assert not office.weekly.sat and not office.weekly.sun and office.bank_holidays == "closed"
    for area_id in ("buckinghamshire", "gloucestershire", "bath-and-north-east-somerset"):
        other = areas[area_id].office_hours
        assert other.assumed and other.note and other.weekly.fri == ["09:00-17:00"]


@pytest.mark.parametrize(
    "area_id, names",
    [
        ("buckinghamshire", ["Universal", "Additional (Early Help)", "Complex (targeted early help)", "Acute"]),
        ("gloucestershire", ["My Profile", "My Plan", "My Assessment & My Plan+", "Specialist"]),
    ],
)
def test_level_names_are_the_areas_own(areas, area_id, names):
    area = areas[area_id]
    for shared, name in zip(CANONICAL_LEVELS, names):
        assert name in area.level(shared).name


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_plain_words_for_families_explain_every_acronym(areas, area_id):
    for level in areas[area_id].levels:
        for text in (level.meaning, level.response):
            for acronym in set(re.findall(r"\b[A-Z]{2,}\b", text)) - EVERYDAY_ACRONYMS:
                assert f"({acronym})" in text, f"{area_id} level {level.number}: explain {acronym} in '{text}'"
            assert len(text) < 400, f"{area_id} level {level.number}: keep it short"


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_level_4_pathway_always_mentions_999(areas, area_id):
    pathway = areas[area_id].pathway(4)
    assert "999" in pathway.summary and any("999" in step for step in pathway.steps)
    assert pathway.contacts and pathway.contacts[0] == areas[area_id].routing.child_at_risk[0]


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_consent_says_when_not_to_ask_at_level_4(areas, area_id):
    consent = areas[area_id].pathway(4).consent.lower()
    assert "unless" in consent and "risk" in consent


@pytest.mark.parametrize(
    "area_id, level, expected",
    [
        ("buckinghamshire", 3, ["24 hours", "72 hours", "1 week", "1 month", "1, 3 and 6 months"]),
        ("buckinghamshire", 4, ["24 hours", "72 hours"]),
        ("north-lincolnshire", 2, ["3 months"]),
        ("north-lincolnshire", 3, ["20 working days", "3 months"]),
        ("bath-and-north-east-somerset", 3, ["6 to 8 months", "every two weeks"]),
    ],
)
def test_timescales(areas, area_id, level, expected):
    within = " | ".join(t.within for t in areas[area_id].pathway(level).timescales)
    for text in expected:
        assert text in within, f"{area_id} level {level}: {text!r} not in {within!r}"


@pytest.mark.parametrize(
    "area_id, level, form",
    [
        ("buckinghamshire", 3, "MARF"), ("buckinghamshire", 4, "MARF"),
        ("gloucestershire", 2, "My Plan"), ("gloucestershire", 3, "My Assessment & My Plan+"),
        ("gloucestershire", 4, "MARF"), ("bath-and-north-east-somerset", 3, "CAF"),
        ("north-lincolnshire", 2, "Early Help Assessment"),
    ],
)
def test_pathway_forms(areas, area_id, level, form):
    assert form in (areas[area_id].pathway(level).form or "")


# ---------------------------------------------------------------- routing


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_child_at_risk_contacts_can_be_phoned_and_one_always_answers(areas, area_id):
    area = areas[area_id]
    for contact_id in area.routing.child_at_risk:
        assert area.contact(contact_id).phone, f"{contact_id} needs a phone number"
    start = dt.datetime(2026, 12, 21, tzinfo=LONDON)  # a week with Christmas and Boxing Day substitutes
    for hour in range(0, 24 * 9, 1):
        moment = start + dt.timedelta(hours=hour, minutes=45)
        first = child_at_risk_contacts(area, moment)[0]
        assert first.answering_now, (area_id, moment)


def test_first_number_at_key_moments(areas):
    nl = areas["north-lincolnshire"]
    friday = dt.datetime(2026, 11, 27, tzinfo=LONDON)
    assert child_at_risk_contacts(nl, friday.replace(hour=16, minute=15))[0].phone == "01724 296500"
    assert child_at_risk_contacts(nl, friday.replace(hour=16, minute=45))[0].phone == "01724 296555"
    bucks = areas["buckinghamshire"]
    assert child_at_risk_contacts(bucks, friday.replace(hour=11))[0].phone == "0845 4600 001"
    assert child_at_risk_contacts(bucks, friday.replace(hour=23))[0].phone == "0800 999 7677"
    assert child_at_risk_contacts(areas["gloucestershire"], friday.replace(hour=3))[0].phone == "01452 426565"


# ---------------------------------------------------------------- places


def test_every_town_and_district_is_claimed_by_one_area_only(areas):
    claimed: dict[str, str] = {}
    for area in areas.values():
        names = [*area.places.towns, *area.places.postcode_districts, *area.aliases, area.name, area.council]
        for name in {normalise(n) for n in names}:
            assert claimed.setdefault(name, area.id) == area.id, f"{name!r}: {claimed[name]} and {area.id}"


@pytest.mark.parametrize("area_id", AREA_IDS)
def test_each_town_district_and_alias_resolves_to_its_area(areas, area_id):
    area = areas[area_id]
    assert len(area.places.towns) >= 15
    for name in [*area.places.towns, *area.aliases]:
        match = resolve_area(name)
        assert match is not None and match.area_id == area_id, name
    for district in area.places.postcode_districts:
        match = resolve_area(f"{district} 1AA")
        assert match is not None and match.area_id == area_id, district


@pytest.mark.parametrize(
    "area_id, towns",
    [
        ("buckinghamshire", ["High Wycombe", "Aylesbury", "Amersham", "Chesham", "Beaconsfield", "Marlow",
                             "Buckingham", "Princes Risborough"]),
        ("gloucestershire", ["Gloucester", "Cheltenham", "Stroud", "Tewkesbury", "Cirencester", "Coleford",
                             "Cinderford", "Lydney", "Stonehouse", "Dursley", "Nailsworth", "Bourton-on-the-Water",
                             "Moreton-in-Marsh", "Tetbury", "Winchcombe", "Newent", "Bishop's Cleeve",
                             "Quedgeley", "Brockworth"]),
        ("bath-and-north-east-somerset", ["Bath", "Keynsham", "Midsomer Norton", "Radstock"]),
        ("north-lincolnshire", ["Scunthorpe", "Brigg", "Barton-upon-Humber"]),
    ],
)
def test_towns_people_name(areas, area_id, towns):
    for town in towns:
        assert town in areas[area_id].places.towns


@pytest.mark.parametrize(
    "area_id, districts",
    [
        ("gloucestershire", ["GL1", "GL5", "GL20", "GL50", "GL56"]),
        ("north-lincolnshire", ["DN15", "DN16", "DN17", "DN18", "DN19", "DN20"]),
        ("bath-and-north-east-somerset", ["BA1", "BA2", "BS39"]),
        ("buckinghamshire", ["HP11", "HP19", "HP20", "HP21", "MK18"]),
    ],
)
def test_postcode_districts(areas, area_id, districts):
    for district in districts:
        assert district in areas[area_id].places.postcode_districts


def test_places_that_belong_to_other_councils_are_not_claimed(areas):
    towns = {normalise(t) for a in areas.values() for t in a.places.towns}
    districts = {d for a in areas.values() for d in a.places.postcode_districts}
    for town in ("Milton Keynes", "Grimsby", "Cleethorpes", "Immingham", "Bristol", "Swindon", "Slough", "Tring"):
        assert normalise(town) not in towns, town
    for district in [f"MK{n}" for n in range(1, 18)] + ["DN31", "DN32", "DN35", "DN40", "DN41", "BS1", "SN1", "SL1"]:
        assert district not in districts, district
