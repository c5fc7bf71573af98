"""Recognising the area from a town, a council's nickname or a postcode, and reading ages and speakers."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.details import AGE_UNKNOWN, UNBORN, read_age, read_speaker
from bot.places import elsewhere, find_places, outward_code, resolve_area


@pytest.mark.parametrize(
    "text, area",
    [
        ("we live in Stroud", "gloucestershire"),
        ("GL5 2AB", "gloucestershire"),
        ("gl50", "gloucestershire"),
        ("glocestershire", "gloucestershire"),
        ("Scunthorpe", "north-lincolnshire"),
        ("dn15", "north-lincolnshire"),
        ("north lincs", "north-lincolnshire"),
        ("bucks", "buckinghamshire"),
        ("High Wycombe", "buckinghamshire"),
        ("aylesbury", "buckinghamshire"),
        ("B&NES", "bath-and-north-east-somerset"),
        ("Bath and North East Somerset", "bath-and-north-east-somerset"),
        ("keynsham", "bath-and-north-east-somerset"),
    ],
)
def test_resolve_area(text, area):
    match = resolve_area(text)
    assert match is not None and match.area_id == area, text


@pytest.mark.parametrize("text", ["London", "Milton Keynes", "Grimsby", "", "   ", "the moon", "Stroud or Scunthorpe"])
def test_no_single_area(text):
    assert resolve_area(text) is None


@pytest.mark.parametrize(
    "text, council",
    [("South Gloucestershire", "South Gloucestershire"), ("we're in south glos", "South Gloucestershire"),
     ("NE Lincs", "North East Lincolnshire"), ("north east lincolnshire", "North East Lincolnshire"),
     ("Stroud Green", "Haringey")],
)
def test_neighbours_with_our_names_are_not_ours(text, council):
    """Someone in South Gloucestershire must not be given Gloucestershire's numbers."""
    assert find_places(text) == []
    assert council in elsewhere(text)


def test_our_places_are_not_elsewhere():
    assert elsewhere("Stroud") is None and elsewhere("Gloucestershire") is None
    assert resolve_area("Stroud near South Glos").area_id == "gloucestershire"


def test_two_areas_are_both_found():
    assert {m.area_id for m in find_places("Stroud or Scunthorpe")} == {"gloucestershire", "north-lincolnshire"}


def test_outward_code_keeps_only_the_district():
    assert outward_code("we're at gl5 2ab near the shop") == "GL5"
    assert outward_code("no postcode here") is None


@given(st.text(max_size=300))
def test_place_reading_never_fails(text):
    find_places(text)
    read_age(text)
    read_speaker(text)


@pytest.mark.parametrize(
    "text, age",
    [("he's 7", 7), ("she is fourteen", 14), ("2", 2), ("6 months", 0), ("toddler", 2), ("I'm pregnant", UNBORN),
     ("15 years old", 15), ("not sure", AGE_UNKNOWN), ("he is 7 and she is 9", None), ("hello", None), ("year 9", 14),
     ("thirty", 30), ("twenty two", 22), ("forty-five", 45)],
)
def test_read_age(text, age):
    assert read_age(text) == age


@pytest.mark.parametrize(
    "text, intent, speaker",
    [("im his nan", None, "parent"), ("I am a teacher", None, "professional"), ("I'm 15", None, "young_person"),
     ("/identify_parent", "identify_parent", "parent"), ("anything", "ask_where_to_refer", "professional"),
     ("banana", None, None)],
)
def test_read_speaker(text, intent, speaker):
    assert read_speaker(text, intent) == speaker
