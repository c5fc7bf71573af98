"""The directory's fixed words: areas, categories and the limits every record is held to."""
from __future__ import annotations

import re
from functools import lru_cache

from bot.errors import UnknownArea

# The four areas the assistant covers; used only until ``knowledge/areas`` holds the area files.
_FALLBACK_AREA_IDS = ("bath-and-north-east-somerset", "buckinghamshire", "gloucestershire", "north-lincolnshire")
NATIONAL = "national"

# Plain names people and feeds use for an area, so an imported ``service_area`` such as
# "Bath & North East Somerset" or "B&NES" lands on the right id.
_AREA_NAMES = {
    "buckinghamshire": ("buckinghamshire", "bucks", "buckinghamshire council", "buckinghamshire county council"),
    "bath-and-north-east-somerset": (
        "bath and north east somerset", "bath & north east somerset", "b&nes", "banes", "bathnes",
        "bath and north east somerset council",
    ),
    "gloucestershire": ("gloucestershire", "glos", "gloucestershire county council"),
    "north-lincolnshire": ("north lincolnshire", "north lincs", "north lincolnshire council"),
}

CATEGORIES: dict[str, str] = {
    "family_support": "family support",
    "parenting": "parenting",
    "early_years": "early years and under fives",
    "send": "special educational needs and disabilities (SEND)",
    "education": "school and education",
    "money": "money, debt and benefits",
    "housing": "housing",
    "mental_health": "mental health and emotional wellbeing",
    "domestic_abuse": "domestic abuse",
    "substance_misuse": "drugs and alcohol",
    "young_carers": "young carers",
    "youth": "young people and youth work",
    "exploitation": "exploitation, trafficking and going missing",
    "health": "health",
    "get_help_now": "get help now: urgent safeguarding and emergency contacts",
    "professionals": "advice, forms and training for professionals",
}
CATEGORY_VOCABULARY = "earlyhelp-category"

# Who contacts a service (ORUK taxonomy terms in this vocabulary; a service may have several). Search uses
# them with the child's age: a service that only the child or young person contacts themselves (and that
# states no minimum age) is not offered for a child younger than SELF_CONTACT_MIN_AGE, whose family is
# asking on the child's behalf; and a service only for adults about themselves is matched on meaning,
# not on a shared word, when the search is about a child.
AUDIENCE_VOCABULARY = "earlyhelp-audience"
AUDIENCES: dict[str, str] = {
    "child-self": "children and young people, who contact it themselves",
    "adult-self": "adults, about themselves",
    "family": "parents and carers, about a child or the family",
    "professional": "professionals",
}
SELF_CONTACT_MIN_AGE = 8

MAX_AGE = 25
MAX_QUERY_CHARS = 1000  # longer questions are cut here; the meaning is in the first few sentences
MAX_K = 50

# Per-field limits for imported records: past these a record is rejected, not silently cut.
LIMITS = {
    "id": 200,
    "name": 300,
    "organization": 300,
    "description": 20_000,
    "url": 2_000,
    "email": 254,
    "phone": 40,
    "text": 2_000,
    "list": 200,
}


@lru_cache(maxsize=1)
def known_area_ids() -> tuple[str, ...]:
    """The configured area ids: those of ``bot.areas`` (``knowledge/areas/*.yml``) and the four built in.

    The four are kept while the area files are being written, so the directory never forgets an area
    whose file is not there yet; an area added by a new file is picked up as well.
    """
    ids = set(_FALLBACK_AREA_IDS)
    try:
        from bot.areas import load_areas

        ids |= set(load_areas())
    except Exception:  # noqa: BLE001 - no area files yet (or one unreadable): the built-in four still hold
        pass
    return tuple(sorted(ids))


def check_area(area: object) -> str:
    """An area id for filtering; ``UnknownArea`` naming the known ones otherwise."""
    known = list(known_area_ids())
    if isinstance(area, str):
        key = area.strip().lower()
        if key in known:
            return key
        resolved = area_from_name(key)
        if resolved and resolved != NATIONAL:
            return resolved
    raise UnknownArea(area, known)


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower().replace("-", " ").replace("_", " "))


def area_from_name(text: str) -> str | None:
    """The area id (or ``national``) that a feed's service-area text names, or None if it names none."""
    key = _norm(text)
    if key in ("national", "england", "uk", "united kingdom", "england and wales", "nationwide"):
        return NATIONAL
    for area_id in known_area_ids():
        if key == _norm(area_id):
            return area_id
        if key in (_norm(n) for n in _AREA_NAMES.get(area_id, ())):
            return area_id
    return None
