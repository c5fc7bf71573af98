"""Pattern-based redaction: each kind of personal detail, what must survive, and properties on any text."""
from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.privacy import contact_details, find_personal_details, redact
from bot.privacy.redact import nhs_checksum_ok


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
    assert redact(text) == "I'm Jo, [phone] or [email], at BA1 [postcode], his DOB is [date of birth]"
    kinds = [f.kind for f in find_personal_details(text)]
    assert kinds == ["phone", "email", "postcode", "date_of_birth"]


def test_contact_details_are_the_phones_and_emails_given():
    assert contact_details("text 07700 900123 or mail a@b.org, not GL5 2AB") == {
        "phone": ["07700 900123"], "email": ["a@b.org"]}
    assert contact_details("nothing here") == {}


def test_non_strings_are_refused_and_empty_is_fine():
    assert redact("") == ""
    with pytest.raises(TypeError):
        redact(None)  # type: ignore[arg-type]


PLACEHOLDER = re.compile(r"\[(phone|email|postcode|NHS number|NI number|date of birth|date)\]")


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=300))
def test_any_text_redacts_without_error_and_idempotently(text):
    once = redact(text)
    assert redact(once) == once


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
@given(st.text(alphabet=st.characters(blacklist_categories=("Nd",)), max_size=200))
def test_text_without_digits_or_at_signs_is_unchanged(text):
    if "@" not in text:
        assert redact(text) == text
