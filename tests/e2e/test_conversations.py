"""Whole conversations with the real Rasa server and the real action server, over the REST webhook.

Each test is one person's path as they would type it; the assertions are what that person must be
told. On failure the transcript is printed, so a broken conversation can be read like a chat log.
"""
from __future__ import annotations

import json

import pytest

pytestmark = pytest.mark.e2e


def check(conversation, condition: bool, what: str) -> None:
    assert condition, f"{what}\n--- transcript ---\n{conversation.transcript()}"


def test_greeting_gets_an_answer_and_the_first_question(conversation):
    replies = conversation.say("hello")
    text = conversation.text(replies)
    check(conversation, "999" in text, "the greeting offers 999 for danger")
    check(conversation, "who are you" in text.lower(), "then asks who is speaking")
    check(conversation, conversation.buttons(replies) == ["A parent or carer", "A young person", "A professional"], "with buttons")


def test_a_greeting_in_the_middle_of_the_questions_asks_the_same_question_again(conversation):
    conversation.say("hi")
    conversation.say("/identify_parent")
    check(conversation, "old" in conversation.text(conversation.say("we live in Stroud")).lower(), "asks the age")
    again = conversation.text(conversation.say("hello"))
    check(conversation, "didn't quite understand" not in again, "a greeting is not taken for something unclear")
    check(conversation, "old" in again.lower().split("\n")[-1] and "who are you" not in again.lower(),
          "the age question again, not the first question")
    conversation.say("she's 2")
    summary = conversation.text(conversation.say("my toddler isn't talking yet and I'm worried she's behind"))
    check(conversation, "Stroud, Gloucestershire" in summary and "2 years old" in summary,
          "the questions carry on, with the answers given before the greeting kept")


def test_a_thanks_or_a_yes_at_the_worry_question_asks_for_more_and_a_worry_starting_with_yes_is_kept(conversation):
    conversation.say("hi")
    conversation.say("/identify_parent")
    conversation.say("we live in Stroud")
    conversation.say("she's 2")
    for reply in ("thanks", "yes"):
        again = conversation.text(conversation.say(reply))
        check(conversation, "didn't quite understand" not in again and "a bit more" in again,
              f"{reply!r} at the worry question asks for a little more")
    summary = conversation.text(conversation.say("yes she's being bullied at nursery and won't go in"))
    check(conversation, "bullied at nursery" in summary and "Is that right?" in summary, "the worry is read back")


def test_parent_in_a_gloucestershire_town_gets_a_level_services_and_a_number(conversation):
    conversation.say("hi")
    conversation.say("/identify_parent")
    replies = conversation.say("we live in Stroud")
    check(conversation, "old" in conversation.text(replies).lower(), "asks the child's age after the town")
    conversation.say("she's 2")
    replies = conversation.say("my toddler isn't talking yet and I'm worried she's behind")
    summary = conversation.text(replies)
    check(conversation, "Stroud, Gloucestershire" in summary and "2 years old" in summary, "reads back town, area and age")
    replies = conversation.answer_questions(conversation.say("/affirm"))
    answer = conversation.text(replies)
    check(conversation, "Gloucestershire" in answer and "level" in answer.lower(), "names the level in the area")
    cards = [r["custom"] for r in replies if (r.get("custom") or {}).get("type") == "service_cards"]
    check(conversation, cards and cards[0]["services"], "shows service cards")
    areas = {json.dumps(s.get("area")) for s in cards[0]["services"]}
    check(conversation, all("gloucestershire" in a or "national" in a for a in areas), f"only local or national services: {areas}")
    check(conversation, "01452" in answer, "gives a Gloucestershire number to talk to a person")
    shown = {s["id"] for s in cards[0]["services"]}
    replies = conversation.say("/refine_services")
    check(conversation, "what kind of help" in conversation.text(replies).lower(), "None of these fit asks what would")
    replies = conversation.say("a parenting course")
    cards = [r["custom"] for r in replies if (r.get("custom") or {}).get("type") == "service_cards"]
    check(conversation, cards and cards[0]["services"], "then shows services for those words")
    check(conversation, any("parent" in (s["name"] + s.get("description", "")).lower() for s in cards[0]["services"]),
          "that are about what was asked for")
    check(conversation, {s["id"] for s in cards[0]["services"]} != shown, "not the same cards again")


def test_young_person_who_gives_only_a_postcode(conversation):
    conversation.say("/identify_young_person")
    replies = conversation.say("DN15 7BH")
    check(conversation, "how old are you" in conversation.text(replies).lower(), "the postcode is enough; asks their age")
    conversation.say("15")
    replies = conversation.say("i look after my mum cos shes ill and im always late for school and tired")
    summary = conversation.text(replies)
    check(conversation, "North Lincolnshire" in summary, "the postcode district gives North Lincolnshire")
    check(conversation, "7BH" not in summary, "only the outward code is kept, never the full postcode")
    answer = conversation.text(conversation.answer_questions(conversation.say("yes")))
    check(conversation, "North Lincolnshire" in answer and "01724" in answer, "a North Lincolnshire number")


def test_professional_in_north_lincolnshire_asks_where_to_refer(conversation):
    replies = conversation.say("I'm a teacher, where do I refer a family for early help?")
    check(conversation, "council area" in conversation.text(replies).lower(), "knows it's a professional; asks the area")
    conversation.say("Scunthorpe")
    conversation.say("9")
    conversation.say("pupil's attendance has dropped to 80%, mum says she is struggling with his behaviour and money")
    replies = conversation.answer_questions(conversation.say("yes"))
    answer = conversation.text(replies)
    pathways = [r["custom"]["pathway"] for r in replies if (r.get("custom") or {}).get("type") == "pathway"]
    check(conversation, pathways, "gives the area's pathway")
    pathway = pathways[0]
    check(conversation, pathway["area"] == "north-lincolnshire", "for North Lincolnshire")
    check(conversation, "01724 296500" in answer or "01724 296555" in answer, "with the SPOC number")
    check(conversation, "Source:" in answer and "consent" in answer.lower(), "with consent rules and the source")


def test_changing_your_mind_mid_form_and_at_the_check(conversation):
    conversation.say("/identify_parent")
    conversation.say("Cheltenham")
    replies = conversation.say('/change_detail{"detail": "area"}')
    check(conversation, "which area" in conversation.text(replies).lower(), "asks the area again")
    conversation.say("actually we're in Bath")
    conversation.say("7")
    replies = conversation.say("he won't go to school and cries every morning")
    summary = conversation.text(replies)
    check(conversation, "Bath" in summary and "Cheltenham" not in summary, "the new area replaced the old one")
    replies = conversation.say("no")
    check(conversation, "What would you like to change?" in conversation.text(replies), "asks what to change")
    replies = conversation.say('/change_detail{"detail": "age"}')
    check(conversation, "old" in conversation.text(replies).lower(), "asks the age again")
    replies = conversation.say("8")
    check(conversation, "8 years old" in conversation.text(replies), "reads back the corrected age")


def test_guided_questions_settle_an_unclear_level(conversation):
    """A worry that could be level 2 or 3 gets a guided question with buttons; a typed reply counts; a yes to
    'has anyone hurt the child' lifts the answer to the safeguarding level with 999 and the number to call now."""
    conversation.say("/identify_parent")
    conversation.say("Gloucester")
    conversation.say("6")
    conversation.say("we are struggling with money and he is not sleeping")
    replies = conversation.say("yes")
    asked = conversation.questions(replies)
    check(conversation, asked and len(asked[-1]["buttons"]) >= 2, "asks a guided question with buttons before answering")
    first = conversation.text(asked)
    replies = conversation.say("sdfkjh")  # neither a button nor an answer
    check(conversation, "choose one of these" in conversation.text(replies), "asks the same question again, never a dead end")
    check(conversation, conversation.questions(replies), "with the buttons again")
    seen = [first]
    for _ in range(3):
        asked = conversation.questions(replies)
        if not asked:
            break
        titles = [b["title"] for b in asked[-1]["buttons"]]
        typed = "Yes" if "Yes" in titles else titles[-1]  # the most worrying answer, typed rather than clicked
        replies = conversation.say(typed.lower())
        seen.append(conversation.text(asked))
    answer = conversation.text(replies)
    check(conversation, not conversation.questions(replies), "answers after at most three questions")
    check(conversation, "level" in answer.lower() and "Gloucestershire" in answer, "then gives the level in the area")
    if any("hurt" in q for q in seen):
        check(conversation, "999" in answer, "a yes to harm gives 999 and the safeguarding level")


def test_nonsense_is_asked_again_never_a_dead_end(conversation):
    replies = conversation.say("sdkfjh qwpoeiru zxmcnv")
    check(conversation, replies and conversation.text(replies), "always answers")
    conversation.say("/identify_parent")
    replies = conversation.say("asdfghjkl")
    text = conversation.text(replies).lower()
    check(conversation, "couldn't tell which area" in text, "says it did not recognise the place")
    check(conversation, "which area" in text, "and asks again")
    replies = conversation.say("Aylesbury")
    check(conversation, "old" in conversation.text(replies).lower(), "then carries on")


def test_start_again_and_talk_to_a_person(conversation):
    conversation.say("/identify_parent")
    conversation.say("Brigg")
    replies = conversation.say("can I talk to a real person")
    text = conversation.text(replies)
    check(conversation, "North Lincolnshire" in text and "01724" in text, "the area's number for a person")
    check(conversation, "old" in text.lower(), "then returns to the question it was asking")
    replies = conversation.say("start again")
    check(conversation, "who are you" in conversation.text(replies).lower(), "starts again from the first question")


def test_safeguarding_cue_mid_form_pauses_and_resumes(conversation):
    conversation.say("/identify_parent")
    conversation.say("High Wycombe")
    payload = '/safeguarding_cue{"categories": ["physical_abuse"], "immediate_danger": true}'
    replies = conversation.say(payload, metadata={"text": "her dad is hitting her right now"})
    text = conversation.text(replies)
    check(conversation, text.index("999") < text.index("Buckinghamshire"), "999 comes first")
    check(conversation, "0845 4600 001" in text or "0800 999 7677" in text, "then the Buckinghamshire number for now")
    check(conversation, "Carry on" in conversation.buttons(replies), "offers to carry on")
    replies = conversation.say("/carry_on")
    check(conversation, "old" in conversation.text(replies).lower(), "carries on with the question it had reached")


def test_a_first_message_that_says_everything_goes_straight_to_the_check(conversation):
    replies = conversation.say("Hi, my son is 14 and we live in Scunthorpe. He won't go to school any more and "
                               "we argue every morning")
    summary = conversation.text(replies)
    check(conversation, "who are you" not in summary.lower() and "old" not in summary.lower().split("here's")[0],
          "asks nothing it was told")
    check(conversation, "a parent or carer" in summary and "North Lincolnshire" in summary and "14 years old" in summary
          and "won't go to school" in summary and "Is that right?" in summary, "reads every detail back to check")


def test_a_young_person_who_gives_their_age_and_worry_is_only_asked_where(conversation):
    asked = conversation.text(conversation.say("i'm 15 and my parents argue all the time and i can't sleep"))
    check(conversation, "which area" in asked.lower() and "who are you" not in asked.lower(), "only the area is asked")
    summary = conversation.text(conversation.say("gloucester"))
    check(conversation, "a young person" in summary and "15 years old" in summary and "parents argue" in summary,
          "then the check, with what they said first")


def test_a_professional_asking_where_to_refer_mid_questions_is_not_told_it_was_misunderstood(conversation):
    conversation.say("hello")
    asked = conversation.text(conversation.say("I'm a GP in Bath"))
    check(conversation, "old" in asked.lower() and "which council" not in asked.lower(), "the town gave the area")
    again = conversation.text(conversation.say("where do I refer a family who need more support? mum is struggling "
                                               "with the kids' behaviour and money"))
    check(conversation, "didn't catch" not in again and "old" in again.lower(), "the age is asked again, kindly")
    summary = conversation.text(conversation.say("not sure"))
    check(conversation, "a professional" in summary and "Bath" in summary and "mum is struggling" in summary,
          "the worry was kept")


def test_who_do_i_call_in_a_town_answers_for_that_town(conversation):
    text = conversation.text(conversation.say("who do I call at the weekend if I'm worried about a child in Cheltenham?"))
    check(conversation, "Gloucestershire" in text and "Buckinghamshire" not in text, "that area's numbers only")


def test_after_the_answer_more_services_thanks_and_goodbye_each_get_one_fitting_reply(conversation):
    conversation.say("my 5 year old has speech delay, we live in Aylesbury")
    conversation.answer_questions(conversation.say("yes"))
    for typed, expected in (("show me more", "More services"), ("thanks", "welcome"), ("bye", "Goodbye")):
        reply = conversation.text(conversation.say(typed))
        check(conversation, expected in reply and "didn't quite understand" not in reply, f"{typed!r} answered once")


def test_a_privacy_question_mid_questions_is_answered_and_the_question_asked_again(conversation):
    conversation.say("/identify_young_person")
    reply = conversation.text(conversation.say("will you tell my mum"))
    check(conversation, "anonymous" in reply and "duty team" in reply, "says what happens to what they type")
    check(conversation, "which area" in reply.lower(), "then the area question again")
    reply = conversation.text(conversation.say("i don't want to say where i live"))
    check(conversation, "choosing just your council" in reply and "which area" in reply.lower(), "a council is enough")
