"""What the assistant says at the moments that matter, composed from the knowledge modules.

Replies are plain dicts (``text``, optional ``buttons`` and ``custom``) so the Rasa actions, the web
app's fallback and the tests all share them. Facts come from the area files and the directory with
their sources; nothing here is a number or a name typed by hand, except 999.
"""
from __future__ import annotations

import datetime as dt
import json
import re
from typing import Any, Iterable

from bot.areas import Area, get_area, load_areas
from bot.contacts import ContactNow, child_at_risk_contacts, parse_moment, talk_to_person_contacts
from bot.details import describe_age
from bot.errors import BadInput
from bot.pathways import pathway_report, render_pathway

Reply = dict[str, Any]
EMERGENCY_LINE = "If a child is in immediate danger, call 999 now."
SPEAKER_WORDS = {"parent": "a parent or carer", "young_person": "a young person", "professional": "a professional"}


def say(text: str, buttons: Iterable[tuple[str, str]] = (), custom: dict | None = None) -> Reply:
    reply: Reply = {"text": text}
    if buttons:
        reply["buttons"] = [{"title": title, "payload": payload} for title, payload in buttons]
    if custom:
        reply["custom"] = custom
    return reply


def contact_line(contact: ContactNow) -> str:
    how = " or ".join(x for x in (contact.phone and _phone(contact), contact.email, contact.url) if x)
    return f"{contact.name}: {how} ({contact.hours}). Source: {contact.source}, checked {contact.last_verified}."


def _phone(contact: ContactNow) -> str:
    return f"{contact.phone} ({contact.phone_note})" if contact.phone_note else str(contact.phone)


def _moment(at: str | dt.datetime | None) -> dt.datetime:
    return at if isinstance(at, dt.datetime) else parse_moment(at)


def summary(speaker: str | None, area_id: str | None, place: str | None, age: int | None, concern: str | None) -> Reply:
    """Read back what we were told, so the person can correct it before we answer."""
    area = load_areas().get(area_id or "")
    where = area.name if area else "not given"
    if area and place and place.lower() != area.name.lower():
        where = f"{place}, {area.name}"
    who_age = "Your age" if speaker == "young_person" else "Child's age"
    lines = [
        "Here's what I have:",
        f"- You are: {SPEAKER_WORDS.get(speaker or '', 'not given')}",
        f"- Area: {where}",
        f"- {who_age}: {describe_age(int(age)) if age is not None else 'not given'}",
        f"- What's happening: {concern or 'not given'}",
        "Is that right?",
    ]
    return say("\n".join(lines), [("Yes, that's right", "/affirm"), ("Change something", "/deny")])


def talk_to_person(area_id: str | None, at: str | dt.datetime | None = None) -> list[Reply]:
    """The area's family information / early help number, or every area's when we don't know it yet."""
    moment = _moment(at)
    if area_id:
        area = get_area(area_id)
        lines = [f"You can talk to a person in {area.name}:"]
        lines += [f"- {contact_line(c)}" for c in talk_to_person_contacts(area, moment)]
        lines.append(EMERGENCY_LINE)
        return [say("\n".join(lines))]
    lines = ["You can talk to a person at your council. Tell me where you live for the right one:"]
    for area in load_areas().values():
        first = talk_to_person_contacts(area, moment)[0]
        lines.append(f"- {area.name}: {contact_line(first)}")
    lines.append(EMERGENCY_LINE)
    return [say("\n".join(lines))]


def call_now_lines(area: Area, moment: dt.datetime) -> list[str]:
    """The area's number to call now about a child at risk, then the others in order."""
    contacts = child_at_risk_contacts(area, moment)
    now = contacts[0]
    lines = [f"To talk to {area.name} children's services about a child at risk of harm, call now: {contact_line(now)}"]
    lines += [f"- Also: {contact_line(c)}" for c in contacts[1:] if c.answering_now]
    return lines


def safety_answer(
    screening: dict,
    area_id: str | None,
    speaker: str | None,
    at: str | dt.datetime | None = None,
    form_paused: bool = False,
) -> list[Reply]:
    """The reply to a safeguarding cue: 999 first when there is danger, then who to call now."""
    from bot.national import load_national_services
    from bot.safeguarding import recommended_lines

    moment = _moment(at)
    replies: list[Reply] = []
    if screening.get("immediate_danger"):
        replies.append(say("If you or a child are in danger right now, call 999 straight away."))
    else:
        replies.append(say("Thank you for telling me. What you've said matters, and you don't have to deal with it alone."))
    if area_id:
        lines = call_now_lines(get_area(area_id), moment)
    else:
        lines = ["The number to call now about a child at risk, by area:"]
        for area in load_areas().values():
            lines.append(f"- {area.name}: {contact_line(child_at_risk_contacts(area, moment)[0])}")
    national = load_national_services()
    for service_id in recommended_lines(list(screening.get("categories", [])), speaker)[:2]:
        service = national.get(service_id)
        if service:
            lines.append(f"{service.name}: {service.how_to_reach()} ({service.hours}). {service.for_whom}")
    if not screening.get("immediate_danger"):
        lines.append("If anyone is in immediate danger, call 999.")
    replies.append(say("\n".join(lines)))
    if speaker == "young_person":
        offer = (
            "I have passed what you said to the council's duty team, without your name. You can stay anonymous. "
            "If you'd like someone to contact you, you can tell me a safe way to reach you."
        )
    else:
        offer = (
            "I have passed this to the council's duty team so that someone can look at it. "
            "If you'd like them to contact you, tell me a phone number or email. If telling the child's "
            "parents could put the child at more risk, say so and they will not be told first."
        )
    # the person can go on to the questions and the support near them either way: where they left off, or
    # (a worry as the first message) from what they have said so far
    after = (" When you're ready, we can carry on where we left off." if form_paused
             else " When you're ready, I can also ask a few short questions and show you support near you.")
    replies.append(say(offer + after, [("Carry on", "/carry_on"), ("Start again", "/start_again")]))
    return replies


MAX_FOLLOWUPS = 3  # guided questions at most before the answer: enough to settle a level, not an interrogation


def _triage_answers(speaker: str | None, age: int | None, answers: dict[str, Any] | None) -> dict[str, Any]:
    given: dict[str, Any] = {k: v for k, v in (answers or {}).items() if v is not None}
    if speaker:
        given["speaker"] = speaker
    if age is not None and age >= 0:
        given["age"] = int(age)
    return given


def next_followup(speaker: str | None, area_id: str, age: int | None, concern: str,
                  answers: dict[str, Any] | None = None, asked: list[str] | int = ()) -> dict | None:
    """The guided question to ask before the answer (``bot.triage.follow_up``), or None when the level is
    clear enough or ``MAX_FOLLOWUPS`` have been asked. A question is ``{"id", "text", "options": [...]}``."""
    from bot.triage import follow_up

    if isinstance(asked, int):
        asked = ["?"] * asked
    if len(asked) >= MAX_FOLLOWUPS:
        return None
    step = follow_up(concern, answers=_triage_answers(speaker, age, answers), area=area_id, asked=list(asked))
    return step.question


def record_answer(answers: dict[str, Any] | None, question_id: Any, reply: Any) -> dict[str, Any] | None:
    """``answers`` with this reply recorded, or None when the question or the answer is not one of ours
    (a stale or tampered button)."""
    from bot.triage import record_answer as record

    try:
        return record(answers, question_id, reply)
    except BadInput:
        return None


def followup_question(question: dict, again: bool = False) -> Reply:
    """A guided question with one button per answer (the payload carries the question id and the value)."""
    text = question["text"]
    if again:
        text = "Sorry, I didn't catch that. " + text + " Please choose one of these."
    buttons = [
        (o["title"], "/answer_question" + json.dumps({"question": question["id"], "answer": o["value"]}))
        for o in question["options"]
    ]
    return say(text, buttons)


_YES = {"yes", "y", "yeah", "yep", "yh", "ye", "yes it is", "yes they have", "correct"}
_NO = {"no", "n", "nope", "nah", "no one", "noone", "nobody", "not really"}


def _plain(text: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("’", "'"))).strip()


def match_option(question: dict, text: str) -> str | None:
    """The option a typed reply picks ("yeah" -> yes, "a few weeks" -> weeks), or None."""
    if not isinstance(text, str):
        return None
    typed = _plain(text)
    if not typed:
        return None
    options = question.get("options", [])
    for option in options:
        if typed in (_plain(option["title"]), _plain(str(option["value"]))):
            return option["value"]
    values = {str(o["value"]).lower(): o["value"] for o in options}
    if "yes" in values and typed in _YES:
        return values["yes"]
    if "no" in values and typed in _NO:
        return values["no"]
    if "unsure" in values and re.search(r"\b(not sure|unsure|dont know|don't know|dunno|maybe)\b", typed):
        return values["unsure"]
    for option in options:  # "several things really", "months now"
        for word in (_plain(option["title"]), _plain(str(option["value"]))):
            if word and re.search(rf"\b{re.escape(word)}\b", typed):
                return option["value"]
    return None


def level_answer(speaker: str | None, area_id: str, age: int | None, concern: str, at: str | dt.datetime | None = None,
                 answers: dict[str, Any] | None = None) -> tuple[list[Reply], dict]:
    """The level of need in plain words (and the pathway for a professional); returns replies and the assessment."""
    from bot.triage import assess

    moment = _moment(at)
    area = get_area(area_id)
    assessment = assess(concern, answers=_triage_answers(speaker, age, answers), area=area_id).to_dict()
    shared = assessment["shared_level"]
    own = area.level(shared)
    replies: list[Reply] = []
    if shared == 4:
        replies.append(say("\n".join([EMERGENCY_LINE, *call_now_lines(area, moment)])))
    reasons = [r["plain"] for r in assessment["reasons"][:3]]
    noticed = ("\nWhat I noticed: " + "; ".join(reasons) + ".") if reasons else ""
    if speaker == "professional":
        doc = pathway_report(area_id, shared, moment)
        replies.append(say(f"This looks like level {shared} of 4, which {area.name} calls '{own.name}'.{noticed}"))
        replies.append(say(render_pathway(doc), custom={"type": "pathway", "pathway": doc}))
    else:
        replies.append(
            say(
                f"From what you've told me, this sounds like '{own.name}' support (level {own.number} of "
                f"{len(area.levels)} in {area.name}). {own.meaning} {own.response}{noticed}"
            )
        )
    return replies, assessment


CARD_DESCRIPTION_CHARS = 220  # what it does, in the plain-text version; the card carries it whole


def tel_link(number: str | None) -> str | None:
    """A ``tel:`` link for a phone number as written ("0800 1111", "+44 1452 427224"), or None."""
    if not number:
        return None
    digits = re.sub(r"[^\d+]", "", number.replace("(0)", ""))
    digits = digits[0] + digits[1:].replace("+", "") if digits else digits
    return f"tel:{digits}" if len(digits.lstrip("+")) >= 3 else None


def _hours_known(service: dict) -> str | None:
    hours = service.get("hours")
    if not hours or "no_hours" in (service.get("flags") or []) or "not stated" in str(hours).lower():
        return None
    return str(hours)


def service_card(service: dict) -> dict:
    """One card: name, what it does, who it is for, phone (with its tel: link), website and opening hours
    when known, plus the caution lines for what the record lacks. An email address is given only when
    there is neither a phone number nor a website, so every card that has a way to reach it shows one."""
    phone, url = service.get("phone"), service.get("url")
    card = {
        "id": service.get("id"),
        "name": service.get("name"),
        "description": service.get("description") or "",
        "who_for": service.get("who_for"),
        "for_whom": service.get("who_for"),  # the name the widget reads
        "phone": phone,
        "tel": tel_link(phone),
        "url": url,
        "hours": _hours_known(service),
        "area": service.get("area"),
        "caution": list(service.get("caution") or []),
        "complete": service.get("complete", True),
        "weak_match": bool(service.get("weak_match")),
    }
    if not phone and not url and service.get("email"):
        card["email"] = service["email"]
    return card


def _card_lines(card: dict) -> list[str]:
    what = card["description"]
    if len(what) > CARD_DESCRIPTION_CHARS:
        what = what[:CARD_DESCRIPTION_CHARS].rsplit(" ", 1)[0] + "..."
    lines = [f"- {card['name']}: {what}".rstrip()]
    if card.get("who_for"):
        lines.append(f"  For: {card['who_for']}")
    reach = [f"Phone {card['phone']}" if card.get("phone") else None, f"Website {card['url']}" if card.get("url") else None,
             f"Email {card['email']}" if card.get("email") else None]
    if any(reach):
        lines.append("  " + ". ".join(x for x in reach if x))
    if card.get("hours"):
        lines.append(f"  Open: {card['hours']}")
    lines += [f"  ({c})" for c in card["caution"][:2]]  # what the record lacks, not shown as fact
    return lines


def service_cards(services: list[dict], heading: str) -> Reply:
    """Service cards for the widget (``custom.services``, one ``service_card`` each), with a plain-text
    version for channels without cards."""
    if services and all(s.get("weak_match") for s in services):
        heading = "I couldn't find a close match. These are the closest I have:"
    cards = [service_card(s) for s in services]
    lines = [heading]
    for card in cards:
        lines += _card_lines(card)
    return say(
        "\n".join(lines),
        [("Show more", "/show_more_services"), ("None of these fit", "/refine_services")],
        custom={"type": "service_cards", "services": cards},
    )
