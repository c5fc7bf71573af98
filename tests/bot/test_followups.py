"""The guided follow-up questions the conversation asks before giving a level (bot.replies)."""
from __future__ import annotations

import json

from hypothesis import given
from hypothesis import strategies as st

from bot import replies
from bot.triage import load_bank

UNCLEAR = "we are struggling with money and he is not sleeping"


def questions() -> list[dict]:
    return [q.render("parent") for q in load_bank().questions.values()]


def test_an_unclear_worry_gets_a_question_with_buttons():
    question = replies.next_followup("parent", "gloucestershire", 6, UNCLEAR)
    assert question is not None and question["options"]
    reply = replies.followup_question(question)
    assert reply["text"] == question["text"]
    payloads = [json.loads(b["payload"].removeprefix("/answer_question")) for b in reply["buttons"]]
    assert [p["answer"] for p in payloads] == [o["value"] for o in question["options"]]
    assert {p["question"] for p in payloads} == {question["id"]}


def test_no_more_than_three_questions():
    assert replies.next_followup("parent", "gloucestershire", 6, UNCLEAR, asked=3) is None


def test_a_clear_worry_gets_no_question():
    assert replies.next_followup("parent", "gloucestershire", 2, "my toddler isn't talking yet") is None


def test_answers_change_the_level_and_harm_lifts_it_to_four():
    _, before = replies.level_answer("parent", "gloucestershire", 6, UNCLEAR)
    messages, after = replies.level_answer("parent", "gloucestershire", 6, UNCLEAR, answers={"harm": "yes"})
    assert after["shared_level"] == 4 and after["shared_level"] >= before["shared_level"]
    assert "999" in messages[0]["text"]


def test_typed_replies_pick_the_option_they_mean():
    by_id = {q["id"]: q for q in questions()}
    assert replies.match_option(by_id["harm"], "Yeah") == "yes"
    assert replies.match_option(by_id["harm"], "dunno") == "unsure"
    assert replies.match_option(by_id["harm"], "nope") == "no"
    assert replies.match_option(by_id["how_long"], "a few weeks") == "weeks"
    assert replies.match_option(by_id["how_long"], "months now") == "months"
    assert replies.match_option(by_id["support"], "yes, but it's not enough") == "not_enough"
    assert replies.match_option(by_id["needs_count"], "several things really") == "3"
    assert replies.match_option(by_id["how_long"], "banana") is None


@given(st.text(max_size=200))
def test_any_typed_reply_is_an_option_or_none(text):
    for question in questions():
        value = replies.match_option(question, text)
        assert value is None or value in [o["value"] for o in question["options"]]
