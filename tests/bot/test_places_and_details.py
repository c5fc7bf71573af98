"""Recognising the area from a town, a council's nickname or a postcode, and reading ages and speakers."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.details import AGE_UNKNOWN, UNBORN, read_age, read_speaker, read_stated_age, read_stated_speaker
from bot.places import elsewhere, find_places, outward_code, place_in_sentence, resolve_area


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


# --- details said inside a longer first message ------------------------------------------------------------

@pytest.mark.parametrize(
    "text, area",
    [
        ("Hi I'm a GP in Bath. How do I make an early help referral?", "bath-and-north-east-somerset"),
        ("Hi, my son is 14 and we live in Scunthorpe. He won't go to school", "north-lincolnshire"),
        ("health visitor in North Lincs, baby 8 months", "north-lincolnshire"),
        ("my 3 year old isn't talking yet, we're in Stroud", "gloucestershire"),
        ("we just moved to Aylesbury and he has no school place", "buckinghamshire"),
        ("we are in GL5 and my son", "gloucestershire"),
        # not where the family lives, or not a place at all
        ("I give him a bath every night and he screams", None),
        ("he was in the bath when it happened", None),
        ("Bath time is a battle every night", None),
        ("she keeps saying she wants to go to Gloucester with her boyfriend", None),
        ("I live in Manchester, my daughter is 6", None),
        ("we split our time between Stroud and Bath", None),
    ],
)
def test_place_in_sentence(text, area):
    match = place_in_sentence(text)
    assert (match.area_id if match else None) == area


@pytest.mark.parametrize(
    "text, age",
    [
        ("Hi, my son is 14 and we live in Scunthorpe", 14),
        ("I live in Manchester, my daughter is 6 and she's being bullied", 6),
        ("health visitor, baby 8 months, mum has low mood", 0),
        ("my 3 year old isn't talking yet", 3),
        ("i'm 15 and my parents argue all the time", 15),
        ("I'm 35 and my son is 6", 6),
        ("she's in year 9 and won't go in", 14),
        ("one of my pupils, aged 9, seems hungry", 9),
        ("school nurse: Year 4 pupil, often tired and hungry", 9),
        ("my daughter is 15 and pregnant", 15),
        ("im pregnant and scared", UNBORN),
        ("my eldest is 12 and refusing school", 12),
        # no age said plainly, or two children: the question asks
        ("my kids are 4 and 7", None),
        ("my son is one of the tallest in his class", None),
        ("I've been waiting 3 months for a reply", None),
        ("he is 5 foot tall and 14 stone", None),
        ("we have 3 kids and no money", None),
        ("where do I refer a family who need more support?", None),
    ],
)
def test_read_stated_age(text, age):
    assert read_stated_age(text) == age


@pytest.mark.parametrize(
    "text, speaker",
    [
        ("I'm a teacher at a primary school in Aylesbury", "professional"),
        ("Hi I'm a GP in Bath. How do I make an early help referral?", "professional"),
        ("health visitor in North Lincs, baby 8 months", "professional"),
        ("one of my pupils seems hungry all the time", "professional"),
        ("Hi, my son is 14 and he won't go to school", "parent"),
        ("my 3 year old isn't talking yet", "parent"),
        ("I'm his nan and I look after him", "parent"),
        ("i'm 15 and my parents argue all the time", "young_person"),
        ("my mum drinks and i have to get myself to school", "young_person"),
        # not said, or said both ways: the question asks
        ("i look after my baby brother", None),
        ("I'm a teacher and my son is struggling too", None),
        ("what about consent?", None),
        ("we are struggling", None),
    ],
)
def test_read_stated_speaker(text, speaker):
    assert read_stated_speaker(text) == speaker


@given(st.text(max_size=300))
def test_sentence_readers_never_fail(text):
    place_in_sentence(text)
    age = read_stated_age(text)
    assert age is None or UNBORN <= age <= 25
    assert read_stated_speaker(text) in (None, "parent", "young_person", "professional")
