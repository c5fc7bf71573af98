"""Issue 6 end to end: a safeguarding cue typed in the middle of the questions, through the real web app,
Rasa and action server, becomes a stored escalation that is delivered to the duty inbox and acknowledged over
the case-system API; the person is given 999 and the number answering now, and the questions carry on.

Also: a "yes" TYPED to the triage's harm question ("Has anyone hurt the child ...?") escalates like its
button, through the real web app (with a stand-in Rasa that asks the question, including a second web app
instance answering the "yes"), and through the whole stack with the real Rasa and action server."""
from __future__ import annotations

import json
import time
import urllib.request

import pytest

from bot.web.security import CHAT_COOKIE
from tests.web.conftest import open_chat, open_store, say, texts
from tests.web.test_browser_stack import wait_until_ready


class Chat:
    """A person in the widget, over the JSON API (cookie session + CSRF), like the page's own script."""

    def __init__(self, url: str):
        import http.cookiejar
        import re

        self.url = url
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
        page = self.opener.open(url + "/", timeout=30).read().decode()
        self.csrf = re.search(r'<meta name="csrf-token" content="([^"]+)"', page).group(1)

    def say(self, message: str) -> list[dict]:
        request = urllib.request.Request(self.url + "/api/chat", data=json.dumps({"message": message}).encode(),
                                         headers={"Content-Type": "application/json", "X-CSRF-Token": self.csrf,
                                                  "Origin": self.url})
        with self.opener.open(request, timeout=60) as response:
            return json.loads(response.read())["messages"]


def text(messages: list[dict]) -> str:
    return "\n".join((m.get("text") or "") + json.dumps(m.get("custom") or {}) for m in messages)


@pytest.mark.e2e
def test_a_cue_mid_form_is_stored_delivered_acknowledged_and_the_questions_carry_on(web_stack):
    wait_until_ready(web_stack)
    chat = Chat(web_stack.url)
    chat.say("hi")
    chat.say("/identify_parent")
    asked = text(chat.say("we live in Gloucester"))
    assert "old" in asked.lower()  # mid-form: the age question is pending
    before = {e["id"] for e in open_store(web_stack.settings).list()}
    answer = chat.say("her dad is hitting her right now and she is screaming")
    assert answer[0]["custom"]["type"] == "safety" and "999" in text(answer[:1])  # 999 first, at once
    store = open_store(web_stack.settings)
    (escalation,) = [e for e in store.list() if e["id"] not in before]
    assert escalation["area"] == "gloucestershire" and escalation["urgency"] == "immediate"
    deadline = time.monotonic() + 60  # the delivery worker inside the web app puts it in the duty inbox
    while not any(d["status"] == "delivered" for d in store.get(escalation["id"])["deliveries"]):
        assert time.monotonic() < deadline, store.get(escalation["id"])["deliveries"]
        time.sleep(0.5)
    request = urllib.request.Request(f"{web_stack.url}/api/escalations/{escalation['id']}/ack", method="POST",
                                     data=b'{"by": "case system test"}',
                                     headers={"Authorization": f"Bearer {web_stack.settings.duty_token}",
                                              "Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status == 200
    assert store.get(escalation["id"])["status"] == "acknowledged"
    resumed = text(chat.say("/carry_on"))
    assert "old" in resumed.lower(), resumed  # back to the question it was asking
    summary = text(chat.say("7"))
    assert "how" in summary.lower() or "worr" in summary.lower(), summary  # then what is worrying them


@pytest.mark.e2e
def test_a_cue_as_the_first_message_gives_the_towns_number_takes_a_call_back_and_carries_on_with_its_details(web_stack):
    wait_until_ready(web_stack)
    chat = Chat(web_stack.url)
    before = {e["id"] for e in open_store(web_stack.settings).list()}
    answer = text(chat.say("we're in Stroud and my partner hit me last night in front of the kids, my daughter is 4"))
    assert "Gloucestershire" in answer and "Buckinghamshire" not in answer, answer  # the town's number, not all four
    store = open_store(web_stack.settings)
    (escalation,) = [e for e in store.list() if e["id"] not in before]
    assert escalation["area"] == "gloucestershire"
    assert "safe for you" in text(chat.say("yes")).lower()  # yes to a call back: how to give one
    thanked = text(chat.say("07700 900123"))
    assert "passed your contact details" in thanked
    assert "07700 900123" in str(store.get(escalation["id"])["contact"])
    summary = text(chat.say("/carry_on"))
    # the questions start from what was said with the cue: nothing is asked again
    assert "a parent or carer" in summary and "Gloucestershire" in summary and "4 years old" in summary, summary
    assert "Is that right?" in summary


# -- a typed "yes" to the triage's harm question -----------------------------------------------------------

def harm_question_reply() -> tuple[dict, str, str]:
    """Rasa's reply asking the harm question (as the action server renders it), and its yes/no payloads."""
    from bot.replies import followup_question
    from bot.triage import load_bank

    reply = followup_question(load_bank().questions["harm"].render("parent"))
    payload = {b["title"]: b["payload"] for b in reply["buttons"]}
    return {"text": reply["text"], "buttons": reply["buttons"]}, payload["Yes"], payload["No"]


async def test_a_typed_yes_to_the_harm_question_escalates_like_the_button(make_settings, client_for, rasa_recorder):
    question, yes, _no = harm_question_reply()
    rasa = await rasa_recorder(reply=[{"text": "Thanks. Which area do you live in?"}])
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Scunthorpe")
    # a "yes" to some other question is just a yes
    rasa.reply = [{"text": "Is that right?", "buttons": [{"title": "Yes", "payload": "/affirm"}]}]
    await say(client, csrf, "he is behaving differently lately and is very clingy")
    rasa.reply = [question]
    doc = await (await say(client, csrf, "yes")).json()
    if "Just to check" in texts(doc):  # the screen was unsure of the worry: which question "yes" answers
        await say(client, csrf, "no")
    assert open_store(settings).list() == [] and rasa.received[-1]["message"] == "yes"
    # the harm question was asked: "yeah" is the button's "yes"
    rasa.reply = [{"text": "Thank you for telling me."}]
    doc = await (await say(client, csrf, "yeah")).json()
    (escalation,) = open_store(settings).list()
    assert escalation["area"] == "north-lincolnshire" and escalation["urgency"] == "urgent"
    assert "hurt" in escalation["excerpt"]
    assert rasa.received[-1]["message"] == yes  # the triage records the answer as if the button was pressed
    card = doc["messages"][0]
    assert card["custom"]["type"] == "safety" and card["custom"]["recorded"] is True and "999" in card["text"]
    # answered: the question is no longer pending, so another "yes" is only a yes
    await say(client, csrf, "yes")
    assert len(open_store(settings).list()) == 1 and rasa.received[-1]["message"] == "yes"


async def test_a_typed_yes_after_the_details_check_and_the_safety_question_is_asked_which(make_settings, client_for,
                                                                                           rasa_recorder, monkeypatch):
    """The screen unsure of a worry adds the safety question to the assistant's own "Is that right?": a typed
    "yes" could answer either. It is held and the danger question asked plainly; "no" passes the held "yes"
    on as the person meant it, "yes" escalates at once. A button, or "yes" with words, is never held."""
    import bot.web.gateway as gateway
    from bot.safeguarding import Screening

    real = gateway.screen
    monkeypatch.setattr(gateway, "screen", lambda t: Screening(unsure=True, categories=["neglect"], matched=["possibly neglect"])
                        if "clingy" in t else real(t))
    rasa = await rasa_recorder(reply=[{"text": "Is that right?", "buttons": [{"title": "Yes, that's right", "payload": "/affirm"}]}])
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Scunthorpe")
    asked = await (await say(client, csrf, "he is very clingy lately")).json()
    assert "Is that right?" in texts(asked) and "danger" in texts(asked)
    forwarded = len(rasa.received)
    doc = await (await say(client, csrf, "yes")).json()
    assert "Just to check" in texts(doc) and "999" in texts(doc) and len(rasa.received) == forwarded
    assert open_store(settings).list() == []
    doc = await (await say(client, csrf, "no")).json()
    assert rasa.received[-1]["message"] == "yes" and "If that changes, call 999" in texts(doc)
    assert open_store(settings).list() == []
    # the same, but the person is in danger: escalated as immediate
    await say(client, csrf, "he is very clingy and quiet again")
    await say(client, csrf, "yes")
    await say(client, csrf, "yes")
    (escalation,) = open_store(settings).list()
    assert escalation["urgency"] == "immediate"


async def test_no_or_unsure_typed_to_the_harm_question_does_not_escalate(make_settings, client_for, rasa_recorder):
    question, _yes, _no = harm_question_reply()
    rasa = await rasa_recorder(reply=[question])
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Gloucester")
    for typed in ("no", "nope", "I'm not sure", "not really"):
        doc = await (await say(client, csrf, typed)).json()
        assert rasa.received[-1]["message"] == typed  # Rasa reads these as before
        assert all((m["custom"] or {}).get("type") != "safety" for m in doc["messages"])
    assert open_store(settings).list() == []


async def test_a_typed_yes_with_a_cue_keeps_the_cue_and_its_danger(make_settings, client_for, rasa_recorder):
    question, yes, _no = harm_question_reply()
    rasa = await rasa_recorder(reply=[question])
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Gloucester")
    doc = await (await say(client, csrf, "yes, her dad is hitting her right now")).json()
    (escalation,) = open_store(settings).list()
    assert escalation["urgency"] == "immediate" and "physical_abuse" in escalation["categories"]
    assert rasa.received[-1]["message"] == yes
    assert rasa.received[-1]["metadata"]["text"].startswith("[answered yes")
    assert doc["messages"][0]["custom"]["immediate_danger"] is True and "999" in doc["messages"][0]["text"]


async def test_the_question_is_remembered_across_web_instances(make_settings, client_for, rasa_recorder):
    """Two web app instances on one database (as behind a load balancer): one relays the harm question,
    the other receives the typed "yes" and escalates it."""
    question, yes, _no = harm_question_reply()
    rasa = await rasa_recorder(reply=[question])
    settings = make_settings(rasa_url=rasa.url)
    first = await client_for(settings)
    second = await client_for(settings)
    csrf = await open_chat(first)
    await say(first, csrf, "we live in Gloucester")
    cookie = next(c.value for c in first.session.cookie_jar if c.key == CHAT_COOKIE)
    rasa.reply = [{"text": "Thank you for telling me."}]
    response = await second.post("/api/chat", json={"message": "Yes."},
                                 headers={"X-CSRF-Token": csrf, "Cookie": f"{CHAT_COOKIE}={cookie}"})
    doc = await response.json()
    assert response.status == 200, doc
    (escalation,) = open_store(settings).list()
    assert escalation["area"] == "gloucestershire" and rasa.received[-1]["message"] == yes
    assert doc["messages"][0]["custom"]["type"] == "safety"


async def test_an_escalation_the_store_cannot_confirm_says_so(make_settings, client_for, rasa_recorder):
    """The escalation store is locked by another writer past the answer's budget: the person still gets 999
    and the number at once, the card says the escalation is not confirmed, and the text asks them to call."""
    import sqlalchemy as sa

    rasa = await rasa_recorder(reply=[{"text": "ok"}])
    settings = make_settings(rasa_url=rasa.url)
    client = await client_for(settings)
    csrf = await open_chat(client)
    await say(client, csrf, "we live in Gloucester")
    engine = sa.create_engine(settings.database_url)
    blocker = engine.connect()
    blocker.exec_driver_sql("BEGIN IMMEDIATE")  # holds SQLite's write lock (readers still read, in WAL)
    try:
        started = time.monotonic()
        doc = await (await say(client, csrf, "my dad is hitting me right now")).json()
        assert time.monotonic() - started < 3
    finally:
        blocker.exec_driver_sql("ROLLBACK")
        blocker.close()
        engine.dispose()
    card = doc["messages"][0]
    assert card["custom"]["type"] == "safety" and card["custom"]["recorded"] is False
    assert "999" in card["text"] and "can't be sure" in doc["messages"][1]["text"]


@pytest.mark.e2e
def test_a_typed_yes_to_the_harm_question_escalates_through_the_whole_stack(web_stack):
    wait_until_ready(web_stack)
    chat = Chat(web_stack.url)
    chat.say("/identify_parent")
    chat.say("we live in Gloucester")
    chat.say("6")
    replies = chat.say("he is behaving differently lately and is very clingy")
    before = {e["id"] for e in open_store(web_stack.settings).list()}
    for _ in range(4):  # confirm the summary, then answer the guided questions until the harm one
        buttons = [b for m in replies for b in m.get("buttons") or []]
        if any('"harm"' in b["payload"] for b in buttons):
            break
        if any(b["payload"].startswith("/answer_question") for b in buttons):
            replies = chat.say(buttons[0]["title"].lower())
        elif "Just to check" in text(replies):  # the screen was unsure of the worry: not in danger
            replies = chat.say("no")
        else:
            replies = chat.say("yes")
    else:
        raise AssertionError(f"the harm question was never asked: {text(replies)}")
    assert {e["id"] for e in open_store(web_stack.settings).list()} == before
    answer = chat.say("yes")
    (escalation,) = [e for e in open_store(web_stack.settings).list() if e["id"] not in before]
    assert escalation["area"] == "gloucestershire" and "hurt" in escalation["excerpt"]
    assert answer[0]["custom"]["type"] == "safety" and answer[0]["custom"]["recorded"] is True
    assert "999" in text(answer)


def test_reading_the_harm_question_and_a_typed_answer_never_raises():
    """Whatever Rasa's buttons hold and whatever is typed, the gateway reads the question (or not) without
    raising, and only an answer that picks "yes" counts as yes."""
    from hypothesis import given, settings, strategies as st

    from bot.web.gateway import harm_question_in, typed_harm_answer

    payload = st.one_of(st.text(max_size=80), st.builds(lambda a: '/answer_question{"question": "harm", "answer": %s}' % a,
                                                         st.sampled_from(['"yes"', '"no"', "1", "null", '"unsure"', "{"])))
    button = st.fixed_dictionaries({"title": st.text(max_size=20), "payload": payload})
    message = st.fixed_dictionaries({"buttons": st.lists(button, max_size=4)})

    @settings(max_examples=150, deadline=None)
    @given(st.lists(message, max_size=3), st.text(max_size=200))
    def check(messages, typed):
        question = harm_question_in(messages)
        answer = typed_harm_answer(question, typed)
        if question is None:
            assert answer is None
        elif answer is not None:
            assert answer in {o["value"] for o in question["options"]}

    check()
    question, _yes, _no = harm_question_reply()
    found = harm_question_in([question])
    assert typed_harm_answer(found, "Yeah") == "yes" and typed_harm_answer(found, "nope") == "no"
    assert typed_harm_answer(found, "/affirm") is None and typed_harm_answer(None, "yes") is None
