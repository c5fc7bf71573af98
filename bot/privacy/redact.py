"""Pattern-based redaction of personal details, run on every message before it is stored or sent on.

```python
from bot.privacy import redact, find_personal_details
redact("call me on 07700 900123, we're at GL5 2AB")   # -> "call me on [phone], we're at GL5 [postcode]"
```

What is replaced, each with a typed placeholder:

| kind | placeholder | e.g. |
|---|---|---|
| email address | ``[email]`` | jo.bloggs@example.org |
| NHS number (checksum valid, or after "NHS") | ``[NHS number]`` | 943 476 5919 |
| National Insurance number | ``[NI number]`` | QQ 12 34 56 C |
| UK phone number (0..., +44..., 0044...) | ``[phone]`` | 07700 900123, +44 (0)1452 426565 |
| full postcode (the outward code is kept) | ``GL5 [postcode]`` | GL5 2AB |
| date of birth (after "born", "DOB", "date of birth") | ``[date of birth]`` | DOB 03/04/2015 |
| any other full date (day, month and year) | ``[date]`` | 3rd April 2015 |

The outward code of a postcode is kept because it is what routes a person to their council, and it
covers thousands of households. Names are a later step (an entity model); this module is patterns only,
so it is fast, deterministic and never raises. ``redact`` is idempotent: placeholders contain no digits
and match no pattern.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

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

PLACEHOLDERS = {
    "email": "[email]",
    "nhs_number": "[NHS number]",
    "ni_number": "[NI number]",
    "phone": "[phone]",
    "postcode": "[postcode]",
    "date_of_birth": "[date of birth]",
    "date": "[date]",
}


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


def _candidates(text: str) -> list[Found]:
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
    return found


_PRIORITY = {kind: rank for rank, kind in enumerate(["email", "date_of_birth", "nhs_number", "ni_number", "date", "phone", "postcode"])}


def find_personal_details(text: str) -> list[Found]:
    """Every personal detail in ``text``, in order, never overlapping (the more specific kind wins)."""
    if not isinstance(text, str) or not text:
        return []
    chosen: list[Found] = []
    for item in sorted(_candidates(text), key=lambda f: (_PRIORITY[f.kind], f.start, -(f.end - f.start))):
        if all(item.end <= c.start or item.start >= c.end for c in chosen):
            chosen.append(item)
    return sorted(chosen, key=lambda f: f.start)


def redact(text: str) -> str:
    """``text`` with every personal detail replaced by its placeholder (see the module docstring)."""
    if not isinstance(text, str):
        raise TypeError("redact() takes a string")
    out: list[str] = []
    last = 0
    for item in find_personal_details(text):
        out.append(text[last:item.start])
        out.append(item.replacement)
        last = item.end
    out.append(text[last:])
    return "".join(out)


def contact_details(text: str) -> dict[str, list[str]]:
    """The phone numbers and email addresses a person gave, for the duty team (never stored in a turn)."""
    details: dict[str, list[str]] = {}
    for item in find_personal_details(text):
        if item.kind in ("phone", "email"):
            details.setdefault(item.kind, [])
            if item.text not in details[item.kind]:
                details[item.kind].append(item.text)
    return details
