"""The level-of-need triage (``bot.triage``): the conservative combination rules, reasons by domain with
their sources, follow-up questions when unsure, each area's own level names (and a three-level scheme),
bad and hostile input, and the development set's targets.

The rules are tested twice: on ``decide`` directly with hand-made signals (exact, no model), and through
``assess`` on real sentences with the real embedding model (loaded once per session).
"""
from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.areas import get_area, load_area_file, load_areas
from bot.errors import BadInput, UnknownArea
from bot.triage import (
    MAX_FOLLOW_UPS,
    Assessment,
    FollowUp,
    assess,
    follow_up,
    questions,
    record_answer,
)
from bot.triage.bank import ANSWER_IDS, DOMAINS, TriageFileError, load_bank, load_bank_from
from bot.triage.engine import Answers, Signal, decide, questions_for

REPO = Path(__file__).resolve().parents[2]
DATA = REPO / "tests" / "data"
FIXTURE = DATA / "areas_fixture" / "testshire.yml"
AREAS = ("buckinghamshire", "bath-and-north-east-somerset", "gloucestershire", "north-lincolnshire")

# Sentences that each point clearly to risk of significant harm (level 4), in different voices.
HARM = [
    "His dad hit him with a belt and left bruises on his back.",
    "My 15 year old told me she wants to kill herself.",
    "She has gone missing again overnight and we don't know where she is.",
    "An older man picks her up in his car and gives her alcohol and money.",
    "My partner punches me in front of the children.",
    "The baby has a bruise on his face and I don't know how it happened.",
    "My stepdad touches me in places he shouldn't and I'm scared to go home.",
    "They make him carry drugs to other towns for them.",
]
EVERYDAY = "What activities are on for kids in the summer holidays?"
TWO_NEEDS = "We are struggling to pay the bills and my son isn't talking much yet."
THREE_NEEDS = (
    "We're struggling to pay the bills, my 6 year old isn't talking much yet, "
    "and I feel very isolated with no family nearby."
)
THIN = "I'm worried about my son."


@pytest.fixture(scope="module", autouse=True)
def warm():
    """Load the bank and the embedding model once (one thread: the machine's cores are shared)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    assess("warm up: my child is not sleeping well")
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def bank():
    return load_bank()


def sig(ident: str, level: int, domain: str = "family_environment", *, theme: str | None = None,
        kind: str = "need", via: str = "pattern", strength: float = 1.0, possible: bool = False) -> Signal:
    if level == 4:
        domain = "safeguarding"
    return Signal(ident, domain, level, kind, theme or ident, f"plain words for {ident}", "practice",
                  strength, via, possible)


# ------------------------------------------------------------------------------------------ combination rules
def test_level4_sign_wins_whatever_else_is_said(bank):
    signals = [sig("club", 1, kind="universal"), sig("doing_well", 1, kind="protective"), sig("money", 2),
               sig("hit", 4)]
    decision = decide(signals, Answers(support="helping", how_long="days", needs_count=1, harm="no"), bank.settings)
    assert decision.shared_level == 4


def test_harm_answer_yes_is_level_4_even_with_nothing_else(bank):
    assert decide([], Answers(harm="yes"), bank.settings).shared_level == 4
    assert decide([sig("club", 1, kind="universal")], Answers(harm="yes"), bank.settings).shared_level == 4


def test_several_level2_needs_across_domains_make_level_3(bank):
    needs = [sig("money", 2, "family_environment"), sig("speech", 2, "child_development"),
             sig("low_mood", 2, "parenting_capacity")]
    decision = decide(needs, Answers(), bank.settings)
    assert decision.shared_level == 3
    assert any("several needs" in rule for rule in decision.rules)
    # two are not several
    assert decide(needs[:2], Answers(), bank.settings).shared_level == 2


def test_the_same_need_said_twice_counts_once(bank):
    needs = [sig("rent", 2, theme="money"), sig("debt", 2, theme="money"), sig("speech", 2, "child_development")]
    assert decide(needs, Answers(), bank.settings).shared_level == 2


def test_answered_number_of_needs_counts(bank):
    assert decide([sig("money", 2)], Answers(needs_count=3), bank.settings).shared_level == 3
    assert decide([sig("money", 2)], Answers(needs_count=1), bank.settings).shared_level == 2


def test_support_not_enough_raises_2_to_3_but_never_past_3_without_harm(bank):
    assert decide([sig("money", 2)], Answers(support="not_enough"), bank.settings).shared_level == 3
    assert decide([sig("money", 2)], Answers(support="helping"), bank.settings).shared_level == 2
    everything = Answers(support="not_enough", how_long="years", needs_count=50, services_involved=True)
    assert decide([sig("money", 2), sig("absence", 3, "child_development")], everything, bank.settings).shared_level == 3


def test_long_standing_everyday_worry_becomes_level_2(bank):
    club = [sig("sleep", 1, kind="universal")]
    assert decide(club, Answers(how_long="days"), bank.settings).shared_level == 1
    assert decide(club, Answers(how_long="years"), bank.settings).shared_level == 2


def test_protective_signs_never_lower_a_need(bank):
    signals = [sig("absence", 3, "child_development"), sig("doing_well", 1, kind="protective")]
    assert decide(signals, Answers(), bank.settings).shared_level == 3


def test_torn_between_two_levels_takes_the_higher_with_low_confidence_and_a_question(bank):
    signals = [sig("money", 2), sig("maybe_hit", 4, via="meaning", strength=0.6, possible=True)]
    decision = decide(signals, Answers(), bank.settings)
    assert decision.shared_level == 4 and decision.torn == (2, 4)
    assert decision.confidence < bank.settings.low_confidence
    asked = questions_for(decision, Answers(), bank, None)
    assert asked and asked[0]["id"] == "harm"  # the boundary that matters most is asked first
    # "no, nobody has hurt the child" settles it downward; "not sure" keeps erring upward
    assert decide(signals, Answers(harm="no"), bank.settings).shared_level == 2
    assert decide(signals, Answers(harm="unsure"), bank.settings).shared_level == 4


def test_unsure_about_harm_errs_upward(bank):
    decision = decide([sig("money", 2)], Answers(harm="unsure"), bank.settings)
    assert decision.shared_level == 4 and decision.confidence < bank.settings.low_confidence


def test_screen_doubt_asks_about_harm_first_without_setting_the_level(bank):
    """The safeguarding screen's "unsure" is a doubt: the question about harm comes first, and the answer
    decides (yes or not sure: level 4; no: the triage's own reading)."""
    doubt = Signal("safeguarding:unsure", "safeguarding", 4, "need", "unsure", "might be a safeguarding concern",
                   "practice", 0.5, "screen", possible=True)
    signals = [sig("money", 2), doubt]
    decision = decide(signals, Answers(), bank.settings)
    assert decision.shared_level == 2 and decision.doubt
    assert decision.confidence < bank.settings.low_confidence
    assert questions_for(decision, Answers(), bank, None)[0]["id"] == "harm"
    assert decide(signals, Answers(harm="no"), bank.settings).shared_level == 2
    assert not decide(signals, Answers(harm="no"), bank.settings).doubt
    assert decide(signals, Answers(harm="unsure"), bank.settings).shared_level == 4
    assert decide(signals, Answers(harm="yes"), bank.settings).shared_level == 4
    # an escalation by the screen (not a doubt) is level 4 at once
    firm = Signal("safeguarding:neglect", "safeguarding", 4, "need", "neglect", "neglect", "practice", 1.0, "screen")
    assert decide([sig("money", 2), firm], Answers(harm="no"), bank.settings).shared_level == 4


def test_a_firm_level4_is_never_lowered_by_any_answers(bank):
    for harm in ("no", "unsure", None):
        for support in ("none", "helping", "not_enough", None):
            answers = Answers(harm=harm, support=support, how_long="days", needs_count=0)
            assert decide([sig("hit", 4)], answers, bank.settings).shared_level == 4


# ------------------------------------------------------------------------------------------ through assess
@pytest.mark.parametrize("harm", HARM)
def test_harm_sentence_alone_is_level_4(harm):
    result = assess(harm)
    assert result.shared_level == 4, (harm, result.reasons)
    assert any(r["domain"] == "safeguarding" for r in result.reasons)


@pytest.mark.parametrize("harm", HARM[:4])
def test_harm_outweighs_reassurance_and_everyday_talk(harm):
    text = f"{EVERYDAY} He is doing really well at school and has lots of friends. {harm}"
    result = assess(text, answers={"support": "helping", "how_long": "days", "harm": "no"})
    assert result.shared_level == 4


def test_several_additional_needs_across_domains_are_level_3_with_the_rule_named():
    result = assess(THREE_NEEDS)
    assert result.shared_level == 3
    assert {r["level"] for r in result.reasons} == {2}
    assert len({r["domain"] for r in result.reasons}) >= 2
    assert any("several needs" in rule for rule in result.rules)


def test_one_additional_need_is_level_2_and_an_everyday_question_level_1():
    assert assess("My son is being bullied at school.").shared_level == 2
    assert assess(EVERYDAY).shared_level == 1


def test_missing_school_is_about_attendance_not_a_missing_child():
    result = assess("My son has been missing school.")
    assert result.shared_level in (2, 3)
    assert "missing_from_home" not in {r["indicator"] for r in result.reasons}
    assert assess("My son has been missing since last night.").shared_level == 4


def test_negated_cue_does_not_count(bank):
    from bot.triage import text as T
    from bot.triage.engine import find_by_pattern

    for said in ("There are no concerns about domestic abuse.", "He is not self harming.",
                 "She has never been excluded from school."):
        found = find_by_pattern(bank, T.sentences([said]), None)
        assert not [s for s in found.values() if s.kind == "need"], (said, list(found))
    assert assess("We have no worries about his speech, we just want a football club.").shared_level == 1
    assert assess("No domestic abuse, we just want a football club.").shared_level == 1


def test_reasons_are_grouped_by_domain_with_sources(bank):
    result = assess("My son is being bullied at school and he has stopped going. " + HARM[0])
    order = ["safeguarding", "child_development", "parenting_capacity", "family_environment"]
    domains = [r["domain"] for r in result.reasons]
    assert domains == sorted(domains, key=order.index)  # grouped, safeguarding first
    assert set(domains) >= {"safeguarding", "child_development"}
    grouped = result.by_domain()
    assert list(grouped) == list(dict.fromkeys(domains))
    for reason in result.reasons:
        assert set(reason) == {"domain", "indicator", "level", "plain", "source"}
        assert reason["domain"] in DOMAINS
        assert reason["source"] in bank.sources
        assert "_" not in reason["plain"] and reason["plain"].strip()
    assert result.reasons[0]["plain"] in result.message


def test_every_indicator_cites_a_listed_source_and_every_level_and_domain_is_covered(bank):
    assert {i.level for i in bank.indicators} == {1, 2, 3, 4}
    for domain in ("child_development", "parenting_capacity", "family_environment"):
        assert {i.level for i in bank.indicators if i.domain == domain} >= {1, 2, 3}, domain
    assert all(i.source in bank.sources for i in bank.indicators)
    practice = {i.theme for i in bank.indicators}
    for theme in ("attendance", "development", "money", "housing", "domestic_abuse", "parent_substances",
                  "parent_mental_health", "caring", "sexual_exploitation", "criminal_exploitation", "offending",
                  "missing"):
        assert theme in practice, theme


def test_explanation_is_plain_words_in_the_areas_terms():
    area = get_area("gloucestershire")
    result = assess(THREE_NEEDS, area="gloucestershire")
    assert result.explanation.startswith(f"This sounds like {area.level(3).name}")
    assert area.level(3).meaning in result.explanation
    assert "money" in result.explanation.lower()
    for jargon in ("_", "shared level", "indicator", "confidence"):
        assert jargon not in result.explanation
    danger = assess(HARM[0], area="gloucestershire").explanation
    assert "999" in danger


# ------------------------------------------------------------------------------------------ follow-up questions
def test_low_confidence_offers_at_most_two_questions_with_buttons(bank):
    result = assess(TWO_NEEDS)
    assert result.shared_level == 2 and result.confidence < bank.settings.low_confidence
    assert 1 <= len(result.next_questions) <= 2
    for question in result.next_questions:
        assert question["id"] in bank.questions and question["text"].endswith("?")
        assert len(question["options"]) >= 2
        assert all(set(o) == {"title", "value", "means"} for o in question["options"])
    assert result.next_questions[0]["id"] == "needs_count"


def test_confident_answers_ask_nothing(bank):
    for text in (HARM[0], "My son is being bullied at school."):
        result = assess(text)
        assert result.confidence >= bank.settings.low_confidence and result.next_questions == []


def test_answering_the_question_settles_the_level():
    assert assess(TWO_NEEDS, answers={"needs_count": "3"}).shared_level == 3
    settled = assess(TWO_NEEDS, answers={"needs_count": "1", "support": "none"})
    assert settled.shared_level == 2
    assert not {q["id"] for q in settled.next_questions} & {"needs_count", "support"}


def test_young_person_is_asked_in_their_own_words():
    result = assess(TWO_NEEDS, answers={"speaker": "young_person"})
    assert any(" you" in q["text"] for q in result.next_questions)
    assert all("the child" not in q["text"] for q in result.next_questions)


def test_question_bank_has_ids_text_buttons_and_meanings(bank):
    bank_questions = questions()
    assert set(bank_questions) <= set(ANSWER_IDS) and {"harm", "needs_count", "support", "how_long"} <= set(bank_questions)
    for qid, question in bank_questions.items():
        assert question["id"] == qid and "{child}" not in question["text"]
        for option in question["options"]:
            assert option["title"] and option["means"]
            assert record_answer({}, qid, option["value"]) == {qid: option["value"]}
            assert record_answer({}, qid, option["title"].upper()) == {qid: option["value"]}
            assess("my son is being bullied", answers={qid: option["value"]})  # every value is a valid answer


def test_record_answer_rejects_unknown_questions_and_options():
    with pytest.raises(BadInput, match="harm"):
        record_answer({}, "favourite_colour", "blue")
    with pytest.raises(BadInput, match="'yes'"):
        record_answer({}, "harm", "perhaps")
    assert record_answer({"age": 7}, "support", "Yes, but it's not enough") == {"age": 7, "support": "not_enough"}


def test_follow_up_asks_up_to_three_questions_then_gives_the_level():
    answers: dict = {"speaker": "parent"}
    asked: list[str] = []
    text = THIN
    step = follow_up(text, answers, "buckinghamshire", asked)
    seen = []
    while not step.done:
        assert isinstance(step, FollowUp) and step.question["id"] not in seen
        seen.append(step.question["id"])
        last = step.question["options"][-1]["value"]  # the most worrying or "not sure" answer each time
        answers = record_answer(step.answers, step.question["id"], last)
        asked.append(step.question["id"])
        step = follow_up(text, answers, "buckinghamshire", asked)
        assert len(asked) <= MAX_FOLLOW_UPS
    assert seen and seen[0] == "harm"  # a vague worry: the question that matters most comes first
    assert step.assessment.shared_level == 4  # "not sure" whether the child is hurt: the safe side
    assert step.assessment.label == get_area("buckinghamshire").level(4).name
    assert json.loads(json.dumps(step.to_dict()))["assessment"]["level"] == step.assessment.level


def test_follow_up_stops_after_three_even_if_still_unsure():
    step = follow_up(THIN, {"harm": "no", "needs_count": "1", "how_long": "days"}, None, ["harm", "needs_count", "how_long"])
    assert step.done


def test_follow_up_for_unreadable_text_asks_in_words_not_buttons():
    step = follow_up("😀😀😀")
    assert step.done and step.assessment.needs_more and "tell me" in step.assessment.message.lower()


# ------------------------------------------------------------------------------------------ the areas' own levels
@pytest.mark.parametrize("area_id", AREAS)
@pytest.mark.parametrize("text, shared", [(EVERYDAY, 1), ("My son is being bullied at school.", 2), (THREE_NEEDS, 3), (HARM[1], 4)])
def test_each_area_names_the_level_in_its_own_words(area_id, text, shared):
    area = get_area(area_id)
    result = assess(text, area=area_id)
    assert result.shared_level == shared
    assert (result.level, result.label) == (area.level(shared).number, area.level(shared).name)
    assert result.to_dict()["label"] == area.level(shared).name


def test_all_four_areas_are_configured():
    assert set(AREAS) <= set(load_areas())


def test_three_level_scheme_from_the_area_file():
    testshire = load_area_file(FIXTURE)
    assert len(testshire.levels) == 3
    got = {shared: assess(text, area=testshire) for text, shared in
           [(EVERYDAY, 1), ("My son is being bullied at school.", 2), (THREE_NEEDS, 3), (HARM[0], 4)]}
    assert {s: (a.level, a.label) for s, a in got.items()} == {
        1: (1, "Everyday"), 2: (2, "Extra help"), 3: (2, "Extra help"), 4: (3, "Protection")}
    assert all(a.shared_level == s for s, a in got.items())


def test_three_level_scheme_does_not_ask_what_it_cannot_tell_apart():
    """Torn between shared levels 2 and 3, which Testshire calls by one name: nothing to ask."""
    testshire = load_area_file(FIXTURE)
    four_levels = assess(TWO_NEEDS)
    three_levels = assess(TWO_NEEDS, area=testshire)
    assert "needs_count" in {q["id"] for q in four_levels.next_questions}
    assert "needs_count" not in {q["id"] for q in three_levels.next_questions}
    assert three_levels.label == "Extra help"


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, words",
    [
        ({"text": 42}, "text must be a string"),
        ({"text": None}, "text must be a string"),
        ({"text": ["fine", 3]}, "text must be a string"),
        ({"text": {"text": "x"}}, "text must be a string"),
        ({"text": "ok", "answers": "age 7"}, "answers must be a mapping"),
        ({"text": "ok", "answers": {"age": "seven"}}, "answers.age"),
        ({"text": "ok", "answers": {"age": 99}}, "answers.age"),
        ({"text": "ok", "answers": {"age": True}}, "answers.age"),
        ({"text": "ok", "answers": {"harm": "maybe"}}, "answers.harm"),
        ({"text": "ok", "answers": {"speaker": "cat"}}, "answers.speaker"),
        ({"text": "ok", "answers": {"support": 3}}, "answers.support"),
        ({"text": "ok", "area": 5}, "area"),
    ],
)
def test_wrong_types_are_bad_input_with_a_clear_message(kwargs, words):
    with pytest.raises(BadInput) as err:
        assess(kwargs.pop("text"), **kwargs)
    assert words in str(err.value)


def test_unknown_area_names_the_known_ones():
    with pytest.raises(UnknownArea) as err:
        assess("my son is being bullied", area="narnia")
    assert "narnia" in str(err.value)
    for area_id in AREAS:
        assert area_id in str(err.value)


@pytest.mark.parametrize("text, kind", [
    ("", "tell me"), ("   \n\t ", "tell me"), ("😀😀😀", "tell me"), ("🙂 👍🏽 🇬🇧", "tell me"), ("?!...", "tell me"),
    ("asdkjh qwe zxcmn", "tell me"),
    (THIN, "tell me"),
    (["", "   "], "tell me"),
])
def test_nothing_to_judge_asks_for_more_rather_than_guessing(text, kind):
    result = assess(text)
    assert result.needs_more and result.reasons == [] and result.confidence == 0.0
    assert kind in result.message.lower()


@pytest.mark.parametrize("text", [
    "Mi hijo no va a la escuela y estoy muy preocupada",
    "Mój syn nie chodzi do szkoły i bardzo się martwię",
    "ابني لا يذهب إلى المدرسة",
    "我的儿子不去上学",
])
def test_another_language_is_never_given_a_guessed_level(text):
    """"I can only understand English" (with 999), unless the safeguarding screen recognises harm in it, in
    which case the safe side: level 4. Never a level 1-3 read from words the triage does not understand."""
    result = assess(text)
    if result.needs_more:
        assert "english" in result.message.lower() and "999" in result.message and result.reasons == []
        assert result.next_questions == []
    else:
        assert result.shared_level == 4 and result.reasons[0]["domain"] == "safeguarding"


def test_a_vague_worry_gets_the_harm_question_first():
    result = assess("i think something might be wrong at home, she flinches when her stepdad comes in")
    assert result.needs_more or result.shared_level == 4
    if result.needs_more:
        assert result.next_questions[0]["id"] == "harm"


def test_harm_in_another_language_message_is_still_found():
    result = assess(["Hola, buenos días", HARM[0]])
    assert result.shared_level == 4 and not result.needs_more


def test_huge_text_is_answered_and_a_cue_at_either_end_is_found():
    filler = "We went to the park and had a nice day. " * 2800  # 112,000 characters: more than is read
    for text in (filler + HARM[0], HARM[0] + " " + filler):
        result = assess(text)
        assert result.shared_level == 4 and len(json.dumps(result.to_dict())) < 20_000


def test_several_messages_are_read_together():
    result = assess(["We're struggling to pay the bills.", "My 6 year old isn't talking much yet.",
                     "I feel very isolated with no family nearby."])
    assert result.shared_level == 3


def test_a_failing_safeguarding_screen_never_stops_a_level(monkeypatch):
    """Fault injection: the screen raising must not lose the triage's own reading of harm."""
    import bot.safeguarding

    def broken(text):
        raise RuntimeError("screen down")

    monkeypatch.setattr(bot.safeguarding, "screen", broken)
    assert assess(HARM[0]).shared_level == 4
    assert assess("My son is being bullied at school.").shared_level == 2


def test_follow_up_rejects_a_bad_asked_list():
    with pytest.raises(BadInput, match="asked"):
        follow_up(TWO_NEEDS, asked="harm")


# ------------------------------------------------------------------------------------------ loose matches
# Ordinary worries told about someone else ("mum is struggling with ...") were once rated level 3-4 because a
# sentence is close in meaning to "a parent fears they may harm the child" or "a parent's learning disability
# makes daily care hard". "Struggling with X" is a need at the level of X.
STRUGGLING = [
    "mum is struggling with the kids behaviour",
    "mum is struggling with money",
    "where do I refer a family who need more support? mum is struggling with the kids' behaviour and money",
    "dad is struggling with the children",
    "Mum is struggling with his tantrums and bedtimes.",
    "My partner is struggling with our son's meltdowns.",
]
# ... while a fear of harming, or harm, said in the third person stays level 4
STILL_HARM = [
    "mum says she's scared she'll hurt the baby",
    "dad hits the kids when he's drunk",
    "Dad is frightened he'll lose it with the kids and hurt them.",
    "mum is struggling and says she's scared she might hurt the baby",
]


@pytest.mark.parametrize("text", STRUGGLING)
def test_struggling_with_an_ordinary_need_is_level_2_not_a_fear_of_harm(text):
    result = assess(text)
    assert result.shared_level == 2, (result.shared_level, result.reasons)
    assert all(r["level"] < 3 for r in result.reasons)


@pytest.mark.parametrize("text", STILL_HARM)
def test_harm_or_fear_of_harming_in_the_third_person_stays_level_4(text):
    assert assess(text).shared_level == 4


def test_a_level4_match_by_meaning_needs_a_harm_word_or_a_near_paraphrase(bank):
    """The mechanism on the real bank and model: the same likeness to "a parent fears they may harm the
    child" counts with a harm word in the sentence and not without one."""
    from bot.triage import _index
    from bot.triage.engine import anchored, find_by_meaning

    ind = bank.by_id["parent_may_harm_child"]
    assert not anchored(ind, "mum is struggling with the kids behaviour", bank.settings)
    assert anchored(ind, "mum is scared she will hurt the kids", bank.settings)
    assert not anchored(ind, "there are no bruises on him", bank.settings)  # negated
    loose = find_by_meaning(bank, _index(), ["mum is struggling with the kids behaviour"], None)
    assert not any(s.level >= 3 for s in loose.values()), loose
    harm = find_by_meaning(bank, _index(), ["mum is scared she is going to hurt the baby"], None)
    assert "parent_may_harm_child" in harm and not harm["parent_may_harm_child"].possible
    # a near paraphrase of an exemplar needs no anchor
    assert bank.settings.unanchored_threshold[4] > bank.settings.match_threshold[4]
    # only where a lower need already explains the sentence in so many words
    from bot.triage.engine import explained

    assert explained(bank, "mum is struggling with money", 3, None)
    assert explained(bank, "mum is struggling with the kids behaviour", 4, None)
    assert not explained(bank, "She says her uncle makes her keep secrets and gives her sweets", 4, None)
    lpd = bank.by_id["parent_learning_disability"]
    assert anchored(lpd, "mum has learning difficulties", bank.settings)
    assert not anchored(lpd, "mum is struggling with money", bank.settings)


class _Screening:
    def __init__(self, categories, matched, immediate=False):
        self.escalate, self.unsure, self.immediate_danger = True, False, immediate
        self.categories, self.matched = categories, matched
        self.by_meaning_only = all(m.startswith("close in meaning") for m in matched)


@pytest.mark.parametrize("text, matched, immediate, level4", [
    # the classifier alone, no harm word: a doubt (the level is not raised, the harm question comes first)
    ("We've been sofa surfing at my mum's since the landlord sold the house", ["close in meaning to neglect"], False, False),
    # a harm word, or the category's own cue, in the text: level 4
    ("We've been sofa surfing and the kids were left alone all night", ["close in meaning to neglect"], False, True),
    ("We've been sofa surfing and he hurt her", ["close in meaning to neglect"], False, True),
    # nothing else said explains the sentence: the classifier's reading stands (when unsure, the higher level)
    ("She says her uncle makes her keep secrets and gives her sweets for it.", ["close in meaning to neglect"], False, True),
    # the screen's own cue, or danger now: level 4 whatever the words
    ("We've been sofa surfing at my mum's since the landlord sold the house", ["no food or not fed"], False, True),
    ("We've been sofa surfing at my mum's since the landlord sold the house", ["close in meaning to neglect"], True, True),
])
def test_a_screen_escalation_by_its_classifier_alone_needs_a_harm_word(bank, monkeypatch, text, matched, immediate, level4):
    import bot.safeguarding
    from bot.triage.engine import screen_signals

    monkeypatch.setattr(bot.safeguarding, "screen", lambda t: _Screening(["neglect"], matched, immediate))
    signals = screen_signals([text], bank)
    assert [s.possible for s in signals] == [not level4]
    assert [s.id for s in signals] == (["safeguarding:neglect"] if level4 else ["safeguarding:unsure"])
    # without the bank (older callers) the screen's escalation is taken as it is
    assert [s.id for s in screen_signals([text])] == ["safeguarding:neglect"]
    result = assess(text)
    if not level4:
        assert result.shared_level < 4 and result.next_questions and result.next_questions[0]["id"] == "harm"
    else:
        assert result.shared_level == 4


def test_a_level3_need_by_meaning_must_name_its_cue_words(tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "triage"
    shutil.copytree(REPO / "knowledge" / "triage", folder)
    raw = yaml.safe_load((folder / "indicators.yml").read_text())
    lpd = next(i for i in raw["indicators"] if i["id"] == "parent_learning_disability")
    lpd.pop("cues")
    (folder / "indicators.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(TriageFileError, match="parent_learning_disability.*cues"):
        load_bank_from(folder)


# ------------------------------------------------------------------------------------------ knowledge files
def test_broken_bank_file_names_the_file_and_the_field(tmp_path):
    import shutil

    import yaml

    folder = tmp_path / "triage"
    shutil.copytree(REPO / "knowledge" / "triage", folder)
    raw = yaml.safe_load((folder / "questions.yml").read_text())
    raw["questions"][0]["options"][0].pop("means")
    (folder / "questions.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(TriageFileError) as err:
        load_bank_from(folder)
    assert "questions.yml" in str(err.value) and "means" in str(err.value)
    shutil.copy(REPO / "knowledge" / "triage" / "questions.yml", folder / "questions.yml")
    raw = yaml.safe_load((folder / "indicators.yml").read_text())
    raw["indicators"][0]["source"] = "999"
    (folder / "indicators.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(TriageFileError) as err:
        load_bank_from(folder)
    assert "indicators.yml" in str(err.value) and raw["indicators"][0]["id"] in str(err.value)
    shutil.copy(REPO / "knowledge" / "triage" / "indicators.yml", folder / "indicators.yml")
    raw = yaml.safe_load((folder / "questions.yml").read_text())
    raw["questions"][0]["id"] = "favourite_colour"  # an answer the triage would never read
    (folder / "questions.yml").write_text(yaml.safe_dump(raw))
    with pytest.raises(TriageFileError, match="favourite_colour"):
        load_bank_from(folder)


# ------------------------------------------------------------------------------------------ properties
_PROPS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = ("my", "son", "daughter", "school", "rent", "debt", "hit", "sad", "club", "not", "no", "never", "worried",
         "help", "bruise", "drugs", "missing", "baby", "the", "is", "and", "crying", "😀", "ça", "ß", "\u202e", "%",
         "\x00", "\n", "GL5", "999")


def _valid(result: Assessment, area_id: str | None) -> None:
    assert isinstance(result, Assessment)
    assert 1 <= result.shared_level <= 4 and 0.0 <= result.confidence <= 1.0
    if area_id:
        own = get_area(area_id).level(result.shared_level)
        assert (result.level, result.label) == (own.number, own.name)
    assert len(result.next_questions) <= 2
    assert all(r["domain"] in DOMAINS for r in result.reasons)
    json.dumps(result.to_dict())


@_PROPS
@given(
    text=st.one_of(
        st.text(max_size=300),
        st.lists(st.sampled_from(WORDS), max_size=40).map(" ".join),
        st.lists(st.text(max_size=60), max_size=4),
    ),
    area=st.sampled_from((None, *AREAS)),
)
def test_any_text_gives_a_valid_assessment(text, area):
    _valid(assess(text, area=area), area)


DEV_TEXTS = [json.loads(line)["text"] for line in (DATA / "triage_cases.jsonl").read_text().splitlines() if line.strip()]


@_PROPS
@given(
    base=st.one_of(st.sampled_from(DEV_TEXTS), st.text(max_size=120)),
    harm=st.sampled_from(HARM),
    where=st.sampled_from(("before", "after", "message")),
    area=st.sampled_from((None, *AREAS)),
)
def test_adding_a_safeguarding_sentence_never_lowers_the_level(base, harm, where, area):
    before = assess(base, area=area)
    text = {"before": f"{harm}\n{base}", "after": f"{base}\n{harm}", "message": [base, harm]}[where]
    after = assess(text, area=area)
    _valid(after, area)
    assert after.shared_level == 4 >= before.shared_level and not after.needs_more


# ------------------------------------------------------------------------------------------ the data sets
def _bench():
    spec = importlib.util.spec_from_file_location("bench_triage", REPO / "bench" / "triage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_development_set_has_the_promised_mix():
    bench = _bench()
    dev = bench.load(bench.DEV)
    assert len(dev) >= 160
    for level in (1, 2, 3, 4):
        assert sum(c["level"] == level for c in dev) >= 30, level
    assert {d for c in dev for d in c["domains"]} >= {"child_development", "parenting_capacity", "family_environment"}
    assert {c["voice"] for c in dev} >= {"parent", "young_person", "professional"}
    seen = {c["text"].lower() for c in dev}
    for unseen in (bench.load(bench.HOLDOUT), bench.load(bench.CHECK), bench.load(bench.CHECK2)):
        assert not {c["text"].lower() for c in unseen} & seen
        assert {c["level"] for c in unseen} == {1, 2, 3, 4}
        seen |= {c["text"].lower() for c in unseen}


def test_development_set_meets_the_targets():
    bench = _bench()
    result = bench.evaluate(bench.load(bench.DEV))
    assert result["exact"] >= 0.80
    assert result["within_one"] >= 0.97
    assert result["level4_recall"] >= 0.97
    assert result["level4_rated_1_or_2"] == 0


@pytest.mark.parametrize("name", ["HOLDOUT", "CHECK"])
def test_unseen_sets_never_rate_level_4_low(name):
    """The holdout and the independent check set are never tuned on: the safety floor is asserted here,
    with a floor on exact accuracy; the bench prints the full tables."""
    bench = _bench()
    result = bench.evaluate(bench.load(getattr(bench, name)))
    assert result["level4_rated_1_or_2"] == 0 and result["level4_recall"] >= 0.97
    assert result["exact"] >= 0.80 and result["within_one"] >= 0.95


def test_third_person_check_set_is_not_over_rated():
    """Check set 2 (professionals, partners, grandparents, young people about their parents; labelled before
    the triage ran on it): no level-4 case rated low, no level 1-2 case rated level 4."""
    bench = _bench()
    result = bench.evaluate(bench.load(bench.CHECK2))
    assert result["n"] >= 60
    assert result["level4_rated_1_or_2"] == 0 and result["level4_recall"] >= 0.97
    assert result["rated_4_from_1_or_2"] == 0
    assert result["exact"] >= 0.75 and result["within_one"] >= 0.95
