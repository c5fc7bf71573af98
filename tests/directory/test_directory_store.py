"""The store: migrations, seeding from knowledge/directory, and the content's sourcing rules."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from sqlalchemy import inspect, select, text

from bot.paths import knowledge_dir
from directory import Directory
from directory import schema as t
from directory.vocab import AUDIENCE_VOCABULARY, AUDIENCES, CATEGORIES, NATIONAL

SEEDS = Path(__file__).resolve().parents[3] / "shared" / "seeds"  # shared/ sits beside the checkout
KNOWLEDGE = knowledge_dir() / "directory"
SEED_FILE = re.compile(r"^(\d{3}_[0-9a-f]{16}\.txt)")
ANY_SEED_FILE = re.compile(r"\d{3}_[0-9a-f]{16}\.txt")


def knowledge_services() -> list[dict]:
    services = []
    for file in sorted(KNOWLEDGE.glob("*.json")):
        services += json.loads(file.read_text())["content"]
    return services


def test_migrations_are_recorded_and_idempotent(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    first = Directory.open(url=url, seed=False)
    with first.engine.connect() as conn:
        versions = list(conn.execute(select(t.migration.c.version).order_by(t.migration.c.version)).scalars())
        tables = set(inspect(conn).get_table_names())
    assert versions == [v for v, _, _ in t.MIGRATIONS]
    assert {"organization", "service", "location", "service_at_location", "contact", "phone", "schedule",
            "eligibility", "cost_option", "service_area", "taxonomy_term", "service_taxonomy", "service_fts"} <= tables
    again = Directory.open(url=url, seed=False)  # a second open applies nothing new and fails on nothing
    with again.engine.connect() as conn:
        assert conn.execute(select(t.migration.c.version)).scalars().all() == versions


def test_a_store_newer_than_the_code_is_refused(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    d = Directory.open(url=url, seed=False)
    with d.engine.begin() as conn:
        conn.execute(text("INSERT INTO directory_migration (version, name, applied_at) VALUES (999, 'future', '2030-01-01')"))
    with pytest.raises(t.StoreTooNew):
        Directory.open(url=url, seed=False)


def test_seeding_loads_every_knowledge_service_once(tmp_path):
    url = f"sqlite:///{tmp_path / 'd.db'}"
    d = Directory.open(url=url)
    expected = {s["id"] for s in knowledge_services()}
    assert {s.id for s in d.services()} == expected
    assert d.seed() is None  # unchanged files: nothing to do on the next open
    assert Directory.open(url=url).count() == len(expected)


def test_seeding_again_removes_services_dropped_from_the_knowledge(tmp_path):
    folder = tmp_path / "knowledge"
    folder.mkdir()
    page = json.loads((KNOWLEDGE / "north-lincolnshire.json").read_text())
    (folder / "a.json").write_text(json.dumps(page))
    d = Directory.open(url=f"sqlite:///{tmp_path / 'd.db'}", seed=False)
    d.seed(folder)
    assert d.count() == len(page["content"])
    page["content"] = page["content"][:1]
    (folder / "a.json").write_text(json.dumps(page))
    report = d.seed(folder)
    assert report["removed"] == 2 and d.count() == 1


def test_default_open_uses_a_file_under_earlyhelp_home(test_home):
    d = Directory.open(seed=False)
    assert d.url == f"sqlite:///{test_home / 'directory.db'}"


def test_every_knowledge_service_is_sourced_dated_and_real():
    services = knowledge_services()
    assert len(services) >= 55
    for s in services:
        assert s["synthetic"] is False, s["id"]
        assert s["description"] and len(s["description"]) > 40, s["id"]
        cats = [x["taxonomy"]["name"] for x in s["service_taxonomys"] if x["taxonomy"].get("vocabulary") != AUDIENCE_VOCABULARY]
        assert cats and set(cats) <= set(CATEGORIES), s["id"]
        audiences = [x["taxonomy"]["name"] for x in s["service_taxonomys"] if x["taxonomy"].get("vocabulary") == AUDIENCE_VOCABULARY]
        assert set(audiences) <= set(AUDIENCES), s["id"]
        if s["source"] == "national, unverified":
            assert s["service_areas"][0]["service_area"] == NATIONAL and s["assured_date"] is None, s["id"]
            continue
        match = SEED_FILE.match(s["source"])
        assert match, f"{s['id']}: source must start with a seed file name"
        assert s["assured_date"], f"{s['id']}: seed facts carry the document date"


@pytest.mark.skipif(not SEEDS.is_dir(), reason="the seed documents are not beside the repository")
def test_every_phone_and_email_of_a_seed_fact_is_in_a_seed_document_it_cites():
    for s in knowledge_services():
        cited = ANY_SEED_FILE.findall(s["source"] or "")
        if not cited:
            continue
        seeds = " ".join((SEEDS / name).read_text() for name in cited)
        digits = re.sub(r"\D", "", seeds)
        phones = [p["number"] for c in s["contacts"] for p in c["phones"]]
        for number in phones:
            assert re.sub(r"\D", "", number) in digits, f"{s['id']}: {number} is not in {cited}"
        if s["email"]:
            assert s["email"].lower() in seeds.lower(), f"{s['id']}: {s['email']} is not in {cited}"


def test_the_four_areas_and_national_services_are_all_present(seeded):
    by_area: dict[str, int] = {}
    for s in seeded.services():
        for a in s.areas:
            by_area[a] = by_area.get(a, 0) + 1
    assert set(by_area) == {"buckinghamshire", "bath-and-north-east-somerset", "gloucestershire", "north-lincolnshire", NATIONAL}
    assert by_area[NATIONAL] >= 17


def test_get_returns_a_full_result_or_none(seeded):
    spoc = seeded.get("nlincs-spoc")
    assert spoc["phone"] == "01724 296500"
    assert spoc["hours"].startswith("Mon-Thu 09:00-17:00; Fri 09:00-16:30")
    assert spoc["area"] == ["north-lincolnshire"] and spoc["last_verified"] == "2021-08-01"
    assert spoc["source"].startswith("004_886a6b3e813bf8cd.txt")
    assert seeded.get("no-such-service") is None
    assert seeded.get(None) is None


def test_processes_opening_a_new_store_at_once_all_succeed(tmp_path):
    import subprocess
    import sys

    code = f"from directory import Directory; print(Directory.open(url='sqlite:///{tmp_path / 'x.db'}').count())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(3)]
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [err[-500:] for _, err in outputs]
    assert len({out.strip() for out, _ in outputs}) == 1 and int(outputs[0][0]) >= 55
