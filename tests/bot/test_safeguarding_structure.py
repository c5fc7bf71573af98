"""Safeguarding screen, helper 33's round: structural fixes, pinned in wording that is in no data set (a test
checks it), so they check the situation and not a sentence.

- An idiom is not read by meaning either: the classifier reads the message with each idiom blanked
  together with the rest of its clause, so the words around a joke ("... according to my 12 year old")
  cannot be read as what the joke was about; a real disclosure beside an idiom is still read.
- A threat from others (that lot, the older ones, a dealer, someone owed) over money, debt, drugs or a run
  is criminal exploitation, not the "will kill me if ..." idiom; the family conditional stays an idiom.
- Fewer messages flagged as immediate danger when they are not: routine medicine, a habit told, a parent's
  threat to self-harm used to control, and a cue the model only half leans towards "now" on.
- ``Screener(weights=...)``: the screen with other classifier weights, without changing the module.

Real cue bank and real embedding model throughout.
"""
from __future__ import annotations

import dataclasses

import pytest

from bot.safeguarding import Screener, classifier, screen
from tests.bot.conftest import safeguarding_wording_seen


IDIOM_WITH_CONTEXT = [
    "putting the shopping away every evening is child slavery apparently, says my 12 year old",
    "my 9 year old says tidying his bedroom every night is basically slave labour",
    "sorting the recycling each weekend counts as child labour according to my 8 yr old",
    "the school run every single morning is killing me with three kids under 7",
    "my 10 yo twins will murder me if i dont get them the money for the swimming trip on friday",
]
IDIOM_BESIDE_A_DISCLOSURE = [
    ("this coursework is killing me, also my stepmum slaps me when dad's at work", "slaps me", "physical_abuse"),
    ("revision is literally killing me and my uncle keeps coming in my room at night touching me",
     "touching me", "sexual_abuse"),
    ("my feet are killing me from my shift. my partner strangled me on saturday", "strangled me", "domestic_abuse"),
]
THREAT_OVER_DEBT = [
    "them lot from the estate will kill me if i dont get them the cash by monday",
    "the older ones r going to batter me if i dont do another run for them",
    "the people my son owes are going to come for him if he doesnt find the 400",
    "i dropped the parcel they gave me and now the olders say theyll stab my brother",
]
FAMILY_CONDITIONAL = [
    "my kids will murder me if I don't get them the money for the bowling",
    "my mum will kill me if i dont pay her back the fiver by tomorrow",
    "my grandkids will kill me if i forget to bring the pocket money on sunday",
]
NOT_IMMEDIATE = [
    # routine medicine: not an overdose
    "he took his asthma pump and his allergy tablets at breakfast like the chemist said",
    "my 14 year old took her tablets for her period pain and went for a lie down",
    # a habit told: neglect, not danger this minute
    "my mum passes out on the sofa most nights after her wine and I get my brothers to bed",
    # a parent's threat to self-harm used to control a child
    "my dad says he'll kill himself if i go and live with mum and it will be my fault",
]


def test_none_of_this_wording_is_in_any_data_set():
    everything = [*IDIOM_WITH_CONTEXT, *(t for t, _, _ in IDIOM_BESIDE_A_DISCLOSURE), *THREAT_OVER_DEBT,
                  *FAMILY_CONDITIONAL, *NOT_IMMEDIATE, TOOK_SOMEONE_ELSES, DEBT_TONIGHT,
                  "emptying the dishwasher every night is pure child slavery according to my 12 year old",
                  "this homework is killing me, also my step dad hits me",
                  "that lot will murder me if I don't get them the money by friday",
                  "my kids will kill me if I don't get them the money for the school trip"]
    assert not {t.lower() for t in everything} & safeguarding_wording_seen()


# ------------------------------------------------------------------------------------------ the brief's examples
def test_the_examples_this_round_was_asked_to_fix():
    # an idiom's clause is not read by meaning: nothing raised
    s = screen("emptying the dishwasher every night is pure child slavery according to my 12 year old")
    assert not s.escalate and not s.unsure, s
    # a real cue beside an idiom still escalates
    s = screen("this homework is killing me, also my step dad hits me")
    assert s.escalate and "physical_abuse" in s.categories, s
    # a threat from others over money is criminal exploitation, not an idiom
    s = screen("that lot will murder me if I don't get them the money by friday")
    assert s.escalate and "child_criminal_exploitation" in s.categories, s
    # the family conditional stays an idiom
    s = screen("my kids will kill me if I don't get them the money for the school trip")
    assert not s.escalate and not s.unsure, s


# ------------------------------------------------------------------------------------------ idioms by meaning
@pytest.mark.parametrize("text", IDIOM_WITH_CONTEXT)
def test_an_idiom_and_its_clause_are_not_read_by_meaning(text):
    s = screen(text)
    assert not s.escalate and not s.unsure, s
    # what the classifier reads holds nothing of the idiom's clause ("every night", "each weekend" ...)
    prepared = classifier.prepared(text)
    assert not {"every", "each", "bedroom", "recycling", "swimming"} & set(prepared.split()), prepared


@pytest.mark.parametrize("text, words, category", IDIOM_BESIDE_A_DISCLOSURE)
def test_a_disclosure_beside_an_idiom_is_still_read_by_both(text, words, category):
    # the classifier still reads the disclosure (only the idiom's own clause is blanked) ...
    assert words in classifier.prepared(text)
    # ... and the message escalates in the right category
    s = screen(text)
    assert s.escalate and category in s.categories, s


def test_without_an_idiom_nothing_is_blanked():
    text = "my 12 year old has to put all the shopping away and cook every evening because mum is never home"
    assert classifier.prepared(text) == text


# ------------------------------------------------------------------------------------------ threats over debt
@pytest.mark.parametrize("text", THREAT_OVER_DEBT)
def test_a_threat_from_others_over_money_or_a_run_is_criminal_exploitation(text):
    s = screen(text)
    assert s.escalate and "child_criminal_exploitation" in s.categories, s


DEBT_TONIGHT = "the guy i owe said hell stab me if i dont pay him back by tonight"


def test_a_threat_over_debt_due_tonight_is_immediate():
    s = screen(DEBT_TONIGHT)
    assert s.escalate and s.immediate_danger and "child_criminal_exploitation" in s.categories, s


@pytest.mark.parametrize("text", FAMILY_CONDITIONAL)
def test_the_family_conditional_about_money_stays_an_idiom(text):
    s = screen(text)
    assert not s.escalate and not s.unsure, s


# ------------------------------------------------------------------------------------------ immediate when not
@pytest.mark.parametrize("text", NOT_IMMEDIATE)
def test_these_are_not_immediate_danger(text):
    assert not screen(text).immediate_danger


def test_a_parents_threat_to_self_harm_to_control_a_child_is_emotional_abuse():
    s = screen(NOT_IMMEDIATE[-1])
    assert s.escalate and "emotional_abuse" in s.categories, s


TOOK_SOMEONE_ELSES = "my 13 year old has taken all of her grans heart tablets and shes really drowsy"


def test_someone_elses_tablets_taken_are_still_immediate():
    s = screen(TOOK_SOMEONE_ELSES)
    assert s.escalate and s.immediate_danger and "self_harm" in s.categories, s


def test_a_cue_needs_the_model_clearly_leaning_to_now_before_999_comes_first():
    w = classifier.default_weights()
    # helper 33 raised the bar for a cue plus the model's "now" (it flagged ~30 dev messages wrongly at 0.5)
    assert 0.5 < w.t_immediate_after_cue < w.t_immediate


# ------------------------------------------------------------------------------------------ Screener
def test_screener_with_the_shipped_weights_is_the_screen():
    shipped = Screener()
    for text in (*IDIOM_BESIDE_A_DISCLOSURE[0][:1], THREAT_OVER_DEBT[0], FAMILY_CONDITIONAL[0],
                 "my nan forgets to feed us and the house is freezing"):
        assert shipped(text) == screen(text)


def test_screener_scores_with_the_weights_it_is_given_and_leaves_the_module_alone():
    text = "my nan forgets to feed us and the house is freezing"  # no cue: found by meaning
    shipped = classifier.default_weights()
    assert screen(text).escalate and screen(text).matched[0].startswith("close in meaning")
    strict = dataclasses.replace(shipped, t_escalate=1.0, t_unsure=1.0)
    calls = []

    def embed(pieces):
        calls.append(list(pieces))
        return classifier._embed(pieces)

    s = Screener(weights=strict, embed=embed)(text)
    assert not s.escalate and not s.unsure, s
    assert calls, "the embedding function given was not used"
    # the module's screen and weights are unchanged
    assert classifier.default_weights() is shipped
    assert screen(text).escalate


def test_screener_never_raises():
    broken = dataclasses.replace(classifier.default_weights(), categories={})
    s = Screener(weights=broken)("my nan forgets to feed us and the house is freezing")
    assert s.unsure and not s.escalate


# ------------------------------------------------------------------------------------------ situations
# What the leave-one-holdout-out run of this round missed, pinned in other words.
SITUATIONS = [
    ("there's a little boy banging on the window of a parked car at the station, nobody's come back to it",
     "neglect", True),
    ("mum goes out with her mates every friday and leaves us on our own till late. I'm 7 and my brother is 5",
     "neglect", False),
    ("our 15 year old foster daughter keeps sleeping round at a 27 year old man's house", "child_sexual_exploitation",
     False),
    ("when i get angry at myself i bang my head on the door until it bruises", "self_harm", False),
    ("the 6 week old has a bruise on her ear and her mum says the older child dropped a toy on her", "physical_abuse",
     False),
    ("grandad's had most of a bottle of whisky and just drove off with my two little ones in the back", "neglect", True),
    ("our 14 year old has been missing since sunday and we've just found out he owes a gang money",
     "child_criminal_exploitation", True),
]
SITUATION_LOOK_ALIKES = [
    "can I leave my 11 year old on her own for ten minutes while I pop next door?",
    "my 9 year old banged his head on the door frame running in from the garden",
    "my daughter is 14 and staying with her nan for the weekend",
]


@pytest.mark.parametrize("text, category, immediate", SITUATIONS)
def test_the_situations_this_round_found_escalate(text, category, immediate):
    s = screen(text)
    assert s.escalate and category in s.categories, s
    if immediate:
        assert s.immediate_danger, s


@pytest.mark.parametrize("text", SITUATION_LOOK_ALIKES)
def test_their_look_alikes_do_not_escalate(text):
    assert not screen(text).escalate


def test_none_of_the_situations_wording_is_in_any_data_set():
    assert not ({t.lower() for t, _, _ in SITUATIONS} | {t.lower() for t in SITUATION_LOOK_ALIKES}) & safeguarding_wording_seen()


# A young child hitting out in a tantrum is not abuse (found probing the conversation: "she has tantrums all the
# time and hits me", from the parent of a 3-year-old, was escalated as physical abuse); an adult hitting the
# child during a tantrum still is, and so is a parent of the young person writing.
@pytest.mark.parametrize("text, escalates", [
    ("honestly she throws tantrums most evenings and hits me when bedtime comes", False),
    ("my two year old gets meltdowns at the shops and kicks me", False),
    ("he gets tantrums and his stepdad whacks him to shut him up", True),
    ("my mam has tantrums when she's been drinking and hits me", True),
])
def test_a_young_childs_tantrum_is_not_a_cue_but_an_adult_hitting_is(text, escalates):
    assert screen(text).escalate is escalates
