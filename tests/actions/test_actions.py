"""The Rasa actions as adapters: real rasa-sdk trackers and dispatchers, no Rasa server."""
from __future__ import annotations

import asyncio

import pytest
from rasa_sdk import Tracker
from rasa_sdk.events import ActiveLoop, AllSlotsReset, FollowupAction, SlotSet
from rasa_sdk.executor import CollectingDispatcher

from actions import actions

SLOTS = ("speaker", "area", "place", "child_age", "concern", "detail", "requested_slot", "safeguarding_raised", "shown_services",
         "triage_answers", "questions_asked", "pending_question", "shown_level", "service_query")


def tracker(slots: dict | None = None, text: str = "", intent: str | None = None, entities=(), metadata=None, loop=None) -> Tracker:
    values = {name: None for name in SLOTS} | (slots or {})
    message = {"text": text, "intent": {"name": intent, "confidence": 1.0} if intent else {}, "entities": list(entities)}
    if metadata:
        message["metadata"] = metadata
    return Tracker("tester", values, message, [], False, None, {"name": loop} if loop else {}, "action_listen")


def run(action, t: Tracker):
    dispatcher = CollectingDispatcher()
    result = action.run(dispatcher, t, {})
    if asyncio.iscoroutine(result):
        result = asyncio.run(result)
    return dispatcher.messages, result


def texts(messages) -> str:
    return "\n".join(m.get("text") or "" for m in messages)


def validate(slot: str, value, t: Tracker | None = None):
    form = actions.ValidateTriageForm()
    dispatcher = CollectingDispatcher()
    result = getattr(form, f"validate_{slot}")(value, dispatcher, t or tracker(), {})
    if asyncio.iscoroutine(result):  # rasa-sdk awaits a validator that is a coroutine (validate_concern is)
        result = asyncio.run(result)
    return result, dispatcher.messages


def test_area_from_a_town():
    result, _ = validate("area", "we live in Stroud")
    assert result == {"area": "gloucestershire", "place": "Stroud"}


@pytest.mark.parametrize(
    "text, response",
    [("asdfgh", "utter_area_not_recognised"), ("SW1A 1AA", "utter_area_not_covered"), ("south glos", "utter_area_not_covered")],
)
def test_area_not_recognised_or_not_covered_is_asked_again(text, response):
    result, messages = validate("area", text)
    assert result == {"area": None} and messages[0]["response"] == response


def test_two_areas_offer_a_choice():
    result, messages = validate("area", "Stroud or Scunthorpe")
    assert result == {"area": None}
    assert {b["title"] for b in messages[0]["buttons"]} == {"Stroud", "Scunthorpe"}


@pytest.mark.parametrize("text, age", [("she's 2", 2), ("pregnant", -1), ("not sure", -2)])
def test_age_read(text, age):
    assert validate("child_age", text)[0] == {"child_age": age}


@pytest.mark.parametrize("text, response", [("thirty", "utter_age_out_of_range"), ("blue", "utter_age_not_understood")])
def test_age_asked_again(text, response):
    result, messages = validate("child_age", text)
    assert result == {"child_age": None} and messages[0]["response"] == response


def test_speaker_from_button_intent_and_free_text():
    assert validate("speaker", "/identify_parent", tracker(intent="identify_parent"))[0] == {"speaker": "parent"}
    assert validate("speaker", "I'm a health visitor", tracker(intent="nlu_fallback"))[0] == {"speaker": "professional"}
    result, messages = validate("speaker", "banana", tracker(intent="nlu_fallback"))
    assert result == {"speaker": None} and messages


def test_a_one_word_concern_asks_for_more():
    result, messages = validate("concern", "hmm")
    assert result == {"concern": None} and messages[0]["response"] == "utter_concern_too_short"
    assert validate("concern", "my son refuses to go to school and cries every morning")[0]["concern"]


@pytest.mark.parametrize("text, intent", [("yes", "affirm"), ("no", "deny"), ("thanks", "thank"), ("ok", "affirm"), ("thank you so much", "thank"),
                                          ("/show_more_services", "show_more_services"),
                                          ('/answer_question{"question": "harm"}', "answer_question")])
def test_a_reply_that_is_not_a_worry_asks_for_more_and_is_not_kept(text, intent):
    # a "yes", a "thanks" or a button left from another question, typed or clicked at "what is worrying you?"
    result, messages = validate("concern", text, tracker(text=text, intent=intent))
    assert result == {"concern": None} and messages[0]["response"] == "utter_concern_too_short"


def test_a_worry_that_starts_with_yes_is_kept():
    text = "yes she is being bullied at school and won't go in"
    assert validate("concern", text, tracker(text=text, intent="affirm"))[0] == {"concern": text}


def test_first_message_concern_is_kept():
    form = actions.ValidateTriageForm()
    t = tracker(text="my toddler isn't talking yet", intent="describe_concern")
    assert asyncio.run(form.extract_concern(CollectingDispatcher(), t, {})) == {"concern": "my toddler isn't talking yet"}
    t = tracker({"requested_slot": "area"}, text="my toddler isn't talking yet", intent="describe_concern")
    assert asyncio.run(form.extract_concern(CollectingDispatcher(), t, {})) == {}


FORM_DOMAIN = {"forms": {"triage_form": {"required_slots": ["speaker", "area", "child_age", "concern"]}},
               "slots": {name: {"type": "any", "mappings": []} for name in SLOTS}}


def validate_turn(text: str, intent: str, slots: dict | None = None, mapped: dict | None = None):
    """One turn of the real form validation action (rasa-sdk's extract, then validate): ``mapped`` is what
    Rasa's own slot mappings set from this message (the text for the question that was asked)."""
    values = {name: None for name in SLOTS} | (slots or {}) | (mapped or {})
    events = [{"event": "user", "text": text}] + [{"event": "slot", "name": k, "value": v} for k, v in (mapped or {}).items()]
    message = {"text": text, "intent": {"name": intent, "confidence": 1.0}, "entities": []}
    t = Tracker("tester", values, message, events, False, None, {"name": "triage_form"}, "action_listen")
    dispatcher = CollectingDispatcher()
    result = asyncio.run(actions.ValidateTriageForm().run(dispatcher, t, FORM_DOMAIN))
    return {e["name"]: e["value"] for e in result if e.get("event") == "slot"}, dispatcher.messages


def test_a_first_message_that_says_everything_fills_every_detail():
    text = "Hi, my son is 14 and we live in Scunthorpe. He's stopped going to school and stays in his room all day"
    slots, messages = validate_turn(text, "describe_concern")
    assert slots == {"speaker": "parent", "area": "north-lincolnshire", "place": "Scunthorpe", "child_age": 14,
                     "concern": text}
    assert not messages


def test_details_said_at_another_question_are_kept_and_not_called_misunderstood():
    # the speaker question was asked; a young person answers with their age and their worry
    text = "i'm 15 and my parents argue all the time and i can't sleep"
    slots, messages = validate_turn(text, "describe_concern", {"requested_slot": "speaker"}, {"speaker": text})
    assert slots["speaker"] == "young_person" and slots["child_age"] == 15 and slots["concern"] == text
    # a teacher asked for the age asks where to refer: the worry is kept, the age asked again without "sorry"
    text = "where do I refer a family who need more support? mum is struggling with the kids' behaviour and money"
    slots, messages = validate_turn(text, "describe_concern", {"speaker": "professional", "area": "buckinghamshire",
                                                               "requested_slot": "child_age"}, {"child_age": text})
    assert slots == {"child_age": None, "concern": text} and not messages
    # nonsense at the age question is still told it was not understood
    slots, messages = validate_turn("banana", "out_of_scope", {"requested_slot": "child_age"}, {"child_age": "banana"})
    assert slots == {"child_age": None} and messages[0]["response"] == "utter_age_not_understood"


def test_a_worry_read_as_something_else_is_kept_when_it_describes_a_need():
    text = "health visitor in North Lincs, baby 8 months, mum has low mood and isolated, which form do I use?"
    slots, _ = validate_turn(text, "identify_professional")
    assert slots == {"speaker": "professional", "area": "north-lincolnshire", "place": "North Lincolnshire",
                     "child_age": 0, "concern": text}
    # who they are and where, and nothing happening: not a worry, the question asks
    slots, _ = validate_turn("I'm a teacher at a primary school in Aylesbury", "inform_area")
    assert slots == {"speaker": "professional", "area": "buckinghamshire", "place": "Aylesbury"}


def test_unclear_input_with_details_starts_the_questions_and_nonsense_is_asked_again():
    text = "health visitor in North Lincs, baby 8 months, mum has low mood and isolated, which form?"
    messages, events = run(actions.ActionUnclearInput(), tracker(text=text, intent="nlu_fallback"))
    assert FollowupAction("triage_form") in events and not messages
    messages, events = run(actions.ActionUnclearInput(), tracker(text="sdkfjh qwpoeiru zxmcnv", intent="nlu_fallback"))
    assert messages[0]["response"] == "utter_default" and not events


def test_a_new_area_given_at_the_worry_question_is_not_taken_as_the_worry():
    text = "actually we live in Gloucester now"
    slots, messages = validate_turn(text, "inform_area", {"speaker": "parent", "area": "north-lincolnshire",
                                                          "child_age": 3, "requested_slot": "concern"}, {"concern": text})
    assert slots["area"] == "gloucestershire" and slots["concern"] is None and not messages


def test_a_button_or_a_request_is_never_read_for_details():
    assert validate_turn("/identify_parent", "identify_parent")[0] == {}
    assert validate_turn("start again, we live in Stroud now", "start_again")[0] == {}
    # a bath is not Bath, and a place they want to go to is not where they live
    slots, _ = validate_turn("she screams in the bath every night and she's 3", "describe_concern", {"requested_slot": "concern"})
    assert "area" not in slots and slots.get("child_age") == 3


def test_change_detail_clears_the_slot_and_restarts_the_form():
    messages, events = run(actions.ActionChangeDetail(), tracker({"area": "gloucestershire", "place": "Stroud", "detail": "area"}))
    assert SlotSet("area", None) in events and SlotSet("place", None) in events
    assert FollowupAction("triage_form") in events and not messages


def test_change_detail_without_saying_what_asks():
    messages, events = run(actions.ActionChangeDetail(), tracker())
    assert messages[0]["response"] == "utter_ask_what_to_change"
    assert not any(isinstance(e, dict) and e.get("event") == "followup" for e in events)


def test_start_again_forgets_everything():
    _, events = run(actions.ActionStartAgain(), tracker({"area": "gloucestershire"}))
    assert AllSlotsReset() in events and ActiveLoop(None) in events


def test_safeguarding_pauses_the_form_and_keeps_the_concern():
    t = tracker(
        {"area": "buckinghamshire", "speaker": "parent", "requested_slot": "concern"},
        text='/safeguarding_cue{"categories": ["physical_abuse"], "immediate_danger": true}',
        intent="safeguarding_cue",
        entities=[{"entity": "categories", "value": ["physical_abuse"]}, {"entity": "immediate_danger", "value": True}],
        metadata={"text": "her dad is hitting her right now"},
        loop="triage_form",
    )
    messages, events = run(actions.ActionSafeguardingResponse(), t)
    said = texts(messages)
    assert said.index("999") < said.index("Buckinghamshire")
    assert ActiveLoop(None) in events and SlotSet("concern", "her dad is hitting her right now") in events
    assert any(b["payload"] == "/carry_on" for m in messages for b in m.get("buttons", []))


def test_safeguarding_without_an_area_lists_every_area():
    messages, _ = run(
        actions.ActionSafeguardingResponse(),
        tracker(intent="safeguarding_cue", entities=[{"entity": "categories", "value": "self_harm"}]),
    )
    said = texts(messages)
    for name in ("Buckinghamshire", "Gloucestershire", "North Lincolnshire", "Bath"):
        assert name in said


def test_a_cue_as_the_first_message_keeps_its_details_and_gives_that_areas_number():
    text = "we're in Stroud and my son is 14, his dad hits him when he's drunk"
    t = tracker(text='/safeguarding_cue{"categories": ["physical_abuse"]}', intent="safeguarding_cue",
                entities=[{"entity": "categories", "value": ["physical_abuse"]}], metadata={"text": text})
    messages, events = run(actions.ActionSafeguardingResponse(), t)
    said = texts(messages)
    assert "Gloucestershire" in said and "Buckinghamshire" not in said  # the area's number, not every area's
    assert {"area": "gloucestershire", "place": "Stroud", "speaker": "parent", "child_age": 14,
            "concern": text}.items() <= slots_set(events).items()  # "carry on" does not ask for them again
    assert [b["payload"] for b in messages[-1]["buttons"]] == ["/carry_on", "/start_again"]


def test_who_do_i_call_in_a_town_answers_for_that_area():
    t = tracker(text="who do I call at the weekend if I'm worried about a child in Cheltenham?", intent="ask_contacts")
    messages, events = run(actions.ActionTalkToPerson(), t)
    assert "Gloucestershire" in texts(messages) and "Buckinghamshire" not in texts(messages)
    assert SlotSet("area", "gloucestershire") in events


UNCLEAR = {"speaker": "parent", "area": "gloucestershire", "place": "Gloucester", "child_age": 6,
           "concern": "we are struggling with money and he is not sleeping"}


def slots_set(events) -> dict:
    return {e["name"]: e["value"] for e in events if e.get("event") == "slot"}


def test_an_unclear_level_is_settled_with_a_guided_question_then_answered():
    messages, events = run(actions.ActionGiveAnswer(), tracker(UNCLEAR, text="yes", intent="affirm"))
    question = slots_set(events)["pending_question"]
    assert question and messages[0]["buttons"] and "/answer_question" in messages[0]["buttons"][0]["payload"]
    assert slots_set(events)["questions_asked"] == [question["id"]]
    # a typed reply that is no option: the same question again, nothing lost
    again, events = run(actions.ActionGiveAnswer(), tracker({**UNCLEAR, "pending_question": question,
                                                                "questions_asked": [question["id"]]}, text="sdfkjh", intent="out_of_scope"))
    assert "choose one of these" in texts(again) and events == []
    # the button: recorded, and either the next question or the answer
    value = question["options"][-1]["value"]
    messages, events = run(actions.ActionGiveAnswer(), tracker(
        {**UNCLEAR, "pending_question": question, "questions_asked": [question["id"]]}, intent="answer_question",
        entities=[{"entity": "question", "value": question["id"]}, {"entity": "answer", "value": value}]))
    assert slots_set(events)["triage_answers"] == {question["id"]: value}


def test_a_typed_answer_read_as_goodbye_or_more_services_is_taken_as_the_answer_first():
    _, events = run(actions.ActionGiveAnswer(), tracker(UNCLEAR, text="yes", intent="affirm"))
    question = slots_set(events)["pending_question"]
    option = question["options"][-1]
    pending = {**UNCLEAR, "pending_question": question, "questions_asked": [question["id"]]}
    for intent in ("goodbye", "show_more_services", "thank"):
        _, events = run(actions.ActionGiveAnswer(), tracker(pending, text=option["title"], intent=intent))
        assert slots_set(events)["triage_answers"] == {question["id"]: option["value"]}, intent
    # not an option: what the intent asked for
    messages, events = run(actions.ActionGiveAnswer(), tracker(pending, text="bye then", intent="goodbye"))
    assert messages[0]["response"] == "utter_goodbye" and events == []
    shown = {**UNCLEAR, "shown_level": 2, "shown_services": []}
    messages, _ = run(actions.ActionGiveAnswer(), tracker(shown, text="/show_more_services", intent="show_more_services"))
    assert "More services" in texts(messages)


def test_the_answer_comes_after_three_questions_at_most():
    asked = ["harm", "needs_count", "support"]
    messages, events = run(actions.ActionGiveAnswer(), tracker({**UNCLEAR, "questions_asked": asked}, text="yes", intent="affirm"))
    assert "level" in texts(messages).lower() and slots_set(events)["shown_level"] in (1, 2, 3, 4)
    assert "pending_question" not in slots_set(events) or slots_set(events)["pending_question"] is None


CARD_FIELDS = {"id", "name", "description", "who_for", "for_whom", "phone", "tel", "url", "hours", "area", "caution", "complete",
               "weak_match"}


def test_the_answer_ends_with_service_cards_that_say_what_who_how_and_when():
    toddler = {"speaker": "parent", "area": "gloucestershire", "place": "Stroud", "child_age": 2,
               "concern": "my toddler isn't talking yet", "questions_asked": ["harm", "needs_count", "support"]}
    messages, events = run(actions.ActionGiveAnswer(), tracker(toddler, text="yes", intent="affirm"))
    cards = [m for m in messages if (m.get("custom") or {}).get("type") == "service_cards"]
    assert len(cards) == 1
    services = cards[0]["custom"]["services"]
    assert 1 <= len(services) <= 3 and slots_set(events)["shown_services"] == [c["id"] for c in services]
    assert services[0]["id"] == "glos-early-years-service"
    for card in services:
        assert CARD_FIELDS <= set(card) <= CARD_FIELDS | {"email"}, set(card) ^ CARD_FIELDS
        assert card["name"] and card["description"] and card["who_for"] == card["for_whom"]
        assert card["phone"] is None or card["tel"] == "tel:" + "".join(ch for ch in card["phone"] if ch.isdigit() or ch == "+")
        assert card["hours"] is None or "not stated" not in card["hours"]  # hours only when known
        assert "email" not in card or not (card["phone"] or card["url"])
    early = services[0]
    assert early["tel"] == "tel:01452427224" and early["who_for"] == "children aged 0 to 5"
    text = cards[0]["text"]
    assert "Early Years Service" in text and "For: children aged 0 to 5" in text and "Phone 01452 427224" in text
    assert [b["payload"] for b in cards[0]["buttons"]] == ["/show_more_services", "/refine_services"]
    # a record's gaps are said on the card, not hidden: this one was last checked in 2020
    assert any("last checked more than two years ago" in c for c in early["caution"]) and "last checked" in text


def test_a_card_gives_an_email_only_when_there_is_no_phone_or_website():
    from bot.replies import service_card, service_cards, tel_link

    assert tel_link("+44 (0)1452 427224") == "tel:+441452427224" and tel_link("0800 1111") == "tel:08001111"
    assert tel_link(None) is None and tel_link("ring us") is None
    base = {"id": "x", "name": "X", "description": "d", "who_for": "parents", "hours": "Mon-Fri 09:00-17:00", "flags": [],
            "caution": [], "email": "help@example.org"}
    assert service_card({**base, "phone": "01452 000000"}).get("email") is None
    assert service_card({**base, "phone": None, "url": None})["email"] == "help@example.org"
    assert service_card({**base, "hours": "opening hours not stated in the source document"})["hours"] is None
    weak = service_cards([{**base, "phone": None, "weak_match": True}], "Services that may help:")
    assert weak["text"].startswith("I couldn't find a close match")
    assert "Email help@example.org" in weak["text"] and "Open: Mon-Fri 09:00-17:00" in weak["text"]


def test_none_of_these_fit_offers_kinds_of_help_as_buttons_that_search_within_them():
    shown = ["glos-triple-p", "glos-family-information-service", "glos-families-directory"]
    slots = {**UNCLEAR, "shown_services": shown}
    messages, _ = run(actions.ActionRefineServices(), tracker(slots, intent="refine_services"))
    buttons = messages[0]["buttons"]
    kinds = [b for b in buttons if b["payload"].startswith("/describe_concern{")]
    assert len(kinds) >= 2 and buttons[-1]["payload"] == "/human_handoff"
    import json

    category = json.loads(kinds[0]["payload"][len("/describe_concern"):])["answer"]
    messages, events = run(actions.ActionSearchServices(), tracker(
        slots, text=kinds[0]["payload"], intent="describe_concern", entities=[{"entity": "answer", "value": category}]))
    cards = [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == "service_cards"]
    assert cards and cards[0]["services"]
    found = [c["id"] for c in cards[0]["services"]]
    assert not set(found) & set(shown)
    from directory.vocab import CATEGORIES

    directory = actions._directory()
    assert all(category in directory.get(sid)["categories"] for sid in found)
    assert slots_set(events)["service_query"] == CATEGORIES[category]


def test_none_of_these_fit_asks_then_searches_with_those_words():
    messages, _ = run(actions.ActionRefineServices(), tracker(UNCLEAR, intent="refine_services"))
    assert "what kind of help" in texts(messages).lower()
    messages, events = run(actions.ActionSearchServices(), tracker(UNCLEAR, text="a parenting course", intent="describe_concern"))
    cards = [m["custom"] for m in messages if (m.get("custom") or {}).get("type") == "service_cards"]
    assert cards and slots_set(events)["service_query"] == "a parenting course"
