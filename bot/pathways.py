""""Where do I refer?": an area's referral pathway at one level of need, ready to show a professional.

Each step, form, contact and timescale comes from the area file with its source, so a professional can
check it against their local procedures; contacts are ordered for the moment of asking.
"""
from __future__ import annotations

import datetime as dt

from bot.areas import CANONICAL_LEVELS, get_area
from bot.contacts import order_for_moment, parse_moment
from bot.errors import BadInput


def pathway_report(area_id: str, level: object, at: str | dt.datetime | None = None) -> dict:
    """The pathway document for ``earlyhelp pathway`` and the assistant's answer to a professional."""
    area = get_area(area_id)
    if isinstance(level, bool) or not isinstance(level, int) or level not in CANONICAL_LEVELS:
        raise BadInput(f"level must be a whole number from 1 to 4, got {level!r}")
    moment = at if isinstance(at, dt.datetime) else parse_moment(at)
    pathway = area.pathway(level)
    own = area.level(level)
    return {
        "area": area.id,
        "area_name": area.name,
        "level": level,
        "label": own.name,
        "summary": pathway.summary,
        "steps": list(pathway.steps),
        "form": pathway.form,
        "decides": pathway.decides,
        "consent": pathway.consent,
        "timescales": [t.model_dump() for t in pathway.timescales],
        "contacts": [c.to_dict() for c in order_for_moment(area, pathway.contacts, moment)],
        "emergency": "999",
        "source": area.cite(pathway.source),
    }


def render_pathway(doc: dict) -> str:
    """Plain text for a professional: what to do, who to contact, consent, how fast, and the source."""
    lines = [f"{doc['area_name']}, level {doc['level']} ({doc['label']}): {doc['summary']}"]
    lines += [f"{i}. {step}" for i, step in enumerate(doc["steps"], 1)]
    if doc["form"]:
        lines.append(f"Form or assessment: {doc['form']}")
    if doc["decides"]:
        lines.append(f"Who decides: {doc['decides']}")
    lines.append(f"Consent: {doc['consent']}")
    for t in doc["timescales"]:
        lines.append(f"Timescale: {t['what']}: {t['within']}")
    for c in doc["contacts"]:
        reach = c["phone"] or c["email"] or c["url"]
        lines.append(f"Contact: {c['name']}, {reach} ({c['hours']})")
    lines.append("If a child is in immediate danger, call 999.")
    lines.append(f"Source: {doc['source']}")
    return "\n".join(lines)
