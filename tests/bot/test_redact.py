"""Redaction: each kind of personal detail (patterns, and names through Presidio with the spaCy model), what
must survive (towns, ages, the words the screen and triage read), the development set's recall, the fallback
when the model cannot load, the data files' schemas, and properties on any text."""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import contact_details, find_personal_details, redact
from bot.privacy.redact import RedactionError, engine_status, load_engine, load_schools, load_words, nhs_checksum_ok

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module", autouse=True)
def engine_loaded():
    """The entity engine (Presidio over the spaCy model) is installed with the project and must load here."""
    assert load_engine(), engine_status()
    assert engine_status()["state"] == "loaded"


@pytest.mark.parametrize("text, expected", [
    ("call me on 07700 900123 after 6", "call me on [phone] after 6"),
    ("mob: 07700900123", "mob: [phone]"),
    ("ring +44 7700 900123", "ring [phone]"),
    ("ring +44 (0)1452 426565 please", "ring [phone] please"),
    ("landline 0114 496 0999.", "landline [phone]."),
    ("my number is 0044 7700 900 123", "my number is [phone]"),
    ("email jo.bloggs+kids@example.co.uk now", "email [email] now"),
    ("JO@EXAMPLE.ORG", "[email]"),
    ("we're at GL5 2AB", "we're at GL5 [postcode]"),
    ("postcode gl52ab", "postcode GL5 [postcode]"),
    ("SW1A 1AA is the palace", "SW1A [postcode] is the palace"),
    ("dn15 7bh", "DN15 [postcode]"),
    ("NHS number 943 476 5919", "NHS number [NHS number]"),
    ("his nhs no is 9434765919", "his nhs no is [NHS number]"),
    ("NI: AB 12 34 56 C", "NI: [NI number]"),
    ("ni number ab123456c", "ni number [NI number]"),
    ("DOB 03/04/2015", "DOB [date of birth]"),
    ("she was born on 3rd April 2015", "she was born on [date of birth]"),
    ("date of birth: 12.3.15", "date of birth: [date of birth]"),
    ("born June 5, 2016 in Stroud", "born [date of birth] in Stroud"),
    ("it happened on 12/03/2024", "it happened on [date]"),
    ("the 5th of May 2021 was bad", "the [date] was bad"),
])
def test_each_kind_is_replaced_with_its_placeholder(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "she is 2 and he is 15",
    "call 999 now",
    "Childline is 0800 1111",
    "we live in DN15",
    "GL5 is our postcode district",
    "year 10, set 3, 9 out of 10",
    "it's been 3 weeks since March 2024",
    "about 1234 people",
    "room 12/3",
])
def test_what_is_not_personal_stays(text):
    assert redact(text) == text


def test_a_ten_digit_number_is_an_nhs_number_only_when_it_checks_or_is_named():
    assert nhs_checksum_ok("9434765919")
    assert not nhs_checksum_ok("9434765918")
    assert redact("ref 9434765918") == "ref 9434765918"
    assert redact("ref 9434765919") == "ref [NHS number]"
    assert redact("NHS 9434765918") == "NHS [NHS number]"


def test_several_details_in_one_message():
    text = "I'm Jo, 07700 900123 or jo@example.org, at BA1 1AA, his DOB is 01/02/2019"
    assert redact(text) == "I'm [name], [phone] or [email], at BA1 [postcode], his DOB is [date of birth]"
    kinds = [f.kind for f in find_personal_details(text)]
    assert kinds == ["person", "phone", "email", "postcode", "date_of_birth"]


@pytest.mark.parametrize("text, expected", [
    ("my son Jake is 7", "my son [name] is 7"),
    ("my daughter Rose has been self harming", "my daughter [name] has been self harming"),
    ("my partner Mark shouts at the kids", "my partner [name] shouts at the kids"),
    ("my son bill has ADHD", "my son [name] has ADHD"),
    ("my bf josh wants me to send pics", "my bf [name] wants me to send pics"),
    ("hi im ava im 13", "hi im [name] im 13"),
    ("my name is Sarah Thompson and I live in Stroud", "my name is [name] and I live in Stroud"),
    ("a girl called Chantelle bullies me", "a girl called [name] bullies me"),
    ("his teacher Mrs Collins rang", "his teacher Mrs [name] rang"),
    ("ok so my teacher Mr Davies said", "ok so my teacher Mr [name] said"),
    ("Karen here, my boys are 8 and 11", "[name] here, my boys are 8 and 11"),
    ("mum to Harvey (9) and Poppy (3)", "mum to [name] (9) and [name] (3)"),
    ("my 4 year old Alfie isn't talking", "my 4 year old [name] isn't talking"),
])
def test_names_are_replaced_as_families_give_them(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text, expected", [
    ("we live at 14 Acacia Avenue, Keynsham BS31 1AB", "we live at [address], Keynsham BS31 [postcode]"),
    ("address is flat 3, 22 Church Street, Gloucester", "address is [address], Gloucester"),
    ("12 kings rd high wycombe", "[address] high wycombe"),
    ("my son goes to Archway School", "my son goes to [school]"),
    ("she's at St Mary's and the teachers are worried", "she's at [school] and the teachers are worried"),
    ("im at beechen cliff and everyone hates me", "im at [school] and everyone hates me"),
    ("he started at Oakfield Primary School", "he started at [school]"),
])
def test_street_addresses_and_schools_are_replaced(text, expected):
    assert redact(text) == expected


@pytest.mark.parametrize("text", [
    "my 4 year old won't sleep",
    "we live in Chalfont St Peter, my son is 12",
    "we're in Peasedown St John, any toddler groups?",
    "is there a food bank in Scunthorpe?",
    "any parenting courses in Bath or Keynsham",
    "my rose bush keeps me calm",
    "will someone help me please",
    "the gas bill is 300 and I can't pay",
    "I mark his homework every night",
    "my son is in year 10 and got 3 detentions",
    "I called Childline on 0800 1111",
    "we get Universal Credit and can't afford nappies",
    "my son has an EHCP and goes to a special school",
    "is there a baby group in Midsomer Norton",
    "he is 5 and walked 3 miles up the hill",
    "my uncle touches me and says it's a secret",
    "my daughter cuts herself",
    "my dad smacks me",
    "we met on Stroud high street",
    "I miss Mum so much",
    "my partner controls the money",
])
def test_towns_ages_and_ordinary_words_stay(text):
    assert redact(text) == text


def _bench():
    spec = importlib.util.spec_from_file_location("bench_redaction", ROOT / "bench" / "redaction.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_development_set_recall_is_at_least_095_and_nothing_triage_reads_is_lost():
    bench = _bench()
    cases = bench.load_cases()
    assert len(cases) >= 150 and sum(c["split"] == "dev" for c in cases) >= 150
    result = bench.score(cases, find_personal_details, with_screen=False)
    assert result["recall"] >= 0.95, result["misses"]
    assert result["precision"] >= 0.9, result["false_positives"]
    assert result["lost_keep"] == []
    for kind in ("person", "phone", "email", "address", "postcode", "date_of_birth", "nhs_number", "ni_number", "school"):
        ok, total = result["per_kind"][kind]
        assert total and ok / total >= 0.9, (kind, ok, total)


def test_the_scoring_counts_what_is_missed():
    """The measure can fail: a finder that finds nothing scores 0, one that leaves the inward code scores 0."""
    bench = _bench()
    case = {"id": 1, "text": "my son Jake, GL5 2AB", "personal": [{"kind": "person", "text": "Jake"},
                                                                   {"kind": "postcode", "text": "GL5 2AB"}], "keep": ["son"]}
    assert bench.score([case], lambda text: [], with_screen=False)["recall"] == 0
    from bot.privacy.redact import Found
    outward_only = [Found("postcode", 13, 16, "GL5", "[postcode]")]
    assert bench.score([case], lambda text: outward_only, with_screen=False)["recall"] == 0
    assert bench.score([case], find_personal_details, with_screen=False)["recall"] == 1


def test_the_redacted_text_keeps_the_safeguarding_cue_bank_hits():
    from bot.safeguarding.cues import default_bank
    from bot.safeguarding.detector import _screen

    for text in ["my stepdad Craig hits me n says dont tell", "uncle Pete touches me when mum is at work",
                 "my ex Wayne has a knife and says he will kill me, I'm at 12 Hill Street Stroud",
                 "i want to kill myself, im Jade", "my mums boyfriend Carl hurts my little brother",
                 "Scott punched me in front of the kids again, we're at BA2 3QD",
                 "my son Ben has taken loads of pills, we're at 6 Brook Lane, Cheltenham"]:
        before, after = _screen(text, default_bank())[0], _screen(redact(text), default_bank())[0]
        assert before.escalate and after.escalate, text
        assert set(before.categories) <= set(after.categories) and before.immediate_danger == after.immediate_danger


def test_without_the_model_patterns_still_redact_and_the_status_says_so(tmp_path):
    """A broken or missing model is logged and redaction carries on with patterns (a separate process)."""
    code = (
        "import logging, json; logging.basicConfig(level=logging.INFO)\n"
        "from bot.privacy.redact import redact, load_engine, engine_status\n"
        "print(load_engine()); print(json.dumps(engine_status()))\n"
        "print(redact('my son Jake, 07700 900123, GL5 2AB, 12 Elm Road, at Marling School'))\n"
    )
    env = {**os.environ, "EARLYHELP_REDACTION_MODEL": "no_such_spacy_model_package"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "False" and '"state": "failed"' in lines[1]
    assert lines[2] == "my son [name], [phone], GL5 [postcode], [address], at [school]"
    assert "could not load" in out.stderr and "Jake" not in out.stderr


def test_the_data_files_are_checked(tmp_path):
    assert "son" in load_words().relation_words and "stroud" not in load_words().not_names
    assert "Marling School" in load_schools().areas["gloucestershire"].schools
    (tmp_path / "schools.yml").write_text("version: 1\nlast_reviewed: x\nsource: test\nareas:\n  atlantis:\n    schools: [A School]\n")
    with pytest.raises(RedactionError, match="unknown area"):
        load_schools(tmp_path)
    (tmp_path / "schools.yml").write_text("version: 1\nlast_reviewed: x\nsource: test\nareas:\n  gloucestershire:\n"
                                          "    schools: [Marling School, marling school]\n")
    with pytest.raises(RedactionError, match="twice"):
        load_schools(tmp_path)
    (tmp_path / "redaction.yml").write_text("version: 1\nlast_reviewed: x\nsource: test\nrelation_words: [Son]\nnot_names: [x]\n")
    with pytest.raises(RedactionError, match="lower-case"):
        load_words(tmp_path)
    with pytest.raises(RedactionError, match="missing"):
        load_words(tmp_path / "nowhere")


def test_contact_details_are_the_phones_and_emails_given():
    assert contact_details("text 07700 900123 or mail a@b.org, not GL5 2AB") == {
        "phone": ["07700 900123"], "email": ["a@b.org"]}
    assert contact_details("nothing here") == {}


def test_non_strings_are_refused_and_empty_is_fine():
    assert redact("") == ""
    with pytest.raises(TypeError):
        redact(None)  # type: ignore[arg-type]


PLACEHOLDER = re.compile(r"\[(phone|email|postcode|NHS number|NI number|date of birth|date)\]")


@settings(max_examples=120, deadline=None)
@given(st.text(max_size=300))
def test_any_text_redacts_without_error_and_idempotently(text):
    once = redact(text)
    assert redact(once) == once


NAMES = ["Jake", "jake", "Rose", "Kayleigh-Ann", "Mohammed", "siobhan", "Kacper", "Freddie", "Precious"]


@settings(max_examples=60, deadline=None)
@given(st.sampled_from(["my son", "my daughter", "my bf", "his dad", "my sister", "a girl called", "my name is"]),
       st.sampled_from(NAMES), st.sampled_from(["", " is 9", " hits me", ", 07700 900123", " lives in Stroud"]))
def test_a_name_after_a_relation_word_never_survives(relation, name, tail):
    out = redact(f"{relation} {name}{tail}")
    assert name not in out and "[name]" in out
    assert "Stroud" in out or "Stroud" not in tail


@settings(max_examples=150, deadline=None)
@given(
    st.lists(st.sampled_from(["hello", "my", "son", "is", "07700 900123", "x@y.com", "GL5 2AB", "DOB 1/2/2013",
                              "NHS 943 476 5919", "QQ 12 34 56 A", "Stroud", "5", ",", "."]), max_size=12),
)
def test_no_detail_survives_in_any_arrangement(words):
    out = redact(" ".join(words))
    for secret in ("07700", "x@y.com", "2AB", "1/2/2013", "943 476", "12 34 56"):
        assert secret not in out


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd", "Lu", "Ll", "Lt", "Lm", "Lo")), max_size=200))
def test_text_without_digits_letters_or_at_signs_is_unchanged(text):
    if "@" not in text:
        assert redact(text) == text


@pytest.mark.parametrize("text", ["my stepdad is hitting my sister right now", "my mum today said no",
                                  "my dad later shouted", "my brother tonight ran off"])
def test_when_words_after_a_family_word_are_not_names(text):
    # "right now" was once redacted as "[name] now": the duty team's excerpt lost the urgency
    assert redact(text) == text
