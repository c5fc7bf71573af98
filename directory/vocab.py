"""The directory's fixed words: areas, categories and the limits every record is held to."""
from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
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


# Age stages a service's name states plainly (e.g. "Early Years SEN team": under-fives), used for a
# service whose source gives no age range. The stages, each with its reason and source, are data:
# directory/implied_ages.json.
IMPLIED_AGES_FILE = Path(__file__).with_name("implied_ages.json")


@dataclass(frozen=True)
class ImpliedAges:
    phrase: str
    min_age: int
    max_age: int
    reason: str
    source: str
    pattern: re.Pattern = field(compare=False, repr=False)


def _load_implied_ages(path: Path) -> tuple[ImpliedAges, ...]:
    """The stages in ``path``, each checked: a clear error names the stage and field that is wrong."""
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ValueError(f"{path.name}: not readable JSON ({err})") from err
    if not isinstance(doc, dict) or not isinstance(doc.get("stages"), list) or set(doc) - {"about", "stages"}:
        raise ValueError(f"{path.name}: must be an object with 'about' and a list 'stages'")
    stages = []
    for i, item in enumerate(doc["stages"]):
        where = f"{path.name}, stage {i + 1}"
        if not isinstance(item, dict) or set(item) != {"phrase", "min_age", "max_age", "reason", "source"}:
            raise ValueError(f"{where}: needs exactly phrase, min_age, max_age, reason and source")
        phrase = item["phrase"]
        if not isinstance(phrase, str) or not re.fullmatch(r"[a-z]+( [a-z]+)*", phrase):
            raise ValueError(f"{where}, phrase: lower-case words separated by single spaces, got {phrase!r}")
        low, high = item["min_age"], item["max_age"]
        if any(isinstance(v, bool) or not isinstance(v, int) for v in (low, high)) or not 0 <= low <= high <= MAX_AGE:
            raise ValueError(f"{where}: min_age and max_age must be whole numbers with 0 <= min_age <= max_age <= {MAX_AGE}")
        for name in ("reason", "source"):
            if not isinstance(item[name], str) or len(item[name].strip()) < 10:
                raise ValueError(f"{where}, {name}: must say, in words, why (reason) and where from (source)")
        pattern = re.compile(r"\b" + r"\s+".join(map(re.escape, phrase.split())) + r"\b", re.IGNORECASE)
        stages.append(ImpliedAges(phrase, low, high, item["reason"], item["source"], pattern))
    return tuple(stages)


@lru_cache(maxsize=1)
def implied_age_stages() -> tuple[ImpliedAges, ...]:
    return _load_implied_ages(IMPLIED_AGES_FILE)


@lru_cache(maxsize=8192)
def implied_ages(name: str) -> ImpliedAges | None:
    """The age stage a service's name states plainly ("Early Years SEN team": 0 to 5), or None. Only for
    services whose source gives no ages: a stated range always wins."""
    for stage in implied_age_stages():
        if stage.pattern.search(name or ""):
            return stage
    return None
