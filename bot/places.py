"""Recognise which area someone lives in from the way they say it.

People name their council ("bucks", "B&NES"), their town ("Stroud", "bourton on the water"), or a
postcode ("GL5 2AB", "dn15"), often with typos. Only the outward part of a postcode is ever kept: it is
enough to route, and a full postcode can identify a household.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from functools import lru_cache

import yaml

from bot.areas import load_areas
from bot.paths import knowledge_dir

_POSTCODE = re.compile(r"\b([a-z]{1,2}[0-9][0-9a-z]?)(?:\s*([0-9][a-z]{2}))?\b")
_FULL_POSTCODE = re.compile(r"\b([A-Za-z]{1,2}[0-9][0-9A-Za-z]?)\s*[0-9][A-Za-z]{2}\b")
# Words too common to be taken as a misspelt place name.
_FUZZY_MIN_LENGTH = 6


@dataclass(frozen=True)
class PlaceMatch:
    area_id: str
    matched: str  # the place as we know it, e.g. "Stroud" or "GL5"
    kind: str  # "council", "town" or "postcode"


def normalise(text: str) -> str:
    text = text.lower().replace("&", " and ").replace("’", "'")
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return re.sub(r"\s+", " ", text).strip()


@lru_cache(maxsize=1)
def _names() -> dict[str, list[PlaceMatch]]:
    """Every normalised name we recognise, to the area(s) it points at."""
    names: dict[str, list[PlaceMatch]] = {}

    def add(name: str, match: PlaceMatch) -> None:
        names.setdefault(normalise(name), []).append(match)

    for area in load_areas().values():
        for name in [area.name, area.id.replace("-", " "), area.council, *area.aliases]:
            add(name, PlaceMatch(area.id, area.name, "council"))
        for town in area.places.towns:
            add(town, PlaceMatch(area.id, town, "town"))
    return names


@lru_cache(maxsize=1)
def _districts() -> dict[str, str]:
    return {d.lower(): a.id for a in load_areas().values() for d in a.places.postcode_districts}


@lru_cache(maxsize=1)
def _elsewhere() -> dict[str, str]:
    """Names of places outside our areas that contain one of our names, to where they are."""
    path = knowledge_dir() / "places" / "elsewhere.yml"
    if not path.exists():
        return {}
    entries = yaml.safe_load(path.read_text())["places"]
    return {normalise(e["name"]): e["is_in"] for e in entries}


def elsewhere(text: str) -> str | None:
    """Where the text's place is, when it names a place outside our areas that sounds like one of ours."""
    if not isinstance(text, str):
        return None
    norm = f" {normalise(text)} "
    for name in sorted(_elsewhere(), key=len, reverse=True):
        if f" {name} " in norm:
            return _elsewhere()[name]
    return None


def _distinct(matches: list[PlaceMatch]) -> list[PlaceMatch]:
    seen: dict[str, PlaceMatch] = {}
    for match in matches:
        seen.setdefault(match.area_id, match)
    return list(seen.values())


def _postcodes_read(text: str) -> tuple[str, list[PlaceMatch]]:
    """The normalised text (padded, with places elsewhere that contain one of our names masked) and the areas
    of the postcode districts in it: where both readers of places start."""
    norm = f" {normalise(text)} "
    for name in sorted(_elsewhere(), key=len, reverse=True):
        norm = norm.replace(f" {name} ", " elsewhere ")
    found: list[PlaceMatch] = []
    for code, _inward in _POSTCODE.findall(norm):
        area_id = _districts().get(code)
        if area_id:
            found.append(PlaceMatch(area_id, code.upper(), "postcode"))
    return norm, found


def find_places(text: str) -> list[PlaceMatch]:
    """Every area the text points at, one match per area, most specific evidence first."""
    if not isinstance(text, str) or not text.strip():
        return []
    norm, found = _postcodes_read(text)
    # Longest names first so "north east somerset" is not read as something shorter.
    for name in sorted(_names(), key=len, reverse=True):
        if f" {name} " in norm:
            found.extend(_names()[name])
            norm = norm.replace(f" {name} ", " ")
    if not found:
        found.extend(_fuzzy(norm.split()))
    kinds = {"postcode": 0, "town": 1, "council": 2}
    return _distinct(sorted(found, key=lambda m: kinds[m.kind]))


def _fuzzy(words: list[str]) -> list[PlaceMatch]:
    """Single- and two-word names spelt a little wrong ("glocestershire", "high wickham")."""
    candidates = [w for w in words if len(w) >= _FUZZY_MIN_LENGTH]
    candidates += [f"{a} {b}" for a, b in zip(words, words[1:]) if len(a + b) >= _FUZZY_MIN_LENGTH]
    found: list[PlaceMatch] = []
    for word in candidates:
        for name in difflib.get_close_matches(word, list(_names()), n=1, cutoff=0.85):
            found.extend(_names()[name])
    return found


def resolve_area(text: str) -> PlaceMatch | None:
    """The one area the text names, or None when it names none or several."""
    matches = find_places(text)
    return matches[0] if len(matches) == 1 else None


def outward_code(text: str) -> str | None:
    """The outward part of the first full postcode in the text (``"GL5 2AB"`` -> ``"GL5"``)."""
    match = _FULL_POSTCODE.search(text or "")
    return match.group(1).upper() if match else None


# Inside a sentence a place name is only taken as where the family lives when it reads as a location ("we're
# in Stroud", "a GP in Bath", "a mum from Stroud"), so "he was in the bath" or "she wants to go to Gloucester
# with him" do not set the area. Postcodes need no such context.
_LOCATION_WORDS = {"in", "at", "near", "from", "around", "live", "living", "lives", "based", "area", "council",
                   "nr", "outside", "covering", "round", "by"}
_DETERMINERS = {"the", "a", "an", "his", "her", "their", "my", "your", "our", "its", "bubble"}
_MOVED = {"moved", "moving", "move", "relocated"}  # "moved to Stroud" is where they live; "go to Gloucester" is not


def place_in_sentence(text: str) -> PlaceMatch | None:
    """The one area a free-text sentence says the family is in, or None (no place, several, or unsure).

    Stricter than ``find_places``, which reads an answer to "where do you live?": no misspellings, and a town
    name counts only after a location word ("in", "near", "live") or written with a capital inside the sentence,
    and never straight after an article or a possessive ("the bath", "her bath")."""
    if not isinstance(text, str) or not text.strip():
        return None
    text = text[:2000]
    norm, found = _postcodes_read(text)
    for name in sorted(_names(), key=len, reverse=True):
        at = norm.find(f" {name} ")
        while at != -1:
            before = norm[:at].split()[-3:]
            written = re.search(r"\b" + r"\W+".join(map(re.escape, name.split())) + r"\b", text, re.IGNORECASE)
            capital = bool(written and written.group(0)[0].isupper())
            if before[-1:] == ["to"]:
                located = before[-2:-1] and before[-2] in _MOVED
            else:
                located = before and before[-1] not in _DETERMINERS and (capital or set(before) & _LOCATION_WORDS)
            if located:
                found.extend(_names()[name])
                break
            at = norm.find(f" {name} ", at + 1)
        norm = norm.replace(f" {name} ", " ")
    areas = _distinct(found)
    return areas[0] if len(areas) == 1 else None
