"""The area loader: valid files load, broken ones fail naming the file and the field."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from bot.areas import AreaFileError, get_area, load_area_file, load_areas, load_areas_from
from bot.errors import UnknownArea

FIXTURE = Path(__file__).resolve().parents[1] / "data" / "areas_fixture"


def broken(tmp_path: Path, change) -> Path:
    """A copy of the fixture area with one change applied."""
    raw = yaml.safe_load((FIXTURE / "testshire.yml").read_text())
    change(raw)
    path = tmp_path / "testshire.yml"
    path.write_text(yaml.safe_dump(raw))
    return path


def test_fixture_area_loads_and_maps_levels():
    area = load_area_file(FIXTURE / "testshire.yml")
    assert area.level(2).name == area.level(3).name == "Extra help"
    assert area.level(4).number == 3
    assert area.pathway(3).timescales[0].within == "24 hours"


def test_a_new_area_is_one_more_file(tmp_path):
    for real in (Path(__file__).resolve().parents[2] / "knowledge" / "areas").glob("*.yml"):
        shutil.copy(real, tmp_path)
    shutil.copy(FIXTURE / "testshire.yml", tmp_path)
    areas = load_areas_from(tmp_path)
    assert "testshire" in areas and len(areas) == len(load_areas()) + 1


@pytest.mark.parametrize(
    "change, field",
    [
        (lambda raw: raw["contacts"][0].pop("source"), "contacts.0.source"),
        (lambda raw: raw["contacts"][1].update(phone="call us"), "contacts.1.phone"),
        (lambda raw: raw["contacts"][0].update(source="nowhere"), "source 'nowhere'"),
        (lambda raw: raw["routing"].update(child_at_risk=["ghost"]), "routing.child_at_risk"),
        (lambda raw: raw["levels"].pop(), "each shared level 1-4"),
        (lambda raw: raw["pathways"].pop(), "pathways"),
        (lambda raw: raw["office_hours"]["weekly"].update(mon=["17:00-09:00"]), "office_hours.weekly.mon"),
        (lambda raw: raw["places"].update(postcode_districts=["gl5"]), "places.postcode_districts"),
        (lambda raw: raw["contacts"][2]["hours"].pop("weekly"), "contacts.2.hours"),
        (lambda raw: raw.update(colour="blue"), "colour"),
    ],
)
def test_broken_file_names_file_and_field(tmp_path, change, field):
    path = broken(tmp_path, change)
    with pytest.raises(AreaFileError) as err:
        load_area_file(path)
    assert str(path) in str(err.value) and field in str(err.value)


def test_id_must_match_file_name(tmp_path):
    path = tmp_path / "elsewhere.yml"
    shutil.copy(FIXTURE / "testshire.yml", path)
    with pytest.raises(AreaFileError, match="must match the file name"):
        load_area_file(path)


def test_not_yaml_is_a_clear_error(tmp_path):
    path = tmp_path / "bad.yml"
    path.write_text("id: [unclosed")
    with pytest.raises(AreaFileError, match="not valid YAML"):
        load_area_file(path)


def test_unknown_area_names_the_known_ones():
    with pytest.raises(UnknownArea) as err:
        get_area("atlantis")
    for known in load_areas():
        assert known in str(err.value)


def test_every_shipped_contact_cites_a_source_in_its_file():
    for area in load_areas().values():
        cited = {s.id for s in area.sources} | {"national, unverified"}
        for contact in area.contacts:
            assert contact.source in cited and contact.last_verified
