"""Who to call right now: the area's contacts, ordered for the moment someone asks.

A worried person at 16:45 on a Friday in Scunthorpe must be given the number that answers at 16:45 on
a Friday, not the one that closed at 16:30. Times are Europe/London (summer time included) and England
and Wales bank holidays come from the maintained ``holidays`` package, not a hand-kept list.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import asdict, dataclass
from functools import lru_cache
from zoneinfo import ZoneInfo

import holidays

from bot.areas import Area, Contact, Hours, OfficeHours, Weekly, get_area
from bot.errors import BadInput

LONDON = ZoneInfo("Europe/London")
EMERGENCY = "999"


@lru_cache(maxsize=1)
def _bank_holidays() -> holidays.HolidayBase:
    # England and Wales share their bank holidays bar St David's Day, which is not one.
    return holidays.country_holidays("GB", subdiv="ENG")


def is_bank_holiday(day: dt.date) -> bool:
    return day in _bank_holidays()


def bank_holiday_name(day: dt.date) -> str | None:
    return _bank_holidays().get(day)


def parse_moment(text: str | None) -> dt.datetime:
    """An aware datetime from ISO-8601; a time with no offset is read as Europe/London local time."""
    if text is None:
        return dt.datetime.now(LONDON)
    if not isinstance(text, str):
        raise BadInput("'at' must be an ISO-8601 date and time such as 2026-11-27T16:45:00+00:00")
    try:
        moment = dt.datetime.fromisoformat(text.strip())
    except ValueError as err:
        raise BadInput(f"'at' is not an ISO-8601 date and time: {text!r}") from err
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=LONDON)
    return moment


def _open_weekly(weekly: Weekly, bank_holidays: str, local: dt.datetime) -> bool:
    if bank_holidays == "closed" and is_bank_holiday(local.date()):
        return False
    now = local.time()
    return any(start <= now < end for start, end in weekly.spans(local.weekday()))


def office_open(office: OfficeHours, moment: dt.datetime) -> bool:
    return _open_weekly(office.weekly, office.bank_holidays, moment.astimezone(LONDON))


def answers_at(hours: Hours, office: OfficeHours, moment: dt.datetime) -> bool:
    """Whether a contact with these hours answers at ``moment``; unstated hours count as answering."""
    if hours.kind in ("always", "not_stated"):
        return True
    if hours.kind == "office":
        return office_open(office, moment)
    if hours.kind == "out_of_office":
        return not office_open(office, moment)
    assert hours.weekly is not None  # guaranteed by the schema
    return _open_weekly(hours.weekly, hours.bank_holidays, moment.astimezone(LONDON))


def describe_hours(hours: Hours, office: OfficeHours) -> str:
    """Opening hours in words a person can act on."""
    if hours.kind == "always":
        text = "any time, day or night"
    elif hours.kind == "not_stated":
        text = "hours not stated in the source document"
    elif hours.kind == "office":
        text = office.weekly.describe() + (" (assumed office hours)" if office.assumed else "")
        if office.bank_holidays == "closed":
            text += ", closed on bank holidays"
    elif hours.kind == "out_of_office":
        text = "outside office hours: evenings, weekends and bank holidays"
    else:
        assert hours.weekly is not None
        text = hours.weekly.describe()
        if hours.bank_holidays == "closed":
            text += ", closed on bank holidays"
    return f"{text}. {hours.note}" if hours.note else text


@dataclass(frozen=True)
class ContactNow:
    """A contact as shown to a person: what it is, how to reach it, when, and where the fact came from."""

    id: str
    name: str
    phone: str | None
    role: str
    hours: str
    answering_now: bool
    source: str
    last_verified: str
    phone_note: str | None = None
    email: str | None = None
    url: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)


def contact_now(area: Area, contact: Contact, moment: dt.datetime) -> ContactNow:
    return ContactNow(
        id=contact.id,
        name=contact.name,
        phone=contact.phone,
        role=contact.role,
        hours=describe_hours(contact.hours, area.office_hours),
        answering_now=answers_at(contact.hours, area.office_hours, moment),
        source=area.cite(contact.source),
        last_verified=contact.last_verified.isoformat(),
        phone_note=contact.phone_note,
        email=contact.email,
        url=contact.url,
    )


def order_for_moment(area: Area, contact_ids: list[str], moment: dt.datetime) -> list[ContactNow]:
    """The listed contacts, those answering at ``moment`` first, each group in the listed order."""
    shown = [contact_now(area, area.contact(cid), moment) for cid in contact_ids]
    return sorted(shown, key=lambda c: not c.answering_now)  # sorted() is stable


def child_at_risk_contacts(area: Area, moment: dt.datetime) -> list[ContactNow]:
    """``[0]`` is the number to call now about a child at risk of harm in this area."""
    return order_for_moment(area, area.routing.child_at_risk, moment)


def talk_to_person_contacts(area: Area, moment: dt.datetime) -> list[ContactNow]:
    return order_for_moment(area, area.routing.talk_to_person, moment)


def contacts_report(area_id: str, at: str | None = None) -> dict:
    """The ``earlyhelp contacts`` document (see interfaces.md)."""
    area = get_area(area_id)
    moment = parse_moment(at)
    listed = child_at_risk_contacts(area, moment)
    return {
        "area": area.id,
        "at": moment.isoformat(),
        "in_hours": office_open(area.office_hours, moment),
        "bank_holiday": bank_holiday_name(moment.astimezone(LONDON).date()),
        "emergency": EMERGENCY,
        "contacts": [c.to_dict() for c in listed],
    }
