"""Rasa custom actions: thin adapters from the tracker to the plain modules in ``bot`` and ``directory``.

No fact or rule lives here. Each action reads slots, calls one module function and turns its reply
dicts into dispatcher messages; everything it says can be tested without Rasa in ``tests/bot``.
"""
from __future__ import annotations

import asyncio
import json
import logging
from functools import lru_cache
from typing import Any

from rasa_sdk import Action, FormValidationAction, Tracker
from rasa_sdk.events import ActiveLoop, AllSlotsReset, EventType, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher
from rasa_sdk.types import DomainDict

from bot import analytics, replies
from bot.details import AGE_UNKNOWN, MAX_AGE, read_age, read_speaker, read_stated_age, read_stated_speaker
from bot.errors import BadInput
from bot.places import elsewhere, find_places, outward_code, place_in_sentence

log = logging.getLogger(__name__)

FORM = "triage_form"
DETAIL_SLOTS = {"speaker": "speaker", "role": "speaker", "area": "area", "age": "child_age", "concern": "concern"}
SERVICES_SHOWN_FIRST = 3
# intents that answer "what is worrying you?" without a worry when the reply is a few words ("yes", "thanks")
NOT_A_WORRY = {"affirm", "deny", "thank", "greet", "goodbye"}
# intents whose text is a request to the assistant, never read for details
NOT_DETAILS = {"start_again", "carry_on", "human_handoff", "ask_privacy", "bot_challenge", "change_detail", "safeguarding_cue",
               "show_more_services", "refine_services", "goodbye", "thank", "affirm", "deny"}
# after a guided question, these intents are first tried as a typed answer to it (rules send them here); if
# it is none of the options, the action does what the intent asks (a follow-up action would leave Rasa's rules
# with no next step)
READ_AS_AN_ANSWER_FIRST = {"goodbye": "utter_goodbye", "show_more_services": None, "thank": "utter_youre_welcome"}
WORRY_MIN_WORDS = 6  # a worry typed at another question ("where do I refer a family who...") is kept as the worry


def send(dispatcher: CollectingDispatcher, messages: list[dict[str, Any]]) -> None:
    for message in messages:
        dispatcher.utter_message(
            text=message.get("text"), buttons=message.get("buttons", []), json_message=message.get("custom")
        )


async def off_the_loop(work, *args):
    """Run CPU-heavy work (the triage and directory search embed text) in a thread, so one action server
    answers other conversations meanwhile instead of queueing them behind this one."""
    return await asyncio.to_thread(work, *args)


def latest_intent(tracker: Tracker) -> str | None:
    return (tracker.latest_message.get("intent") or {}).get("name")


def form_just_started(tracker: Tracker) -> bool:
    return tracker.get_slot("requested_slot") is None


def _free_text(tracker: Tracker) -> str | None:
    """The person's own words in this message, or None for a button, an empty message or a request."""
    text = tracker.latest_message.get("text")
    if not isinstance(text, str) or not text.strip() or text.lstrip().startswith("/"):
        return None
    return None if latest_intent(tracker) in NOT_DETAILS else text


@lru_cache(maxsize=64)
def _assessment(text: str):
    """The triage's reading of a worry. One message is read up to three times in a turn (unclear input, the
    form's extraction, then its validation); the triage is a pure function of the text and its result is only
    read here, so the reading is kept for the few latest (already redacted) messages."""
    from bot.triage import assess

    return assess(text)


async def _describes_a_need(text: str) -> bool:
    """Whether a longer message read as something else (who they are, where, unclear) also says what is
    happening: the triage finds a need in it. "I'm a teacher in Aylesbury" does not; "mum has low mood" does."""
    if len(text.split()) < WORRY_MIN_WORDS:
        return False
    try:
        return bool((await off_the_loop(_assessment, text)).reasons)
    except BadInput:
        return False


def _gave_other_details(tracker: Tracker, slot: str) -> bool:
    """Whether this message filled another detail, so it answered something else rather than been misunderstood
    (then the question is asked again without "Sorry, I didn't catch that")."""
    return any(name not in (slot, "requested_slot", "place") and tracker.get_slot(name) is not None
               for name in tracker.slots_to_validate())


class ValidateTriageForm(FormValidationAction):
    """Turns what people type into the four details, asking again in other words when it can't."""

    def name(self) -> str:
        return "validate_triage_form"

    # People often say several details at once ("Hi, my son is 14 and we live in Scunthorpe. He's stopped
    # going to school..."): each detail said plainly is kept, whichever question was asked, so nothing is asked
    # twice. The summary check shows every detail back before an answer is given.
    async def extract_concern(self, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = _free_text(tracker)
        if text is None or tracker.get_slot("concern") or tracker.get_slot("requested_slot") == "concern":
            return {}
        if latest_intent(tracker) == "describe_concern":
            return {"concern": text} if form_just_started(tracker) or len(text.split()) >= WORRY_MIN_WORDS else {}
        if await _describes_a_need(text):  # "health visitor in North Lincs, baby 8 months, mum has low mood..."
            return {"concern": text}
        return {}

    async def extract_speaker(self, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = _free_text(tracker)
        if text is None or tracker.get_slot("speaker") or tracker.get_slot("requested_slot") == "speaker":
            return {}
        speaker = read_stated_speaker(text)
        return {"speaker": speaker} if speaker else {}

    async def extract_area(self, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = _free_text(tracker)
        if text is None or tracker.get_slot("requested_slot") == "area":
            return {}
        # "actually we live in Bath" at any question changes the area.
        if latest_intent(tracker) == "inform_area" and len(find_places(text)) == 1:
            return {"area": text}
        if not tracker.get_slot("area"):
            place = place_in_sentence(text)
            if place is not None:
                return {"area": place.matched}
        return {}

    async def extract_child_age(self, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = _free_text(tracker)
        if text is None or tracker.get_slot("child_age") is not None or tracker.get_slot("requested_slot") == "child_age":
            return {}
        if form_just_started(tracker) and latest_intent(tracker) == "inform_age":
            return {"child_age": text}
        age = read_stated_age(text)
        return {"child_age": age} if age is not None else {}

    def validate_speaker(self, value: Any, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        speaker = read_speaker(str(value), latest_intent(tracker))
        if speaker is None and not _gave_other_details(tracker, "speaker"):
            dispatcher.utter_message(text="Sorry, I didn't catch that. Please choose the one that fits best.")
        return {"speaker": speaker}

    def validate_area(self, value: Any, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        matches = find_places(str(value))
        if len(matches) == 1:
            return {"area": matches[0].area_id, "place": matches[0].matched}
        if len(matches) > 1:
            dispatcher.utter_message(
                text="That could be more than one area. Which one do you mean?",
                buttons=[{"title": m.matched, "payload": m.matched} for m in matches],
            )
        elif outward_code(str(value)) or elsewhere(str(value)):
            dispatcher.utter_message(response="utter_area_not_covered")  # a real place, not ours
        elif not _gave_other_details(tracker, "area"):  # (a message that said other things: just ask again)
            dispatcher.utter_message(response="utter_area_not_recognised")
        return {"area": None}

    def validate_child_age(self, value: Any, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        age = value if isinstance(value, (int, float)) and not isinstance(value, bool) else read_age(str(value))
        if age is None:
            if not _gave_other_details(tracker, "child_age"):
                dispatcher.utter_message(response="utter_age_not_understood")
            return {"child_age": None}
        if age > MAX_AGE:
            dispatcher.utter_message(response="utter_age_out_of_range")
            return {"child_age": None}
        return {"child_age": int(age)}

    async def validate_concern(self, value: Any, dispatcher, tracker: Tracker, domain: DomainDict) -> dict[str, Any]:
        text = str(value).strip()
        # a button left from another question ("/show_more_services"), or a bare "yes", "no", "thanks" or
        # "ok": not a worry (a worry that starts with "yes, she's ..." is longer and kept)
        if text.startswith("/") or (latest_intent(tracker) in NOT_A_WORRY and len(text.split()) <= 4):
            dispatcher.utter_message(response="utter_concern_too_short")
            return {"concern": None}
        assessment = await off_the_loop(_assessment, text)  # the triage embeds: not on the server's event loop
        if not assessment.reasons and _gave_other_details(tracker, "concern"):
            return {"concern": None}  # "actually we live in Gloucester now": the area changed, ask the worry again
        if assessment.needs_more and not assessment.next_questions:  # nothing to go on: ask in other words
            dispatcher.utter_message(response="utter_concern_too_short")
            return {"concern": None}
        return {"concern": text}


class ActionConfirmDetails(Action):
    def name(self) -> str:
        return "action_confirm_details"

    def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        age = tracker.get_slot("child_age")
        send(
            dispatcher,
            [
                replies.summary(
                    tracker.get_slot("speaker"),
                    tracker.get_slot("area"),
                    tracker.get_slot("place"),
                    None if age is None else int(age),
                    tracker.get_slot("concern"),
                )
            ],
        )
        # a fresh check means a fresh answer: forget the guided questions of any earlier answer
        return [SlotSet("shown_level", None), SlotSet("pending_question", None), SlotSet("questions_asked", []),
                SlotSet("triage_answers", {})]


@lru_cache(maxsize=1)
def _directory():
    """The directory, opened once per action-server process (it holds the embedding index)."""
    from directory import Directory

    return Directory.open()


def _services(tracker: Tracker, k: int, concern: str | None = None, exclude: list[str] | None = None,
              category: str | None = None) -> list[dict]:
    """Services for the concern in the person's area and for the child's age; [] for input the directory refuses."""
    age = tracker.get_slot("child_age")
    age = int(age) if age is not None and 0 <= int(age) <= MAX_AGE else None
    query = concern if concern is not None else tracker.get_slot("concern") or ""
    try:
        return _directory().search(query, area=tracker.get_slot("area"), age=age, k=k, exclude=exclude or [], category=category)
    except BadInput:
        return []


class ActionGiveAnswer(Action):
    """Up to three guided questions while the level is unclear, then the level in plain words (a pathway
    for professionals) and matching services. Also takes the answers to those questions, by button or typed."""

    def name(self) -> str:
        return "action_give_answer"

    async def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await off_the_loop(self.answer, dispatcher, tracker, domain)

    def answer(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        speaker, area = tracker.get_slot("speaker"), tracker.get_slot("area")
        age = tracker.get_slot("child_age")
        age = None if age is None else int(age)
        concern = tracker.get_slot("concern") or ""
        answers = dict(tracker.get_slot("triage_answers") or {})
        asked = list(tracker.get_slot("questions_asked") or [])
        pending = tracker.get_slot("pending_question")
        intent, text = latest_intent(tracker), tracker.latest_message.get("text") or ""
        events: list[EventType] = []

        if intent in READ_AS_AN_ANSWER_FIRST:
            # a short typed answer can read like another intent ("several things" as goodbye, "one other
            # thing" as more services): an option of the pending question wins, otherwise do what was asked
            typed = None if not pending or text.startswith("/") else replies.match_option(pending, text)
            if typed is None:
                if intent == "show_more_services":
                    return ActionShowMoreServices().answer(dispatcher, tracker, domain)
                dispatcher.utter_message(response=READ_AS_AN_ANSWER_FIRST[intent])
                return []

        recorded = None
        if intent == "answer_question":  # a button: the payload names the question and the answer
            given = {e.get("entity"): e.get("value") for e in tracker.latest_message.get("entities", [])}
            recorded = replies.record_answer(answers, given.get("question"), given.get("answer"))
            if recorded is None and pending:  # a stale or tampered button: ask again, nothing lost
                send(dispatcher, [replies.followup_question(pending, again=True)])
                return []
            answers = recorded or answers
        elif pending:
            value = replies.match_option(pending, text)
            recorded = None if value is None else replies.record_answer(answers, pending["id"], value)
            if recorded is not None:
                answers = recorded
            elif intent in ("describe_concern", "nlu_fallback", "out_of_scope") and len(text.split()) >= 3:
                concern = f"{concern}\n{text}".strip()  # more detail instead of a button: keep it, move on
                events.append(SlotSet("concern", concern))
            else:
                send(dispatcher, [replies.followup_question(pending, again=True)])
                return []
        elif tracker.get_slot("shown_level") is not None:  # after the answer: "is there anything else?"
            if intent == "describe_concern":
                concern = f"{concern}\n{text}".strip()  # more about the same family: answer again with it
                events.append(SlotSet("concern", concern))
            else:
                response = {"affirm": "utter_ask_what_else", "deny": "utter_goodbye"}.get(intent, "utter_out_of_scope")
                dispatcher.utter_message(response=response)
                return []
        events += [SlotSet("triage_answers", answers), SlotSet("pending_question", None)]

        question = replies.next_followup(speaker, area, age, concern, answers, asked=asked)
        if question is not None and question["id"] not in asked:
            send(dispatcher, [replies.followup_question(question)])
            return events + [SlotSet("pending_question", question), SlotSet("questions_asked", asked + [question["id"]])]

        messages, assessment = replies.level_answer(speaker, area, age, concern, answers=answers)
        services = _services(tracker, SERVICES_SHOWN_FIRST, concern)  # [] for input the directory refuses
        if services:
            heading = "Services that may help:" if speaker != "professional" else "Services you could refer to or signpost:"
            messages.append(replies.service_cards(services, heading))
            events.append(SlotSet("shown_services", [s["id"] for s in services]))
        messages += replies.talk_to_person(area)
        messages.append(replies.say("Is there anything else I can help with?", [("Start again", "/start_again")]))
        send(dispatcher, messages)
        place = tracker.get_slot("place")
        analytics.record("level_given", area=area, speaker=speaker, level=assessment["shared_level"], outcode=place)
        analytics.record("services_shown" if services else "no_fitting_service", area=area, speaker=speaker,
                         outcode=place, count=len(services))
        return events + [SlotSet("shown_level", assessment["shared_level"])]


class ActionShowMoreServices(Action):
    def name(self) -> str:
        return "action_show_more_services"

    async def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await off_the_loop(self.answer, dispatcher, tracker, domain)

    def answer(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        if not tracker.get_slot("concern") or not tracker.get_slot("area"):
            dispatcher.utter_message(text="Tell me a little about what's happening first, and I'll find services.")
            return []
        shown = set(tracker.get_slot("shown_services") or [])
        query = tracker.get_slot("service_query") or tracker.get_slot("concern")
        more = _services(tracker, SERVICES_SHOWN_FIRST, query, exclude=sorted(shown))  # the same order, carried on
        if not more:
            dispatcher.utter_message(text="That's all the services I have that fit. You can also talk to a person.")
            send(dispatcher, replies.talk_to_person(tracker.get_slot("area")))
            return []
        send(dispatcher, [replies.service_cards(more, "More services that may help:")])
        return [SlotSet("shown_services", sorted(shown | {s["id"] for s in more}))]


class ActionRefineServices(Action):
    """"None of these fit": one refining question. The kinds of help that fit next (``Directory.refine``)
    are offered as buttons (``/describe_concern{"answer": "<category>"}``: an intent and an entity the
    domain already has, so the rule that follows this action with a search fires); typing a few words
    works as before."""

    def name(self) -> str:
        return "action_refine_services"

    async def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await off_the_loop(self.answer, dispatcher, tracker, domain)

    def answer(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        analytics.record("no_fitting_service", area=tracker.get_slot("area"), speaker=tracker.get_slot("speaker"),
                         outcode=tracker.get_slot("place"))
        choices = _refine_choices(tracker)
        text = ("Sorry those didn't fit. What kind of help would suit you? Pick one, or tell me in a few words, for "
                "example 'parenting course', 'help with money', 'speech and language' or 'someone to talk to'.")
        if not choices:
            text = ("Sorry those didn't fit. What kind of help would suit you? A few words is enough, for example "
                    "'parenting course', 'help with money', 'speech and language' or 'someone to talk to'.")
        buttons = [{"title": c["label"][:1].upper() + c["label"][1:],
                    "payload": "/describe_concern" + json.dumps({"answer": c["category"]})} for c in choices]
        buttons.append({"title": "Talk to a person", "payload": "/human_handoff"})
        dispatcher.utter_message(text=text, buttons=buttons)
        return []


def _refine_choices(tracker: Tracker) -> list[dict]:
    """The kinds of help that fit the concern next, after the services already shown; [] when unsure."""
    concern, area = tracker.get_slot("concern"), tracker.get_slot("area")
    if not concern or not area:
        return []
    age = tracker.get_slot("child_age")
    age = int(age) if age is not None and 0 <= int(age) <= MAX_AGE else None
    try:
        return _directory().refine(concern, area=area, age=age, shown=list(tracker.get_slot("shown_services") or []))["choices"]
    except BadInput:
        return []


def _category_of(tracker: Tracker) -> str | None:
    """The kind of help a refine button chose (its ``answer`` entity, a directory category), else None."""
    from directory.vocab import CATEGORIES

    for entity in tracker.latest_message.get("entities") or []:
        if entity.get("entity") == "answer" and isinstance(entity.get("value"), str) and entity["value"] in CATEGORIES:
            return entity["value"]
    return None


class ActionSearchServices(Action):
    """Services for what the person just said they are looking for, in their area and for the child's age.
    A refine button's words (a kind of help) search the concern again within that kind."""

    def name(self) -> str:
        return "action_search_services"

    async def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        return await off_the_loop(self.answer, dispatcher, tracker, domain)

    def answer(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        query = (tracker.latest_message.get("text") or "").strip()
        shown = list(tracker.get_slot("shown_services") or [])
        category = _category_of(tracker)
        if category and tracker.get_slot("concern"):
            from directory.vocab import CATEGORIES

            query = CATEGORIES[category]  # what "show more" searches next, in words
            found = _services(tracker, SERVICES_SHOWN_FIRST, tracker.get_slot("concern"), exclude=shown, category=category)
        else:
            found = _services(tracker, SERVICES_SHOWN_FIRST, query, exclude=shown)
        if not found:
            dispatcher.utter_message(text="I couldn't find a service that fits that. A person can help you look:")
            send(dispatcher, replies.talk_to_person(tracker.get_slot("area")))
            return []
        send(dispatcher, [replies.service_cards(found, "These may fit better:")])
        return [SlotSet("service_query", query), SlotSet("shown_services", [s["id"] for s in found])]


class ActionTalkToPerson(Action):
    def name(self) -> str:
        return "action_talk_to_person"

    def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        # "who do I call in Cheltenham?": the place asked about, when the conversation has no area yet
        text = tracker.latest_message.get("text")
        stated = {}
        if isinstance(text, str) and not text.startswith("/") and not tracker.get_slot("area"):
            place = place_in_sentence(text)
            if place is not None:
                stated = {"area": place.area_id, "place": place.matched}
        area = stated.get("area") or tracker.get_slot("area")
        send(dispatcher, replies.talk_to_person(area))
        analytics.record("talk_to_person", area=area, speaker=tracker.get_slot("speaker"))
        return [SlotSet(name, value) for name, value in stated.items()]


class ActionUnclearInput(Action):
    """A message the intents do not fit, outside the questions: when it says who is writing, where, the
    child's age or what is happening, the questions start with those details kept; otherwise ask again."""

    def name(self) -> str:
        return "action_unclear_input"

    async def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        text = tracker.latest_message.get("text")
        if isinstance(text, str) and text.strip() and not text.startswith("/"):
            if (read_stated_speaker(text) or place_in_sentence(text) or read_stated_age(text) is not None
                    or await _describes_a_need(text)):
                return [FollowupAction(FORM)]
        dispatcher.utter_message(response="utter_default")
        return []


class ActionChangeDetail(Action):
    """Clear the detail the person wants to change; the form then asks for it again."""

    def name(self) -> str:
        return "action_change_detail"

    def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        slot = DETAIL_SLOTS.get(str(tracker.get_slot("detail") or "").lower())
        if slot is None:
            dispatcher.utter_message(response="utter_ask_what_to_change")
            return [SlotSet("detail", None)]
        events: list[EventType] = [SlotSet(slot, None), SlotSet("detail", None)]
        if slot == "area":
            events.append(SlotSet("place", None))
        if tracker.active_loop_name != FORM:
            events.append(FollowupAction(FORM))
        return events


class ActionStartAgain(Action):
    def name(self) -> str:
        return "action_start_again"

    def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        dispatcher.utter_message(response="utter_start_again")
        # the first question straight away, whether or not a form was running when they asked
        return [AllSlotsReset(), ActiveLoop(None), FollowupAction(FORM)]


class ActionSafeguardingResponse(Action):
    """Answer a safeguarding cue at once; pause (not lose) the form that was running.

    The web app screens every message before Rasa sees it and sends ``/safeguarding_cue`` with the
    screening result as entities and the redacted text as metadata.
    """

    def name(self) -> str:
        return "action_safeguarding_response"

    def run(self, dispatcher, tracker: Tracker, domain: DomainDict) -> list[EventType]:
        screening = {e.get("entity"): e.get("value") for e in tracker.latest_message.get("entities", [])}
        categories = screening.get("categories") or []
        screening["categories"] = categories if isinstance(categories, list) else [categories]
        screening["immediate_danger"] = screening.get("immediate_danger") in (True, "true", "True", 1)
        paused = tracker.active_loop_name == FORM
        events: list[EventType] = [SlotSet("safeguarding_raised", True)]
        text = (tracker.latest_message.get("metadata") or {}).get("text")
        text = text.strip() if isinstance(text, str) else ""
        # details said with the cue are kept like any others ("we're in Stroud and her dad hits her"): the area
        # gives that area's number to call now, and carrying on afterwards does not ask for them again
        stated = _stated_details(text, tracker)
        events += [SlotSet(name, value) for name, value in stated.items()]
        if text and not tracker.get_slot("concern") and (tracker.get_slot("requested_slot") == "concern" or not paused):
            events.append(SlotSet("concern", text))
        if paused:
            events += [ActiveLoop(None), SlotSet("requested_slot", None)]
        send(
            dispatcher,
            replies.safety_answer(screening, stated.get("area") or tracker.get_slot("area"),
                                  stated.get("speaker") or tracker.get_slot("speaker"), form_paused=paused),
        )
        return events


def _stated_details(text: str, tracker: Tracker) -> dict[str, Any]:
    """The details a message says plainly that the conversation does not have yet (slot name -> value)."""
    found: dict[str, Any] = {}
    if not text:
        return found
    if not tracker.get_slot("area"):
        place = place_in_sentence(text)
        if place is not None:
            found |= {"area": place.area_id, "place": place.matched}
    if not tracker.get_slot("speaker"):
        speaker = read_stated_speaker(text)
        if speaker:
            found["speaker"] = speaker
    if tracker.get_slot("child_age") is None:
        age = read_stated_age(text)
        if age is not None:
            found["child_age"] = age
    return found


def warm_up() -> None:
    """Load what the first turn would otherwise wait for: the directory index and the triage model."""
    from bot.areas import load_areas
    from bot.triage import assess

    load_areas()
    assess("my child is not sleeping well")
    try:
        _directory().search("parenting support", k=1)
    except Exception:  # the first conversation will report it; start-up must not die on it
        log.exception("directory warm-up failed")
