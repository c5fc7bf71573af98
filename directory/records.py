"""One service as the directory holds it, and its validation from Open Referral UK / HSDS shapes.

Feeds disagree on spelling (``eligibilitys`` in ORUK v1, ``eligibility`` elsewhere; ``regular_schedules``
or ``schedules``; phones under ``contacts`` or on the service), so the reader accepts each spelling and
turns it into one :class:`Service`. Every text field is made plain and safe (see ``sanitise``) and held to
a size limit; a record that breaks a rule is rejected with the field that broke it, never half-read.

Three fields are this project's additions to ORUK, all optional for a feed: ``source`` (where the facts
come from), ``synthetic`` (a made-up record for scale tests) and ``hours`` (opening times as words when a
feed has no structured schedule). ``assured_date`` is read as the date the facts were last verified.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any

from directory.sanitise import is_email, is_phone, plain_text, safe_url
from directory.vocab import AUDIENCE_VOCABULARY, AUDIENCES, CATEGORIES, CATEGORY_VOCABULARY, LIMITS, MAX_AGE, NATIONAL, area_from_name

DAYS = ("MO", "TU", "WE", "TH", "FR", "SA", "SU")
DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_TIME = re.compile(r"^([01]?[0-9]|2[0-4]):([0-5][0-9])(:[0-5][0-9])?$")
_FREE_WORDS = re.compile(r"^\s*(free|no cost|no charge|free of charge|free to call|free to use)\b", re.I)
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:/@+-]*$")


class RecordError(ValueError):
    """One field of one record is wrong."""

    def __init__(self, field_name: str, reason: str):
        self.field = field_name
        self.reason = reason
        super().__init__(f"{field_name}: {reason}")


@dataclass(frozen=True)
class Phone:
    number: str
    description: str | None = None


@dataclass(frozen=True)
class Schedule:
    byday: tuple[str, ...]
    opens_at: str  # HH:MM
    closes_at: str  # HH:MM, 24:00 for midnight
    description: str | None = None


@dataclass(frozen=True)
class CostOption:
    option: str | None = None
    amount: float | None = None
    description: str | None = None

    @property
    def free(self) -> bool | None:
        if self.amount == 0 or (self.option and _FREE_WORDS.match(self.option)):
            return True
        if (self.amount or 0) > 0 or self.option:
            return False
        return None

    def describe(self) -> str | None:
        option = self.option
        if option and self.description and self.description.lower().startswith(option.lower()):
            option = None  # "Free" + "free to call" says it once
        bits = [option, self.description]
        if self.amount:
            bits.insert(1, f"£{self.amount:.2f}")
        return ", ".join(b for b in bits if b) or ("free" if self.free else None)


@dataclass(frozen=True)
class Location:
    id: str
    name: str | None = None
    address: str | None = None
    postal_code: str | None = None
    latitude: float | None = None
    longitude: float | None = None


@dataclass(frozen=True)
class Service:
    id: str
    name: str
    organization_id: str
    organization: str
    description: str = ""
    url: str | None = None
    email: str | None = None
    status: str = "active"
    phones: tuple[Phone, ...] = ()
    schedules: tuple[Schedule, ...] = ()
    hours: str | None = None
    min_age: int | None = None
    max_age: int | None = None
    eligibility: str | None = None
    cost_options: tuple[CostOption, ...] = ()
    fees: str | None = None
    areas: tuple[str, ...] = ()  # area ids and/or "national"
    area_names: tuple[str, ...] = ()  # service_area texts that name no known area, kept as given
    categories: tuple[str, ...] = ()
    terms: tuple[str, ...] = ()  # other taxonomy terms, as names
    audiences: tuple[str, ...] = ()  # who contacts it (vocab.AUDIENCES), from taxonomy terms in AUDIENCE_VOCABULARY
    locations: tuple[Location, ...] = ()
    source: str | None = None
    last_verified: dt.date | None = None
    synthetic: bool = False
    organization_url: str | None = None

    # ---- derived -------------------------------------------------------------------------------
    @property
    def free(self) -> bool | None:
        """True when the feed says it is free, False when it states a charge, None when it says nothing."""
        verdicts = [c.free for c in self.cost_options if c.free is not None]
        if verdicts:
            return all(verdicts)
        if self.fees:
            return True if _FREE_WORDS.match(self.fees) else None
        return None

    @property
    def cost(self) -> str | None:
        texts = [self.fees] + [c.describe() for c in self.cost_options]
        return "; ".join(dict.fromkeys(t for t in texts if t)) or None

    @property
    def national(self) -> bool:
        return NATIONAL in self.areas

    def search_text(self) -> str:
        """What lexical search indexes: every word a person might look for."""
        parts = [self.name, self.organization, self.description, self.eligibility or "", self.cost or ""]
        parts += [CATEGORIES[c] for c in self.categories] + list(self.terms)
        parts += [a.replace("-", " ") for a in self.areas] + list(self.area_names)
        parts += [loc.name or "" for loc in self.locations] + [loc.address or "" for loc in self.locations]
        return " ".join(p for p in parts if p)

    def embed_text(self) -> str:
        """What the sentence model embeds: the name, what it is for, and who it is for."""
        bits = [f"{self.name}.", self.description]
        if self.categories:
            bits.append("Help with " + ", ".join(CATEGORIES[c] for c in self.categories) + ".")
        if self.min_age is not None or self.max_age is not None:
            bits.append(f"For ages {self.min_age or 0} to {self.max_age if self.max_age is not None else MAX_AGE}.")
        return " ".join(b for b in bits if b)[:4000]

    def text_hash(self) -> str:
        return hashlib.sha256(self.embed_text().encode("utf-8")).hexdigest()[:32]

    def fingerprint(self) -> str:
        """A hash of everything the service says, to tell an update from a repeat."""
        doc = asdict(self)
        return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode("utf-8")).hexdigest()


def service_to_doc(s: Service) -> str:
    """The whole service as compact JSON, stored beside its rows so a search reads it in one query."""
    return json.dumps(asdict(s), separators=(",", ":"), default=str)


def service_from_doc(doc: str) -> Service:
    """The inverse of ``service_to_doc``."""
    d = json.loads(doc)
    d["phones"] = tuple(Phone(**p) for p in d["phones"])
    d["schedules"] = tuple(Schedule(tuple(x["byday"]), x["opens_at"], x["closes_at"], x["description"]) for x in d["schedules"])
    d["cost_options"] = tuple(CostOption(**c) for c in d["cost_options"])
    d["locations"] = tuple(Location(**loc) for loc in d["locations"])
    d["last_verified"] = dt.date.fromisoformat(d["last_verified"]) if d["last_verified"] else None
    for name in ("areas", "area_names", "categories", "terms", "audiences"):
        d[name] = tuple(d.get(name, ()))
    return Service(**d)


# ---- reading one record ---------------------------------------------------------------------------

def _text(value: Any, name: str, limit: int, required: bool = False, multiline: bool = False) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise RecordError(name, "is required")
        return None
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise RecordError(name, f"must be text, got {type(value).__name__}")
    raw = str(value)
    if len(raw) > limit * 4 + 1000:  # far past the limit even before cleaning: refuse to process it
        raise RecordError(name, f"is {len(raw)} characters long; the limit is {limit}")
    text = plain_text(raw, multiline=multiline)
    if len(text) > limit:
        raise RecordError(name, f"is {len(text)} characters long; the limit is {limit}")
    if required and not text:
        raise RecordError(name, "is empty once HTML is removed")
    return text or None


def _id(value: Any, name: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise RecordError(name, "is required and must be text" if value is None else f"must be text, got {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise RecordError(name, "is required")
    if len(text) > LIMITS["id"]:
        raise RecordError(name, f"is longer than {LIMITS['id']} characters")
    if not _ID.match(text):
        raise RecordError(name, "may hold only letters, digits and . _ : / @ + -")
    return text


def _list(value: Any, name: str) -> list:
    if value is None:
        return []
    if not isinstance(value, list):
        raise RecordError(name, f"must be a list, got {type(value).__name__}")
    if len(value) > LIMITS["list"]:
        raise RecordError(name, f"has {len(value)} entries; the limit is {LIMITS['list']}")
    return value


def _obj(value: Any, name: str) -> dict:
    if not isinstance(value, dict):
        raise RecordError(name, f"must be an object, got {type(value).__name__}")
    return value


def _age(value: Any, name: str) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise RecordError(name, "must be a whole number of years")
    if isinstance(value, str):
        if not value.strip().isdigit():
            raise RecordError(name, f"must be a whole number of years, got {value[:40]!r}")
        value = int(value.strip())
    if isinstance(value, float):
        if not value.is_integer():
            raise RecordError(name, "must be a whole number of years")
        value = int(value)
    if not isinstance(value, int):
        raise RecordError(name, f"must be a whole number of years, got {type(value).__name__}")
    if not 0 <= value <= 120:
        raise RecordError(name, f"{value} is not an age")
    return value


def _time(value: Any, name: str) -> str:
    if not isinstance(value, str) or not _TIME.match(value.strip()):
        raise RecordError(name, "must be a time such as 09:00 or 09:00:00")
    hours, minutes = value.strip().split(":")[:2]
    if int(hours) == 24 and minutes != "00":
        raise RecordError(name, "must be a time such as 09:00 or 09:00:00")
    return f"{int(hours):02d}:{minutes}"


def _date(value: Any, name: str) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.date):
        return value
    if not isinstance(value, str):
        raise RecordError(name, f"must be a date such as 2020-03-01, got {type(value).__name__}")
    try:
        return dt.date.fromisoformat(value.strip()[:10])
    except ValueError as err:
        raise RecordError(name, f"must be a date such as 2020-03-01, got {value[:40]!r}") from err


def _bool(value: Any, name: str) -> bool:
    if value in (None, ""):
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0", "yes", "no"):
        return value.strip().lower() in ("true", "1", "yes")
    raise RecordError(name, f"must be true or false, got {str(value)[:40]!r}")


def _phones(raw: dict) -> list[Phone]:
    found: list[tuple[str, Any]] = []
    for i, contact in enumerate(_list(raw.get("contacts"), "contacts")):
        contact = _obj(contact, f"contacts[{i}]")
        for j, phone in enumerate(_list(contact.get("phones"), f"contacts[{i}].phones")):
            found.append((f"contacts[{i}].phones[{j}]", phone))
    for j, phone in enumerate(_list(raw.get("phones"), "phones")):
        found.append((f"phones[{j}]", phone))
    phones: list[Phone] = []
    for where, phone in found:
        phone = _obj(phone, where)
        number = _text(phone.get("number"), f"{where}.number", LIMITS["phone"], required=True)
        if not is_phone(number):
            raise RecordError(f"{where}.number", f"{number!r} is not a phone number")
        note = _text(phone.get("description"), f"{where}.description", LIMITS["text"])
        if Phone(number, note) not in phones:
            phones.append(Phone(number, note))
    return phones


def _schedules(raw: dict) -> tuple[list[Schedule], str | None]:
    key = "regular_schedules" if "regular_schedules" in raw else "schedules"
    schedules: list[Schedule] = []
    notes: list[str] = []
    for i, item in enumerate(_list(raw.get(key), key)):
        where = f"{key}[{i}]"
        item = _obj(item, where)
        note = _text(item.get("description"), f"{where}.description", LIMITS["text"])
        opens, closes, byday = item.get("opens_at"), item.get("closes_at"), item.get("byday")
        if opens in (None, "") and closes in (None, "") and byday in (None, ""):
            if note:
                notes.append(note)
            continue
        if not isinstance(byday, str) or not byday.strip():
            raise RecordError(f"{where}.byday", "must list days such as MO,TU,WE")
        days = tuple(d.strip().upper() for d in byday.split(",") if d.strip())
        bad = [d for d in days if d not in DAYS]
        if bad or not days:
            raise RecordError(f"{where}.byday", f"unknown day {bad[0][:10] if bad else byday[:10]!r}; use MO,TU,WE,TH,FR,SA,SU")
        start, end = _time(opens, f"{where}.opens_at"), _time(closes, f"{where}.closes_at")
        if end == "23:59":
            end = "24:00"
        if start >= end:
            raise RecordError(f"{where}.closes_at", "must be later than opens_at")
        schedules.append(Schedule(days, start, end, note))
    hours = _text(raw.get("hours"), "hours", LIMITS["text"])
    if hours:
        notes.insert(0, hours)
    return schedules, ("; ".join(dict.fromkeys(notes)) or None)


def _eligibility(raw: dict) -> tuple[int | None, int | None, str | None]:
    key = next((k for k in ("eligibilitys", "eligibilities", "eligibility") if k in raw), "eligibilitys")
    items = raw.get(key)
    if isinstance(items, dict):
        items = [items]
    lows, highs, texts = [], [], []
    for i, item in enumerate(_list(items, key)):
        where = f"{key}[{i}]"
        item = _obj(item, where)
        low, high = _age(item.get("minimum_age"), f"{where}.minimum_age"), _age(item.get("maximum_age"), f"{where}.maximum_age")
        if low is not None and high is not None and low > high:
            raise RecordError(f"{where}.maximum_age", f"{high} is below minimum_age {low}")
        lows.append(low)
        highs.append(high)
        text = _text(item.get("eligibility") or item.get("description"), f"{where}.eligibility", LIMITS["text"])
        if text:
            texts.append(text)
    min_age = None if not lows or None in lows else min(lows)
    max_age = None if not highs or None in highs else max(highs)
    return min_age, max_age, ("; ".join(texts) or None)


def _cost(raw: dict) -> tuple[list[CostOption], str | None]:
    options: list[CostOption] = []
    for i, item in enumerate(_list(raw.get("cost_options"), "cost_options")):
        where = f"cost_options[{i}]"
        item = _obj(item, where)
        amount = item.get("amount")
        if amount in (None, ""):
            amount = None
        else:
            if isinstance(amount, bool):
                raise RecordError(f"{where}.amount", "must be a number")
            try:
                amount = float(amount)
            except (TypeError, ValueError) as err:
                raise RecordError(f"{where}.amount", f"must be a number, got {str(amount)[:40]!r}") from err
            if not 0 <= amount < 1e9:
                raise RecordError(f"{where}.amount", "must be zero or more")
        option = CostOption(
            _text(item.get("option"), f"{where}.option", LIMITS["text"]),
            amount,
            _text(item.get("amount_description"), f"{where}.amount_description", LIMITS["text"]),
        )
        if option not in options:
            options.append(option)
    return options, _text(raw.get("fees"), "fees", LIMITS["text"])


def _areas(raw: dict, extra_area: str | None) -> tuple[list[str], list[str]]:
    areas: list[str] = []
    names: list[str] = []
    for i, item in enumerate(_list(raw.get("service_areas"), "service_areas")):
        where = f"service_areas[{i}]"
        if isinstance(item, str):
            item = {"service_area": item}
        item = _obj(item, where)
        text = _text(item.get("service_area"), f"{where}.service_area", LIMITS["text"], required=True)
        area = area_from_name(text)
        if area and area not in areas:
            areas.append(area)
        elif not area and text not in names:
            names.append(text)
    if extra_area and extra_area not in areas:
        areas.append(extra_area)
    return areas, names


def _taxonomy(raw: dict) -> tuple[list[str], list[str], list[str]]:
    categories: list[str] = []
    terms: list[str] = []
    audiences: list[str] = []
    key = "service_taxonomys" if "service_taxonomys" in raw else "taxonomy_terms"
    labels = {label.lower(): key_ for key_, label in CATEGORIES.items()}
    for i, item in enumerate(_list(raw.get(key), key)):
        where = f"{key}[{i}]"
        item = _obj(item, where)
        term = item.get("taxonomy", item)
        term = _obj(term, f"{where}.taxonomy")
        name = _text(term.get("name"), f"{where}.taxonomy.name", LIMITS["text"], required=True)
        vocabulary = term.get("vocabulary")
        if vocabulary == AUDIENCE_VOCABULARY:
            if name not in AUDIENCES:
                raise RecordError(f"{where}.taxonomy.name", f"{name[:40]!r} is not an audience; use one of {', '.join(AUDIENCES)}")
            if name not in audiences:
                audiences.append(name)
            continue
        category = None
        if name in CATEGORIES:
            category = name
        elif name.lower() in labels:
            category = labels[name.lower()]
        if vocabulary == CATEGORY_VOCABULARY and category is None:
            raise RecordError(f"{where}.taxonomy.name", f"{name[:40]!r} is not a category; use one of {', '.join(CATEGORIES)}")
        if category:
            if category not in categories:
                categories.append(category)
        elif name not in terms:
            terms.append(name)
    extra = raw.get("categories")
    for i, name in enumerate(_list(extra, "categories")):
        if not isinstance(name, str) or name not in CATEGORIES:  # a list or a number is not a category either
            raise RecordError(f"categories[{i}]", f"{str(name)[:40]!r} is not a category; use one of {', '.join(CATEGORIES)}")
        if name not in categories:
            categories.append(name)
    return categories, terms, audiences


def _locations(raw: dict) -> list[Location]:
    locations: list[Location] = []
    for i, item in enumerate(_list(raw.get("service_at_locations"), "service_at_locations")):
        where = f"service_at_locations[{i}].location"
        loc = _obj(_obj(item, f"service_at_locations[{i}]").get("location"), where)
        address_bits: list[str] = []
        postal_code = None
        for j, addr in enumerate(_list(loc.get("physical_addresses"), f"{where}.physical_addresses")):
            addr = _obj(addr, f"{where}.physical_addresses[{j}]")
            for part in ("address_1", "city", "state_province"):
                text = _text(addr.get(part), f"{where}.physical_addresses[{j}].{part}", LIMITS["text"])
                if text:
                    address_bits.append(text)
            postal_code = postal_code or _text(addr.get("postal_code"), f"{where}.physical_addresses[{j}].postal_code", 12)
        coords = []
        for part in ("latitude", "longitude"):
            value = loc.get(part)
            if value in (None, ""):
                coords.append(None)
                continue
            try:
                number = float(value)
            except (TypeError, ValueError) as err:
                raise RecordError(f"{where}.{part}", "must be a number") from err
            if not -180 <= number <= 180:
                raise RecordError(f"{where}.{part}", "is out of range")
            coords.append(number)
        locations.append(
            Location(
                id=_id(loc.get("id"), f"{where}.id"),
                name=_text(loc.get("name"), f"{where}.name", LIMITS["name"]),
                address=", ".join(address_bits) or None,
                postal_code=postal_code,
                latitude=coords[0],
                longitude=coords[1],
            )
        )
    return locations


def service_from_oruk(raw: Any, extra_area: str | None = None) -> Service:
    """A validated :class:`Service` from one ORUK / HSDS service object, or ``RecordError``."""
    if not isinstance(raw, dict):
        raise RecordError("(record)", f"must be a service object, got {type(raw).__name__}")
    service_id = _id(raw.get("id"), "id")
    name = _text(raw.get("name"), "name", LIMITS["name"], required=True)
    org = raw.get("organization")
    if org is None and raw.get("organization_id") is not None:
        org = {"id": raw.get("organization_id"), "name": raw.get("organization_name")}
    if org is None:
        raise RecordError("organization", "is required (an object with id and name)")
    org = _obj(org, "organization")
    org_id = _id(org.get("id"), "organization.id")
    org_name = _text(org.get("name"), "organization.name", LIMITS["organization"], required=True)
    org_url = org.get("url")
    if isinstance(org_url, str) and len(org_url) > LIMITS["url"]:
        raise RecordError("organization.url", f"must be a web address of at most {LIMITS['url']} characters")
    org_url = safe_url(org_url) if isinstance(org_url, str) and org_url.strip() else None
    url = raw.get("url")
    if url not in (None, ""):
        if not isinstance(url, str) or len(url) > LIMITS["url"]:
            raise RecordError("url", "must be a web address of at most 2000 characters")
        url = safe_url(url)
        if url is None:
            raise RecordError("url", "must be an http or https web address")
    else:
        url = None
    email = _text(raw.get("email"), "email", LIMITS["email"])
    if email and not is_email(email):
        raise RecordError("email", f"{email[:60]!r} is not an email address")
    status = _text(raw.get("status"), "status", 40) or "active"
    if status not in ("active", "inactive", "defunct", "temporarily closed"):
        raise RecordError("status", f"{status[:40]!r} must be active, inactive, defunct or temporarily closed")
    schedules, hours = _schedules(raw)
    min_age, max_age, eligibility = _eligibility(raw)
    cost_options, fees = _cost(raw)
    areas, area_names = _areas(raw, extra_area)
    categories, terms, audiences = _taxonomy(raw)
    last_verified = _date(raw.get("assured_date", raw.get("last_verified")), "assured_date")
    return Service(
        id=service_id,
        name=name,
        organization_id=org_id,
        organization=org_name,
        organization_url=org_url,
        description=_text(raw.get("description"), "description", LIMITS["description"], multiline=True) or "",
        url=url,
        email=email,
        status=status,
        phones=tuple(_phones(raw)),
        schedules=tuple(schedules),
        hours=hours,
        min_age=min_age,
        max_age=max_age,
        eligibility=eligibility,
        cost_options=tuple(cost_options),
        fees=fees,
        areas=tuple(areas),
        area_names=tuple(area_names),
        categories=tuple(categories),
        terms=tuple(terms),
        audiences=tuple(audiences),
        locations=tuple(_locations(raw)),
        source=_text(raw.get("source"), "source", LIMITS["text"]),
        last_verified=last_verified,
        synthetic=_bool(raw.get("synthetic"), "synthetic"),
    )


# ---- writing one record ---------------------------------------------------------------------------

def service_to_oruk(s: Service) -> dict[str, Any]:
    """The ORUK v1 service object (with the project's ``source``/``synthetic``/``hours`` additions)."""
    phones = [{"id": f"{s.id}/phone/{i}", "number": p.number, "description": p.description} for i, p in enumerate(s.phones)]
    schedules = [
        {
            "id": f"{s.id}/schedule/{i}",
            "byday": ",".join(sc.byday),
            "opens_at": sc.opens_at,
            "closes_at": sc.closes_at,
            "freq": "WEEKLY",
            "description": sc.description,
        }
        for i, sc in enumerate(s.schedules)
    ]
    areas = [{"id": f"{s.id}/area/{i}", "service_area": a} for i, a in enumerate([*s.areas, *s.area_names])]
    taxonomy = [
        {"id": f"{s.id}/taxonomy/{c}", "taxonomy": {"id": f"{CATEGORY_VOCABULARY}:{c}", "name": c, "vocabulary": CATEGORY_VOCABULARY}}
        for c in s.categories
    ] + [
        {"id": f"{s.id}/term/{i}", "taxonomy": {"id": f"term:{hashlib.sha1(t.encode()).hexdigest()[:12]}", "name": t, "vocabulary": None}}
        for i, t in enumerate(s.terms)
    ] + [
        {"id": f"{s.id}/audience/{a}", "taxonomy": {"id": f"{AUDIENCE_VOCABULARY}:{a}", "name": a, "vocabulary": AUDIENCE_VOCABULARY}}
        for a in s.audiences
    ]
    eligibility = []
    if s.min_age is not None or s.max_age is not None or s.eligibility:
        eligibility.append(
            {"id": f"{s.id}/eligibility/0", "eligibility": s.eligibility, "minimum_age": s.min_age, "maximum_age": s.max_age}
        )
    cost_options = [
        {"id": f"{s.id}/cost/{i}", "option": c.option, "amount": c.amount, "amount_description": c.description}
        for i, c in enumerate(s.cost_options)
    ]
    locations = [
        {
            "id": f"{s.id}/at/{loc.id}",
            "location": {
                "id": loc.id,
                "name": loc.name,
                "latitude": loc.latitude,
                "longitude": loc.longitude,
                "physical_addresses": [{"address_1": loc.address, "postal_code": loc.postal_code}] if loc.address or loc.postal_code else [],
            },
        }
        for loc in s.locations
    ]
    return {
        "id": s.id,
        "name": s.name,
        "description": s.description,
        "url": s.url,
        "email": s.email,
        "status": s.status,
        "fees": s.fees,
        "assured_date": s.last_verified.isoformat() if s.last_verified else None,
        "organization": {"id": s.organization_id, "name": s.organization, "url": s.organization_url},
        "contacts": [{"id": f"{s.id}/contact/0", "name": s.name, "phones": phones}] if phones else [],
        "regular_schedules": schedules + ([{"id": f"{s.id}/schedule/hours", "description": s.hours}] if s.hours else []),
        "eligibilitys": eligibility,
        "cost_options": cost_options,
        "service_areas": areas,
        "service_taxonomys": taxonomy,
        "service_at_locations": locations,
        "source": s.source,
        "synthetic": s.synthetic,
    }
