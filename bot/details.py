"""Read the details the assistant asks for (who is speaking, the child's age) from free text.

Buttons send tidy values, but people type "im his nan", "shes 3", "six months" or "year 9"; these
readers turn that into a value or ``None`` so the conversation can ask again in other words.
"""
from __future__ import annotations

import re

SPEAKERS = ("parent", "young_person", "professional")

_NUMBER_WORDS = {
    w: i
    for i, w in enumerate(
        "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
        "sixteen seventeen eighteen nineteen".split()
    )
}
# "twenty", "thirty-two": read so that an adult's age is answered as out of range, not as not understood
_TENS = {w: 10 * i for i, w in enumerate("twenty thirty forty fifty sixty seventy eighty ninety".split(), start=2)}
for _tens, _value in _TENS.items():
    _NUMBER_WORDS[_tens] = _value
    for _unit in range(1, 10):
        _NUMBER_WORDS[f"{_tens}-{list(_NUMBER_WORDS)[_unit]}"] = _value + _unit
_PROFESSIONAL = re.compile(
    r"\b(teacher|teach|school nurse|nurse|health visitor|gp|doctor|social worker|youth worker|senco|dsl|"
    r"safeguarding lead|practitioner|professional|head ?teacher|family support worker|midwife|police|"
    r"nursery (manager|worker)|childminder|keyworker|key worker|i work (in|at|for|with)|colleague|pupil|"
    r"my client|case ?worker|school staff|staff member|counsell?or|therapist)\b"
)
_PARENT = re.compile(
    r"\b(parent|mum|mom|mummy|mother|dad|daddy|father|carer|guardian|grandparent|grandma|grandmother|"
    r"grandad|granddad|grandfather|nan|nana|gran|foster|step ?(mum|dad|parent)|auntie|aunt|uncle|"
    r"kinship|my (son|daughter|child|kid|kids|children|baby|boy|girl|toddler|teen|teenager))\b"
)
_YOUNG = re.compile(
    r"\b(young person|teen|teenager|student|myself|for me|about me|i'?m (1[0-9]|2[0-5])|im (1[0-9]|2[0-5])|"
    r"i am (1[0-9]|2[0-5])|me)\b"
)
_INTENT_SPEAKER = {
    "identify_parent": "parent",
    "identify_young_person": "young_person",
    "identify_professional": "professional",
    "ask_where_to_refer": "professional",
}


def read_speaker(text: str, intent: str | None = None) -> str | None:
    """``parent``, ``young_person`` or ``professional`` from a button value, an intent or free text."""
    if intent in _INTENT_SPEAKER:
        return _INTENT_SPEAKER[intent]
    if not isinstance(text, str):
        return None
    low = text.lower().strip().lstrip("/")
    for value in SPEAKERS:
        if low in (value, value.replace("_", " ")):
            return value
    for pattern, value in ((_PROFESSIONAL, "professional"), (_PARENT, "parent"), (_YOUNG, "young_person")):
        if pattern.search(low):
            return value
    return None


AGE_UNKNOWN = -2  # the person would rather not say, or does not know
UNBORN = -1  # pre-birth: early help starts before a baby is born
MAX_AGE = 25  # early help and SEND support can run to 25


def read_age(text: str) -> int | None:
    """Age in whole years (``UNBORN``, ``AGE_UNKNOWN`` for the two special answers), or ``None``."""
    if not isinstance(text, str):
        return None
    low = text.lower().replace("-", " ").strip()
    if re.search(r"\b(pregnant|expecting|unborn|due in|not born|bump)\b", low):
        return UNBORN
    if re.search(r"\b(don'?t know|dont know|not sure|rather not|prefer not|skip|unknown)\b", low):
        return AGE_UNKNOWN
    months = re.search(r"\b(\d{1,2}|[a-z]+) ?(months?|mths?|mo)\b", low)
    if months:
        count = _to_int(months.group(1))
        if count is not None and count < 36:
            return count // 12
    if re.search(r"\b(weeks? old|newborn|new born|baby)\b", low):
        return 0
    if re.search(r"\btoddler\b", low):
        return 2
    school_year = re.search(r"\b(year|yr|y) ?(\d{1,2})\b", low)
    if school_year and 1 <= int(school_year.group(2)) <= 13 and "old" not in low:
        return int(school_year.group(2)) + 5  # Year 1 children are 5 turning 6
    if re.search(r"\breception\b", low):
        return 4
    numbers = [_to_int(tok) for tok in re.findall(r"[a-z]+(?:-[a-z]+)?|\d+", _TENS_SPACE.sub(r"\1-", low))]
    numbers = [n for n in numbers if n is not None]
    if len(set(numbers)) == 1 and 0 <= numbers[0] <= 120:
        return numbers[0]
    return None


_TENS_SPACE = re.compile(r"\b(" + "|".join(_TENS) + r") (?=(one|two|three|four|five|six|seven|eight|nine)\b)")


def _to_int(token: str) -> int | None:
    token = token.strip()
    if token.isdigit():
        return int(token)
    return _NUMBER_WORDS.get(token.replace(" ", "-"))


def describe_age(age: int) -> str:
    if age == UNBORN:
        return "not born yet"
    if age == AGE_UNKNOWN:
        return "age not given"
    return f"{age} year{'s' if age != 1 else ''} old"
