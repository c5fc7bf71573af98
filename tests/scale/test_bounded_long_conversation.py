"""A conversation longer than the tracker's bound, through the real stack (the runner's Rasa, with
rasa_ext's store and ``max_event_history`` from the generated endpoints, and the real action server).

The person gives a town, then stays inside the form (asking for a person, asking if it is a bot) until the
session holds well over the bound's events, so the form's start and the town are no longer in the tracker
Rasa's policies see. The form must carry on with its slots: a greeting repeats the age question (the rule
for a greeting at the start must not fire on a truncated tracker), the age and the worry are asked for,
the summary reads back the town given at the start, and the answer is the area's. Every event is still in Rasa's SQLite store."""
from __future__ import annotations

import sqlite3

import pytest

from bot.runner import max_event_history
from tests.e2e.conftest import Conversation

pytestmark = pytest.mark.e2e


def stored(stack, sender: str) -> int:
    with sqlite3.connect(stack.state / "rasa-tracker.db") as conn:
        return conn.execute("SELECT count(*) FROM events WHERE sender_id = ?", (sender,)).fetchone()[0]


def check(conversation: Conversation, condition: bool, what: str) -> None:
    assert condition, f"{what}\n--- transcript ---\n{conversation.transcript()}"


def test_a_form_longer_than_the_bound_keeps_its_slots_and_rules(stack):
    bound = max_event_history()
    assert bound, "the runner writes a bound for its tracker store"
    conversation = Conversation(stack.rasa_url)
    first = conversation.text(conversation.say("/greet"))
    check(conversation, "999" in first and "who are you" in first.lower(), "the greeting at the start")
    conversation.say("/identify_parent")
    asked = conversation.text(conversation.say("we live in Stroud"))
    check(conversation, "old" in asked.lower(), "asks the age after the town")
    turns = 0
    while stored(stack, conversation.sender) < bound + 100:  # well past the bound, still inside the form
        message = ("/human_handoff", "/bot_challenge")[turns % 2]
        replies = conversation.text(conversation.say(message))
        check(conversation, "old" in replies.lower().split("\n")[-1], f"{message} inside the form returns to the age question")
        turns += 1
        assert turns < 80, "the session did not grow"
    again = conversation.text(conversation.say("/greet"))
    check(conversation, "who are you" not in again.lower() and "old" in again.lower().split("\n")[-1],
          "a greeting deep inside the form repeats the age question, not the conversation-start greeting")
    conversation.say("she's 2")
    summary = conversation.text(conversation.say("my toddler isn't talking yet and I'm worried she's behind"))
    check(conversation, "Stroud, Gloucestershire" in summary and "2 years old" in summary,
          "the summary reads back the town given before the bound, and the age")
    answer = conversation.text(conversation.answer_questions(conversation.say("/affirm")))
    check(conversation, "Gloucestershire" in answer and "level" in answer.lower(), "the area's level")
    assert stored(stack, conversation.sender) > bound + 100  # nothing was dropped from the store
