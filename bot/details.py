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
    if age == 0:
        return "under 1 year old"
    return f"{age} year{'s' if age != 1 else ''} old"


# --- Details stated inside a longer message ------------------------------------------------------------------
# People often open with everything at once: "Hi, my son is 14 and we live in Scunthorpe. He's stopped going
# to school...". The readers below take a detail from such a sentence only when it is said plainly, so the
# conversation does not ask again for what it was just told; anything unclear is left for the question (and
# every detail is shown back to the person to check before an answer is given).

_NUM = r"(\d{1,2}|" + "|".join(sorted((w for w in _NUMBER_WORDS if "-" not in w), key=len, reverse=True)) + r")"
_CHILD_WORD = (r"(?:son|daughter|child|kid|boy|girl|baby|toddler|little one|teen|teenager|step ?son|step ?daughter|"
               r"grand ?son|grand ?daughter|nephew|niece|pupil|student|foster (?:son|daughter|child)|lad|lass|"
               r"young person|young man|young woman|eldest|youngest|oldest)")
_NOT_AN_AGE = (r"(?!\s*(?:of\b|months?|mths?|weeks?|wks?|days?|hours?|hrs?|minutes?|mins?|times?|o'?clock|am\b|pm\b|"
               r"%|:|\.\d|st\b|nd\b|rd\b|th\b|foot|feet|ft\b|stone|kg|pounds?|quid|miles?|metres?|cm\b|inches|"
               r"children|kids|sons|daughters|brothers|sisters|times))")
_AGE_PATTERNS = (
    re.compile(rf"\b{_NUM} ?(?:years?|yrs?|yr) ?old\b"),
    re.compile(rf"\b{_NUM} ?(?:y/o|yo)\b"),
    re.compile(rf"\b{_CHILD_WORD}(?:,| is| who is| who's|'s| aged?| of)? {_NUM}\b{_NOT_AN_AGE}"),
    re.compile(rf"\b(?:he|she|they)(?:'s| is| are) {_NUM}\b{_NOT_AN_AGE}"),
    re.compile(rf"\baged? {_NUM}\b{_NOT_AN_AGE}"),
)
_MONTH_PATTERNS = (
    re.compile(rf"\b(?:{_CHILD_WORD}|is|aged?|'s)(?:,)? {_NUM} ?(?:months?|mths?)\b"),
    re.compile(rf"\b{_NUM} ?(?:months?|mths?) old\b"),
)
_OWN_AGE = re.compile(rf"\b(?:i'?m|im|i am|i'm only|im only) {_NUM}\b{_NOT_AN_AGE}")
_SCHOOL_YEAR = re.compile(r"\bin (?:year|yr|y) ?(\d{1,2})\b|\b(?:year|yr|y) ?(\d{1,2}) (?:pupil|child|student|boy|girl|class)")


def read_stated_age(text: str) -> int | None:
    """The child's age said inside a sentence ("my son is 14", "baby 8 months", "i'm 15"), or ``None`` when
    no age is said plainly or two different ages are (the question then asks which child)."""
    if not isinstance(text, str):
        return None
    low = re.sub(r"\s+", " ", text[:2000].lower().replace("’", "'").replace("-", " "))
    ages: set[int] = set()
    for pattern in _AGE_PATTERNS:
        ages.update(n for n in (_to_int(m.group(1)) for m in pattern.finditer(low)) if n is not None and n <= MAX_AGE)
    for pattern in _MONTH_PATTERNS:
        ages.update(n // 12 for n in (_to_int(m.group(1)) for m in pattern.finditer(low)) if n is not None and n < 36)
    if re.search(r"\b\d{1,2} ?(?:weeks?|wks?) old\b|\bnew ?born\b", low):
        ages.add(0)
    for match in _OWN_AGE.finditer(low):
        own = _to_int(match.group(1))
        if own is not None and 8 <= own <= 19:  # a young person's own age; an adult's is not the child's
            ages.add(own)
    for match in _SCHOOL_YEAR.finditer(low):
        year = int(match.group(1) or match.group(2))
        if 1 <= year <= 13:
            ages.add(year + 5)
    if not ages and re.search(r"\b(pregnant|expecting a baby|unborn|not born yet|due in)\b", low):
        return UNBORN
    return ages.pop() if len(ages) == 1 else None


_ROLE = (r"(?:teacher|head ?teacher|deputy head|teaching assistant|senco|dsl|designated safeguarding lead|"
         r"safeguarding lead|school nurse|nurse|health visitor|midwife|gp|doctor|paediatrician|social worker|"
         r"youth worker|family support worker|support worker|police officer|pcso|practitioner|professional|"
         r"childminder|nursery (?:manager|worker|nurse|practitioner)|key ?worker|counsell?or|therapist|"
         r"housing officer|learning mentor|pastoral (?:lead|manager|worker)|attendance officer|school staff)")
_STATED_PROFESSIONAL = (
    re.compile(rf"\b(?:i'?m|im|i am|am|as|i work as) (?:a|an|the) (?:[a-z]+ )?{_ROLE}\b"),
    re.compile(rf"^(?:hi|hello|hiya|good (?:morning|afternoon))?[ ,.!-]*(?:i'?m |im |i am )?(?:a |an )?(?:[a-z]+ )?{_ROLE}\b"),
    re.compile(rf"\b{_ROLE} here\b"),
    re.compile(r"\bi work (?:at|in|for|with) (?:a |an |the )?(?:[a-z]+ )?(?:school|nursery|surgery|practice|hospital|"
               r"police|council|charity|children'?s cent(?:re|er)|youth)"),
    re.compile(r"\b(?:my|our) (?:pupils?|patients?|clients?|caseload|class)\b"),
    re.compile(r"\bone of (?:my|our) (?:pupils|patients|clients|families|students)\b"),
)
_STATED_PARENT = (
    re.compile(rf"\b(?:my|our) (?:[a-z]+ )?(?:son|daughter|child|children|kids?|baby|toddler|little one|boy|girl|"
               r"step ?son|step ?daughter|grand ?son|grand ?daughter|grand ?child(?:ren)?|twins|eldest|youngest|"
               r"foster (?:son|daughter|child|children))\b(?! (?:brother|sister|cousin))"),
    re.compile(rf"\bmy {_NUM} ?(?:years?|yrs?|yr|y/o|yo)? ?old\b"),
    re.compile(r"\b(?:i'?m|im|i am|as) (?:a|his|her|their|the) (?:[a-z]+ )?(?:mum|mom|dad|mother|father|parent|carer|"
               r"foster carer|nan|grandma|grandad|grandparent|step ?(?:mum|dad)|auntie|aunt|uncle|guardian)\b"),
)
_STATED_YOUNG = re.compile(r"\b(?:my (?:mum|mom|mam|dad|parents|step ?dad|step ?mum|mum's boyfriend|dad's girlfriend)"
                           r"|(?:at|my) school|my teacher|homework|my mates)\b")


def read_stated_speaker(text: str) -> str | None:
    """Who is writing, when a sentence says it plainly ("I'm a GP", "my son is 14", "i'm 15 and my parents..."),
    or ``None`` (not said, or two readings: then the question asks)."""
    if not isinstance(text, str):
        return None
    low = re.sub(r"\s+", " ", text[:2000].lower().replace("’", "'")).strip()
    professional = any(p.search(low) for p in _STATED_PROFESSIONAL)
    parent = any(p.search(low) for p in _STATED_PARENT)
    own = [_to_int(m.group(1)) for m in _OWN_AGE.finditer(low)]
    young = any(n is not None and 8 <= n <= 19 for n in own) or (not own and bool(_STATED_YOUNG.search(low)) and not parent)
    readings = {value for value, said in (("professional", professional), ("parent", parent), ("young_person", young)) if said}
    if readings == {"professional", "parent"}:
        return None  # "I'm a teacher and my son...": ask
    if "young_person" in readings and len(readings) > 1:
        return "young_person" if any(n is not None and 8 <= n <= 19 for n in own) and not professional else None
    return readings.pop() if len(readings) == 1 else None
