"""The areas the assistant covers, loaded from one YAML file per area under ``knowledge/areas/``.

Every fact a person is told (a level's local name, a phone number, opening hours, a referral pathway)
comes from these files, each with the source document it was taken from, so a council can check and
correct them without touching code. Files are validated at load: a mistake fails loudly with the file
and the field, never silently at 2 a.m. when someone needs the duty number.

Adding an area is adding one file (see README, "Adding an area").
"""
from __future__ import annotations

import datetime as dt
import re
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.errors import UnknownArea
from bot.paths import knowledge_dir
from bot.phones import check_uk_phone

CANONICAL_LEVELS = (1, 2, 3, 4)
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
NATIONAL_SOURCE = "national, unverified"
_SPAN = re.compile(r"^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-4]):[0-5][0-9]$")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Source(Strict):
    """A document facts are taken from; ``id`` is what facts cite (e.g. ``"003"``)."""

    id: str
    title: str
    publisher: str
    date: str = Field(description="publication date or period as the document gives it")
    file: str | None = Field(default=None, description="seed file name, when the source is one of the seeds")
    url: str | None = None


class Weekly(Strict):
    """Opening times per weekday as ``HH:MM-HH:MM`` spans in Europe/London local time."""

    mon: list[str] = []
    tue: list[str] = []
    wed: list[str] = []
    thu: list[str] = []
    fri: list[str] = []
    sat: list[str] = []
    sun: list[str] = []

    @field_validator(*DAYS)
    @classmethod
    def _spans(cls, spans: list[str]) -> list[str]:
        for span in spans:
            match = _SPAN.match(span)
            if not match or span[:5] >= span[6:]:
                raise ValueError(f"opening span {span!r} must look like '09:00-17:00' with start before end")
        return spans

    def spans(self, day: int) -> list[tuple[dt.time, dt.time]]:
        out = []
        for span in getattr(self, DAYS[day]):
            start, end = span.split("-")
            end_time = dt.time.max if end == "24:00" else dt.time.fromisoformat(end)
            out.append((dt.time.fromisoformat(start), end_time))
        return out

    def describe(self) -> str:
        parts = []
        for day in DAYS:
            spans = getattr(self, day)
            if spans:
                parts.append(f"{day.capitalize()} {', '.join(spans)}")
        return "; ".join(parts) if parts else "closed"


class OfficeHours(Strict):
    """When the area's offices are open; ``assumed`` marks hours the sources do not state."""

    weekly: Weekly
    bank_holidays: Literal["closed", "open"] = "closed"
    source: str
    assumed: bool = False
    note: str | None = None


class Hours(Strict):
    """When a contact answers.

    ``always``: any time. ``office``: the area's office hours. ``out_of_office``: whenever the office is
    closed (an emergency duty team, an answerphone). ``weekly``: its own times. ``not_stated``: the
    source gives none, so the contact is offered at any time with that caveat.
    """

    kind: Literal["always", "office", "out_of_office", "weekly", "not_stated"]
    weekly: Weekly | None = None
    bank_holidays: Literal["closed", "open"] = "closed"
    note: str | None = None

    @model_validator(mode="after")
    def _weekly_given(self) -> "Hours":
        if (self.kind == "weekly") != (self.weekly is not None):
            raise ValueError("'weekly' times are required when kind is 'weekly', and only then")
        return self


class Contact(Strict):
    id: str
    name: str
    role: str = Field(description="what this contact is for, in a few plain words")
    phone: str | None = None
    phone_note: str | None = Field(default=None, description="e.g. 'option 1', 'free phone'")
    email: str | None = None
    url: str | None = None
    hours: Hours
    source: str
    last_verified: dt.date

    @field_validator("phone")
    @classmethod
    def _uk_phone(cls, phone: str | None) -> str | None:
        return check_uk_phone(phone)

    @model_validator(mode="after")
    def _reachable(self) -> "Contact":
        if not (self.phone or self.email or self.url):
            raise ValueError("a contact needs at least a phone, an email or a url")
        return self


class Level(Strict):
    """One level of the area's own scheme, and which of the four shared levels it covers."""

    number: int = Field(ge=1, le=6)
    name: str = Field(description="the area's own name for this level, e.g. 'Intensive'")
    covers: list[int] = Field(description="the shared levels 1-4 that this level corresponds to")
    meaning: str = Field(description="what the level means, in plain words for a family")
    response: str = Field(description="what usually happens next at this level, in plain words")
    source: str

    @field_validator("covers")
    @classmethod
    def _canonical(cls, covers: list[int]) -> list[int]:
        if not covers or any(level not in CANONICAL_LEVELS for level in covers):
            raise ValueError("covers must list shared levels between 1 and 4")
        return covers


class Timescale(Strict):
    what: str
    within: str


class Pathway(Strict):
    """What a professional does at one shared level of need in this area."""

    level: int = Field(ge=1, le=4)
    summary: str
    steps: list[str] = Field(min_length=1)
    form: str | None = Field(default=None, description="the form or assessment used, if any")
    contacts: list[str] = Field(default=[], description="ids of the contacts to use, most direct first")
    decides: str | None = Field(default=None, description="who makes the decision")
    consent: str
    timescales: list[Timescale] = []
    source: str


class Routing(Strict):
    """Ordered contact ids for each kind of need; the first one answering at the moment is used."""

    child_at_risk: list[str] = Field(min_length=1)
    talk_to_person: list[str] = Field(min_length=1)


class Places(Strict):
    """Names people use for where they live, to recognise the area from what they type."""

    towns: list[str] = Field(min_length=1)
    postcode_districts: list[str] = []
    source: str

    @field_validator("postcode_districts")
    @classmethod
    def _districts(cls, districts: list[str]) -> list[str]:
        for district in districts:
            if not re.fullmatch(r"[A-Z]{1,2}[0-9][0-9A-Z]?", district):
                raise ValueError(f"{district!r} is not an outward postcode such as 'GL5' or 'DN15'")
        return districts


class Area(Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9-]*$")
    name: str
    council: str
    aliases: list[str] = []
    sources: list[Source] = Field(min_length=1)
    office_hours: OfficeHours
    levels: list[Level] = Field(min_length=2)
    contacts: list[Contact] = Field(min_length=1)
    routing: Routing
    pathways: list[Pathway]
    places: Places

    @model_validator(mode="after")
    def _consistent(self) -> "Area":
        cited = {source.id for source in self.sources} | {NATIONAL_SOURCE}
        facts = [("office_hours", self.office_hours.source), ("places", self.places.source)]
        facts += [(f"levels[{i}]", lvl.source) for i, lvl in enumerate(self.levels)]
        facts += [(f"contacts[{i}] ({c.id})", c.source) for i, c in enumerate(self.contacts)]
        facts += [(f"pathways[{i}]", p.source) for i, p in enumerate(self.pathways)]
        for where, source in facts:
            if source not in cited:
                raise ValueError(f"{where}: source {source!r} is not one of this file's sources {sorted(cited)}")
        covered = sorted(level for lvl in self.levels for level in lvl.covers)
        if covered != list(CANONICAL_LEVELS):
            raise ValueError(f"levels must cover each shared level 1-4 exactly once, they cover {covered}")
        if [lvl.number for lvl in self.levels] != list(range(1, len(self.levels) + 1)):
            raise ValueError("levels must be numbered 1, 2, 3 ... in order")
        if sorted(p.level for p in self.pathways) != list(CANONICAL_LEVELS):
            raise ValueError("pathways must give exactly one pathway for each shared level 1-4")
        ids = [c.id for c in self.contacts]
        if len(set(ids)) != len(ids):
            raise ValueError("contact ids must be unique")
        named = [("routing.child_at_risk", i) for i in self.routing.child_at_risk]
        named += [("routing.talk_to_person", i) for i in self.routing.talk_to_person]
        named += [(f"pathways (level {p.level}).contacts", i) for p in self.pathways for i in p.contacts]
        for where, contact_id in named:
            if contact_id not in ids:
                raise ValueError(f"{where}: no contact with id {contact_id!r}")
        return self

    def contact(self, contact_id: str) -> Contact:
        return next(c for c in self.contacts if c.id == contact_id)

    def source(self, source_id: str) -> Source | None:
        return next((s for s in self.sources if s.id == source_id), None)

    def cite(self, source_id: str) -> str:
        """A short citation for a fact: document title and date, or the national caveat."""
        source = self.source(source_id)
        if source is None:
            return source_id
        return f"{source.publisher}, {source.title} ({source.date})"

    def level(self, canonical: int) -> Level:
        """The area's own level that covers one of the shared levels 1-4."""
        return next(lvl for lvl in self.levels if canonical in lvl.covers)

    def pathway(self, canonical: int) -> Pathway:
        return next(p for p in self.pathways if p.level == canonical)


class AreaFileError(ValueError):
    """A knowledge file is wrong; the message names the file and the field."""


def _describe(err: ValidationError) -> str:
    lines = []
    for problem in err.errors():
        where = ".".join(str(part) for part in problem["loc"]) or "(file)"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def load_area_file(path: Path) -> Area:
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        raise AreaFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise AreaFileError(f"{path}: expected a mapping of fields at the top level")
    try:
        area = Area.model_validate(raw)
    except ValidationError as err:
        raise AreaFileError(f"{path}: {_describe(err)}") from err
    if area.id != path.stem:
        raise AreaFileError(f"{path}: id: {area.id!r} must match the file name {path.stem!r}")
    return area


def load_areas_from(folder: Path) -> dict[str, Area]:
    files = sorted(folder.glob("*.yml"))
    if not files:
        raise AreaFileError(f"{folder}: no area files (*.yml) found")
    return {area.id: area for area in map(load_area_file, files)}


@lru_cache(maxsize=1)
def load_areas() -> dict[str, Area]:
    """Every configured area by id, validated; cached for the life of the process."""
    return load_areas_from(knowledge_dir() / "areas")


def get_area(area_id: object) -> Area:
    """The area with this id; ``UnknownArea`` (a ``BadInput``) naming the known ones otherwise."""
    areas = load_areas()
    if not isinstance(area_id, str) or area_id not in areas:
        raise UnknownArea(area_id, sorted(areas))
    return areas[area_id]
