"""The path of every chat message: screen, redact, record, then forward to Rasa; answer within 3 seconds.

1. Screen the ORIGINAL text in memory (``bot.safeguarding.screen``); it is never stored or logged.
2. Redact it (``bot.privacy.redact``); only the redacted text goes any further.
3. Record the turn with ``EscalationStore.record_turn`` (message, escalation, outbox and audit in one
   transaction) and only then
4. forward to Rasa: the redacted text, or, when the screening says escalate, the cue
   ``/safeguarding_cue{"categories": [...], "immediate_danger": ...}`` with the redacted text as metadata.
5. If Rasa or the action server is slow or down, answer from ``bot.replies`` instead (the area's number,
   and 999 and the safety answer when there is danger): never silence. A store that is slow or down
   does not hold the answer up either: each step has its share of the 3 seconds.
6. When the message raised a safeguarding escalation, the turn starts with a ``{"type": "safety"}`` card:
   999 and the area's number to call now, as ``tel:`` links, which the widget shows at once.

Every failure of a part (Rasa, the action server, the stores) is logged and kept in ``Gateway.health``,
which ``/readyz`` shows.

When the screening is unsure, the text goes to Rasa as usual and one gentle safety question is added;
a "yes" to it is escalated with the context of the message that raised it.

The triage's guided question about harm ("Has anyone hurt the child, or are they frightened or unsafe?")
escalates when answered "yes", by its button or typed: the gateway sees the question's buttons in Rasa's
reply and remembers, in the chat session (the shared database, so any web instance answers the next
message), that it was the last question asked. A typed reply that picks "yes" (``bot.replies.match_option``:
"yes", "yeah", "yes he does" ...) is then escalated and sent to Rasa as the button's payload.

An escalating turn has a larger share of the answer budget for its commit (``ESCALATION_STORE_SECONDS``),
and its safety card says whether the escalation was committed (``custom.recorded``); when it could not be
confirmed in time the person is told to call, and the log says so (without the message).
"""
from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
import uuid
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Callable

import aiohttp

from bot.privacy import contact_details, redact
from bot.safeguarding import screen
from bot.web.storage import ChatSession

log = logging.getLogger("bot.web.gateway")

DEADLINE_SECONDS = 2.9  # the whole answer, from the message arriving
STORE_SECONDS = 0.8  # the most one store step may take before we answer without it (of the 2.9 s budget)
ESCALATION_STORE_SECONDS = 1.6  # the commit of an escalating turn comes first: it may take this much of the 2.9 s
SAVE_RESERVE = 0.3  # kept back from Rasa's share for saving the session afterwards
SAFETY_YES = "/safety_check_yes"
SAFETY_NO = "/safety_check_no"
SAFETY_QUESTION = "Is anyone in danger or being hurt?"
SAFETY_WHICH = ("Just to check, before we carry on: is anyone in danger or being hurt right now? "
                "If so, call 999 straight away.")
RESERVED_INTENTS = ("/safeguarding_cue",)
# the guided question about harm answered "yes" by its button (bot.replies.followup_question)
_HARM_DISCLOSED = re.compile(r'^/answer_question\s*\{\s*"question"\s*:\s*"harm"\s*,\s*"answer"\s*:\s*"yes"\s*\}$')
_HARM_BUTTON = re.compile(r'^/answer_question\s*(\{.*\})\s*$', re.S)
HARM_YES_PAYLOAD = '/answer_question{"question": "harm", "answer": "yes"}'
NOT_RECORDED = ("I can't be sure this has reached the council's safety team just now, so please call one of "
                "the numbers above yourself.")
# what the widget's plain buttons send: an intent name, never free words (a payload carrying values is screened)
_BUTTON_PAYLOAD = re.compile(r'^/[a-z_]{2,40}$')
CONTACT_PASSED_ON = ("Thank you. I have passed your contact details to the duty team with what you told me. "
                     "If anyone is in danger right now, call 999.")
# what is left of a message once its phone numbers and emails are redacted, when it said nothing else
_ONLY_CONTACT = re.compile(r"^(?:\W|\[(?:phone|email)\]|call|ring|text|email|me|on|at|is|my|number|it's|its|"
                           r"yes|yeah|ok|please|thanks|you|can|the|or|and)*$", re.I)
SPEAKER_PAYLOADS = {"/identify_parent": "parent", "/identify_young_person": "young_person", "/identify_professional": "professional"}
_YES = re.compile(r"^\s*(yes|yeah|yep|yh|ye|y|yes please|yes someone is in danger|someone is in danger|they are|i am)\b[\s.!]*$", re.I)
_NO = re.compile(r"^\s*(no|nope|nah|n|no one is|nobody|no thanks)\b[\s.!]*$", re.I)


def _asks_yes_or_no(messages: list[dict[str, Any]]) -> bool:
    """Whether the assistant's own reply asks a question answered yes or no (the details check, "anything
    else?"), so that a typed "yes" after the safety question added to it could answer either."""
    return any(b.get("payload") in ("/affirm", "/deny") or str(b.get("title", "")).lower().startswith("yes")
               for m in messages for b in m.get("buttons") or [])


def _only_contact(redacted: str) -> bool:
    """Whether a message was only a way to be contacted ("07700 900123", "call me on [phone] please")."""
    return ("[phone]" in redacted or "[email]" in redacted) and bool(_ONLY_CONTACT.match(redacted))


class StoreUnavailable(Exception):
    """A store failed or was too slow for the 3-second answer."""


@dataclass
class Turn:
    """What one message led to."""

    messages: list[dict[str, Any]]
    escalation: dict | None = None
    fallback: bool = False
    screening: dict = field(default_factory=dict)
    recorded: bool = True  # False: an escalating turn whose commit could not be confirmed in time


def harm_question_in(messages: list[dict[str, Any]]) -> dict | None:
    """The triage's harm question among Rasa's replies, as ``{"options": [{"title", "value", "payload"}]}``
    (read from its buttons), or None when the replies do not ask it."""
    options = []
    for message in messages:
        for button in message.get("buttons") or []:
            found = _HARM_BUTTON.match(button.get("payload") or "")
            if not found:
                continue
            try:
                doc = json.loads(found.group(1))
            except ValueError:
                continue
            if isinstance(doc, dict) and doc.get("question") == "harm" and isinstance(doc.get("answer"), str):
                options.append({"title": button.get("title") or doc["answer"], "value": doc["answer"][:40],
                                "payload": button["payload"]})
    return {"options": options[:6]} if options else None


def typed_harm_answer(question: dict | None, text: str) -> str | None:
    """The option a typed reply picks for the harm question ("yeah" -> "yes"), or None."""
    if not question or not text or text.startswith("/"):
        return None
    from bot.replies import match_option

    try:
        return match_option(question, text[:500])
    except Exception:  # a malformed remembered question: treat the text as text
        log.exception("reading a typed answer to the harm question failed")
        return None


def say(text: str, buttons: list[tuple[str, str]] | None = None, custom: dict | None = None) -> dict[str, Any]:
    return {"text": text, "buttons": [{"title": t, "payload": p} for t, p in (buttons or [])], "custom": custom}


def safety_question() -> dict[str, Any]:
    return say(SAFETY_QUESTION, [("Yes, someone is in danger", SAFETY_YES), ("No", SAFETY_NO)],
               custom={"type": "safety_question"})


def normalise_reply(item: Any) -> dict[str, Any] | None:
    """One reply in the widget's shape: text, buttons (title and payload as strings) and custom (a dict)."""
    if not isinstance(item, dict):
        return None
    text = item.get("text")
    text = text if isinstance(text, str) else None
    buttons = []
    for button in item.get("buttons") or []:
        if isinstance(button, dict) and isinstance(button.get("title"), str) and isinstance(button.get("payload"), str):
            buttons.append({"title": button["title"][:200], "payload": button["payload"][:500]})
    custom = item.get("custom")
    custom = custom if isinstance(custom, dict) else None
    if text is None and not buttons and custom is None:
        return None
    return {"text": text, "buttons": buttons, "custom": custom}


CARD_TYPES = ("service_cards", "pathway")


def merge_cards(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rasa sends a reply's text (with its buttons) and its ``custom`` card as two messages; put a card
    back with the text before it, so the widget shows the card in place of the same facts as plain text."""
    out: list[dict[str, Any]] = []
    for message in messages:
        custom = message.get("custom") or {}
        previous = out[-1] if out else None
        if (previous is not None and custom.get("type") in CARD_TYPES and message.get("text") is None
                and not message.get("buttons") and previous.get("custom") is None and previous.get("text")):
            previous["custom"] = custom
            continue
        out.append(message)
    return out


def _area_of(area_id: str | None) -> str | None:
    from bot.areas import load_areas

    return area_id if area_id and area_id in load_areas() else None


def fallback_replies(screening: dict, area: str | None, speaker: str | None) -> list[dict[str, Any]]:
    """What we say without Rasa: 999 and who to call when there is danger, else how to talk to a person."""
    from bot import replies

    out: list[dict[str, Any]] = []
    try:
        if screening.get("escalate") or screening.get("immediate_danger"):
            out += replies.safety_answer(screening, area, speaker)
        else:
            out.append(say("Sorry, I can't answer properly just now. You can still talk to a person."))
            out += replies.talk_to_person(area)
    except Exception:  # the knowledge files themselves failed: still never silence
        log.exception("fallback replies failed")
        out = [say("Sorry, I can't answer just now. If a child is in danger, call 999 straight away. "
                   "Otherwise please contact your council's children's services.")]
    if screening.get("immediate_danger") and not any("999" in (r.get("text") or "") for r in out):
        out.insert(0, say("If you or a child are in danger right now, call 999 straight away."))
    return [r for r in (normalise_reply(x) for x in out) if r]


def safety_card(screening: dict, area: str | None, at: dt.datetime | None = None,
                recorded: bool | None = None) -> dict[str, Any] | None:
    """The card the widget shows first after a safeguarding cue: 999 and who to call now, as tel: links.
    ``recorded`` says whether the escalation was committed for the duty team (None: not known)."""
    if not (screening.get("escalate") or screening.get("immediate_danger")):
        return None
    from bot.areas import load_areas
    from bot.contacts import child_at_risk_contacts

    moment = at or dt.datetime.now(dt.timezone.utc)
    contacts = []
    try:
        areas = load_areas()
        chosen = [areas[area]] if area in areas else list(areas.values())
        for item in chosen:
            now = child_at_risk_contacts(item, moment)[0]
            contacts.append({"area": item.id, "area_name": item.name, "name": now.name, "phone": now.phone,
                             "hours": now.hours})
    except Exception:
        log.exception("the safety card's contacts failed")
    immediate = bool(screening.get("immediate_danger"))
    title = ("Call 999 now if you or a child are in danger." if immediate
             else "If a child is in danger, call 999. You can also talk to someone now.")
    return {"text": title, "buttons": [],
            "custom": {"type": "safety", "immediate_danger": immediate, "title": title, "emergency": "999",
                       "area_known": area in {c["area"] for c in contacts}, "contacts": contacts,
                       "recorded": recorded}}


def warm_answers() -> None:
    """Load what the answer to a safeguarding message needs (the area finder, the reply and contact
    knowledge, redaction) before the first message, so the first person after a (re)start is not the one
    who waits for it. Called by the app's warm-up (``bot.web.app``), after the screen and the redaction
    engine. Failures show up on first use instead."""
    try:
        from bot.places import resolve_area

        resolve_area("Gloucester")
        fallback_replies({"escalate": True, "immediate_danger": True, "categories": ["physical_abuse"]}, None, None)
        safety_card({"escalate": True}, None)
        contact_details("call me on 07700 900123")
        redact("my son Tom")
    except Exception:
        log.exception("warming the gateway's answers failed")


class Health:
    """Recent failures of the parts the chat depends on, for ``/readyz`` (and the logs)."""

    PARTS = ("rasa", "action_server", "stores")

    def __init__(self, window_seconds: float = 300):
        self.window = window_seconds
        self._failures: dict[str, deque[tuple[float, str]]] = {p: deque(maxlen=50) for p in self.PARTS}
        self._last_ok: dict[str, float] = {}

    def failed(self, part: str, detail: str) -> None:
        self._failures[part].append((time.time(), detail))
        log.warning("%s failed: %s", part, detail)

    def ok(self, part: str) -> None:
        self._last_ok[part] = time.time()

    def snapshot(self) -> dict[str, dict]:
        now = time.time()
        out = {}
        for part in self.PARTS:
            recent = [(t, d) for t, d in self._failures[part] if t > now - self.window]
            last = self._failures[part][-1] if self._failures[part] else None
            last_ok = self._last_ok.get(part)
            out[part] = {
                "failures_last_5_minutes": len(recent),
                "last_failure": None if last is None else {
                    "at": dt.datetime.fromtimestamp(last[0], dt.timezone.utc).isoformat(timespec="seconds"),
                    "detail": last[1]},
                "failing_now": last is not None and (last_ok is None or last_ok < last[0]) and last[0] > now - self.window,
            }
        return out


class Gateway:
    def __init__(self, settings, store, web_store, http: aiohttp.ClientSession,
                 on_escalation: Callable[[dict], None] | None = None):
        self.settings = settings
        self.store = store
        self.web_store = web_store
        self.http = http
        self.on_escalation = on_escalation
        self.health = Health()

    async def in_store(self, fn, *args, seconds: float | None = None, **kwargs):
        """``fn(*args)`` in a thread, or raise ``StoreUnavailable`` if it fails or takes over ``seconds``
        (default: the store's share of the answer budget)."""
        if seconds is None:
            budget = getattr(self.settings, "answer_seconds", DEADLINE_SECONDS)
            seconds = STORE_SECONDS * budget / DEADLINE_SECONDS
        try:
            result = await asyncio.wait_for(asyncio.to_thread(fn, *args, **kwargs), max(0.05, seconds))
        except asyncio.TimeoutError:
            self.health.failed("stores", f"{getattr(fn, '__name__', 'store call')} took over {seconds:.1f} s")
            raise StoreUnavailable("slow") from None
        except Exception as err:
            self.health.failed("stores", f"{getattr(fn, '__name__', 'store call')}: {type(err).__name__}")
            raise StoreUnavailable(type(err).__name__) from err
        self.health.ok("stores")
        return result

    async def degraded(self, text: str) -> Turn:
        """The answer when the session cannot be read (the store is down or slow): screen the message in
        memory and give 999 and the right numbers; nothing is stored and nothing goes to Rasa."""
        stripped = text.strip()
        screening = (await asyncio.to_thread(screen, stripped)).to_dict()
        area = None
        if not stripped.startswith("/"):
            from bot.places import resolve_area

            try:
                match = resolve_area(stripped)
                area = match.area_id if match else None
            except Exception:
                area = None
        messages = fallback_replies(screening, area, None)
        card = safety_card(screening, area, recorded=False)
        if card:
            messages.insert(0, card)
            messages.insert(1, say(NOT_RECORDED))
        if screening["escalate"]:
            log.error("SAFEGUARDING CUE NOT RECORDED: the store is unavailable (categories=%s immediate=%s)",
                      screening["categories"], screening["immediate_danger"])
        return Turn(messages, None, True, screening, recorded=not screening["escalate"])

    async def handle(self, session: ChatSession, text: str, message_id: str | None = None,
                     started: float | None = None) -> Turn:
        started = time.monotonic() if started is None else started
        deadline = started + getattr(self.settings, "answer_seconds", DEADLINE_SECONDS)
        message_id = message_id or uuid.uuid4().hex
        stripped = text.strip()
        if stripped.lower().startswith(RESERVED_INTENTS):
            stripped = stripped.lstrip("/")  # only the gateway may send a cue: the person's copy is plain text

        state = session.pending_safety if isinstance(session.pending_safety, dict) else {}
        safety_pending = state if ("text" in state or "categories" in state) else None
        harm_question = state.get("harm_question") if isinstance(state.get("harm_question"), dict) else None

        held = state.get("held") if safety_pending else None
        if safety_pending and state.get("ambiguous") and not held and _YES.match(stripped):
            # The last reply asked the assistant's own yes/no question ("Is that right?") and the safety
            # question: a typed "yes" could answer either. Ask which, holding the "yes" (a button is never
            # ambiguous; danger is one tap away and 999 is in the question).
            session.pending_safety = {**state, "held": stripped}
            await self._save(session, deadline)
            return Turn([say(SAFETY_WHICH, [("Yes, someone is in danger", SAFETY_YES), ("No", SAFETY_NO)])])

        preface: list[dict[str, Any]] = []
        if stripped == SAFETY_NO or (safety_pending and _NO.match(stripped)):
            session.pending_safety = {"harm_question": harm_question} if harm_question else None
            if not held:
                await self._save(session, deadline)
                return Turn([say("Thank you. If that changes, call 999. Let's carry on: you can answer my last question.")])
            # no danger: the held "yes" answers the assistant's own question, as the person meant it
            preface = [say("Thank you. If that changes, call 999.")]
            stripped, safety_pending, state = held, None, {}

        said_yes = stripped == SAFETY_YES or bool(safety_pending and _YES.match(stripped))
        pending = safety_pending or {}
        session.pending_safety = None
        harm_yes = _HARM_DISCLOSED.match(stripped) is not None
        typed_harm_yes = not said_yes and not harm_yes and typed_harm_answer(harm_question, stripped) == "yes"
        if said_yes:
            screening = {"escalate": True, "immediate_danger": True, "categories": list(pending.get("categories") or []),
                         "matched": [], "unsure": False}
            context = pending.get("text") or ""
            redacted = (f"{context} [answered the safety question: yes, someone is in danger]").strip()
            original = stripped
        elif harm_yes:
            # "Yes" to the guided question "Has anyone hurt the child, or are they frightened or unsafe?" is a
            # disclosure in a button: the duty team hears of it like any typed cue, and Rasa still gets the
            # answer, so the level it gives is the safeguarding one with 999 and the number to call now.
            screening = {"escalate": True, "immediate_danger": False, "categories": [], "unsure": False,
                         "matched": ["answered yes to: has anyone hurt the child, or are they frightened or unsafe?"]}
            redacted = "[answered yes to the guided question: has anyone hurt the child, or are they frightened or unsafe?]"
            original = stripped
        elif typed_harm_yes:
            # the same "yes", typed: escalated as the button is, with whatever else the message says
            # screened as usual (a cue in it adds its categories and any immediate danger)
            found = (await asyncio.to_thread(screen, stripped)).to_dict()
            screening = {"escalate": True, "immediate_danger": bool(found["immediate_danger"]),
                         "categories": list(found["categories"]), "unsure": False,
                         "matched": ["answered yes (typed) to: has anyone hurt the child, or are they frightened or unsafe?",
                                     *found.get("matched", [])]}
            redacted = ("[answered yes to the guided question: has anyone hurt the child, or are they frightened or "
                        f"unsafe?] {await asyncio.to_thread(redact, stripped)}")
            original = stripped
        elif _BUTTON_PAYLOAD.match(stripped):
            # a button's payload ("/identify_young_person", "/show_more_services") is not the person's words:
            # screening it read "young person" as a grooming cue. (Anything more after the slash is screened.)
            screening = {"escalate": False, "immediate_danger": False, "categories": [], "matched": [], "unsure": False}
            redacted = original = stripped
        else:
            screening = (await asyncio.to_thread(screen, stripped)).to_dict()
            redacted = await asyncio.to_thread(redact, stripped)  # 10-40 ms, more for long text: off the loop
            original = stripped
        is_payload = stripped.startswith("/")
        if not is_payload:
            self._update_area(session, original)
        session.speaker = SPEAKER_PAYLOADS.get(stripped.split("{")[0], session.speaker)

        contact = contact_details(original) if not is_payload else {}
        escalation, recorded, contact_passed = await self._record(session, redacted, screening, contact, message_id,
                                                                  deadline)
        if contact_passed and _only_contact(redacted):
            # "07700 900123" after the offer of a call back: it has gone to the duty team with the escalation;
            # there is nothing in it for the questions to read
            await self._save(session, deadline)
            return Turn([say(CONTACT_PASSED_ON, [("Carry on", "/carry_on"), ("Start again", "/start_again")])],
                        recorded=True, screening=screening)

        if harm_yes or typed_harm_yes:
            # Rasa gets the answer as the button gives it, so the triage records "yes" whatever the wording
            rasa_message = HARM_YES_PAYLOAD if typed_harm_yes else stripped
            metadata = {"text": redacted} if typed_harm_yes else None
        elif screening["escalate"]:
            cue = {"categories": screening["categories"], "immediate_danger": bool(screening["immediate_danger"])}
            rasa_message, metadata = "/safeguarding_cue" + json.dumps(cue), {"text": redacted}
        else:
            rasa_message, metadata = redacted, None
        remaining = deadline - time.monotonic() - SAVE_RESERVE
        answer, actions_up = await asyncio.gather(
            self._ask_rasa(session.sender_id, rasa_message, metadata, min(self.settings.rasa_timeout, remaining)),
            self._actions_up(min(1.0, max(0.05, remaining))),
        )
        fallback = answer is None or not answer
        if fallback:
            messages = fallback_replies(screening, session.area, session.speaker)
            # Rasa did not answer: whether it took this message in is unknown, so a harm question it had
            # asked stays remembered (a later "yes" errs towards the duty team)
            asked_harm = harm_question if not (harm_yes or typed_harm_yes) else None
        else:
            messages = answer
            asked_harm = harm_question_in(messages)
            self._area_from_replies(session, messages)
            if screening["immediate_danger"] and not any("999" in (m.get("text") or "") for m in messages):
                messages.insert(0, say("If you or a child are in danger right now, call 999 straight away."))
            if not actions_up and not screening["escalate"]:
                # Rasa answered, but whatever needed the action server (triage, services, pathways) did not run
                messages.append(say("Sorry, part of the assistant is not working just now, so I may not be able to "
                                    "answer that properly. You can still talk to a person."))
                messages += fallback_replies({}, session.area, session.speaker)[1:]
                fallback = True
        if contact_passed:
            messages.insert(0, say(CONTACT_PASSED_ON))
        card = safety_card(screening, session.area, recorded=recorded if screening["escalate"] else None)
        if card:
            messages.insert(0, card)
            if not recorded:
                messages.insert(1, say(NOT_RECORDED))
        if screening.get("unsure") and not screening["escalate"]:
            session.pending_safety = {"categories": screening["categories"], "text": redacted[:1000],
                                      "ambiguous": _asks_yes_or_no(messages)}
            messages.append(safety_question())
        messages[:0] = preface
        if asked_harm:
            session.pending_safety = {**(session.pending_safety or {}), "harm_question": asked_harm}
        await self._save(session, deadline)
        log.info("turn session=%s escalate=%s immediate=%s unsure=%s recorded=%s fallback=%s ms=%d",
                 session.sender_id[-8:], screening["escalate"], screening["immediate_danger"], screening.get("unsure"),
                 recorded, fallback, (time.monotonic() - started) * 1000)
        return Turn(messages, escalation, fallback, screening, recorded=recorded)

    async def _save(self, session: ChatSession, deadline: float) -> None:
        """Save the session, waiting at most until the deadline (a slow store finishes in the background)."""
        task = asyncio.ensure_future(asyncio.to_thread(self.web_store.save_chat_session, session))
        try:
            await asyncio.wait_for(asyncio.shield(task), max(0.05, deadline - time.monotonic()))
            self.health.ok("stores")
        except asyncio.TimeoutError:
            self.health.failed("stores", "saving the chat session is slow")
        except Exception as err:
            self.health.failed("stores", f"saving the chat session: {type(err).__name__}")

    async def _actions_up(self, timeout: float) -> bool:
        """Whether the action server answers its health check (loopback: a millisecond when it is up)."""
        try:
            async with self.http.get(f"{self.settings.action_url}/health",
                                     timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                up = response.status < 400
        except (aiohttp.ClientError, asyncio.TimeoutError):
            up = False
        if up:
            self.health.ok("action_server")
        else:
            self.health.failed("action_server", "the health check did not answer")
        return up

    def _update_area(self, session: ChatSession, text: str) -> None:
        from bot.places import resolve_area

        try:
            match = resolve_area(text)
        except Exception:
            log.exception("resolve_area failed")
            return
        if match is not None:
            session.area = match.area_id

    def _area_from_replies(self, session: ChatSession, messages: list[dict]) -> None:
        for message in messages:
            custom = message.get("custom") or {}
            area = custom.get("area") if isinstance(custom.get("area"), str) else None
            if area is None and isinstance(custom.get("pathway"), dict):
                area = custom["pathway"].get("area")
            if isinstance(area, str) and _area_of(area):
                session.area = area

    async def _record(self, session: ChatSession, redacted: str, screening: dict, contact: dict, message_id: str,
                      deadline: float | None = None) -> tuple[dict | None, bool, bool]:
        """Record the turn (and escalation) durably before anything is forwarded; returns the escalation (or
        None), whether the record was confirmed, and whether a contact given was passed on to an earlier
        escalation. An escalating turn may use ``ESCALATION_STORE_SECONDS`` of the budget (an ordinary one
        ``STORE_SECONDS``) and is tried a second time after a quick failure; the same message id makes a retry
        return the escalation already recorded, never a second one. A contact given after an escalation is
        passed to the duty team with that escalation. A store that fails or is slow is logged (and shown on
        /readyz); the person's answer does not wait for it."""
        given = {kind: ", ".join(values) for kind, values in contact.items()} or None
        escalate = bool(screening["escalate"])
        budget = getattr(self.settings, "answer_seconds", DEADLINE_SECONDS)
        share = (ESCALATION_STORE_SECONDS if escalate else STORE_SECONDS) * budget / DEADLINE_SECONDS
        until = time.monotonic() + share
        if deadline is not None:
            # late already (a cold start, a loaded machine): an escalation still gets a fair try at its commit
            until = min(until, max(deadline - 0.5, time.monotonic() + (0.4 if escalate else 0.05)))
        attempts = 2 if escalate else 1
        escalation = None
        for attempt in range(attempts):
            try:
                escalation = await self.in_store(
                    self.store.record_turn, session.sender_id, redacted, area=_area_of(session.area),
                    categories=list(screening["categories"]), immediate_danger=bool(screening["immediate_danger"]),
                    escalate=escalate, contact=given if escalate else None,
                    speaker=session.speaker, message_id=f"{session.sender_id}:{message_id}",
                    seconds=max(0.05, until - time.monotonic()))
                break
            except StoreUnavailable as err:
                if attempt + 1 < attempts and until - time.monotonic() > 0.2 and str(err) != "slow":
                    await asyncio.sleep(0.05)
                    continue
                if escalate:
                    log.error("SAFEGUARDING ESCALATION NOT CONFIRMED (session %s): the escalation store is %s",
                              session.sender_id[-8:], err)
                else:
                    log.error("recording the turn failed (session %s): %s", session.sender_id[-8:], err)
                return None, False, False
        if escalation is not None:
            session.last_escalation_id = escalation["id"]
            if self.on_escalation:
                self.on_escalation(escalation)
        elif given and session.last_escalation_id:
            if await asyncio.to_thread(self._add_contact, session.last_escalation_id, given):
                if self.on_escalation:
                    self.on_escalation({"id": session.last_escalation_id})
                return None, True, True
        return escalation, True, False

    def _add_contact(self, escalation_id: str, given: dict) -> bool:
        try:
            self.store.add_contact(escalation_id, given, by="the person, in the chat")
            return True
        except Exception:
            log.exception("passing on a contact failed")
            return False

    async def _ask_rasa(self, sender: str, message: str, metadata: dict | None, timeout: float) -> list[dict] | None:
        """Rasa's replies, normalised; None when Rasa is slow, down or answers nonsense."""
        if timeout <= 0.05:
            return None
        body: dict[str, Any] = {"sender": sender, "message": message}
        if metadata:
            body["metadata"] = metadata
        try:
            async with self.http.post(f"{self.settings.rasa_url}/webhooks/rest/webhook", json=body,
                                      timeout=aiohttp.ClientTimeout(total=timeout)) as response:
                if response.status != 200:
                    self.health.failed("rasa", f"answered HTTP {response.status}")
                    return None
                doc = await response.json(content_type=None)
        except asyncio.TimeoutError:
            self.health.failed("rasa", f"no answer within {timeout:.1f} s")
            return None
        except (aiohttp.ClientError, ValueError) as err:
            self.health.failed("rasa", f"unavailable ({type(err).__name__})")
            return None
        if not isinstance(doc, list):
            self.health.failed("rasa", "answered something that is not a list of messages")
            return None
        replies = merge_cards([r for r in (normalise_reply(x) for x in doc) if r])
        if not replies:
            # Rasa says nothing when a custom action failed (it logs why): the person gets the fallback, and
            # /readyz counts it, so a failing action pool (e.g. a proxy refusing large trackers) is seen
            self.health.failed("rasa", "answered with no messages (an action failed? see Rasa's log)")
            return replies
        self.health.ok("rasa")
        return replies
