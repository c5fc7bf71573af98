"""Level-of-need triage: what a parent, young person or professional said -> a level of need 1-4 in the
area's own words, with the reasons (by domain of the Assessment Framework triangle), a confidence and,
when unsure, the next question or two that would settle it.

    from bot.triage import assess
    a = assess("my son hasn't been to school for weeks", answers={"age": 12}, area="gloucestershire")
    a.level, a.label, a.shared_level, a.confidence, a.reasons, a.next_questions, a.needs_more

Pure Python: no Rasa import. See ``bot.triage.engine`` for how a level is decided, and
``knowledge/triage/`` for the indicator bank, questions and settings it decides with.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from bot.errors import BadInput
from bot.triage import text as T
from bot.triage.bank import Bank, TriageFileError, load_bank
from bot.triage.engine import (
    Answers,
    Decision,
    MeaningIndex,
    Signal,
    decide,
    find_by_meaning,
    find_by_pattern,
    questions_for,
    reasons_for,
    screen_signals,
)

__all__ = [
    "assess", "Assessment", "Answers", "Signal", "decide", "TriageFileError", "SHARED_NAMES",
    "follow_up", "FollowUp", "record_answer", "questions", "MAX_FOLLOW_UPS",
]

SHARED_NAMES = {1: "Universal", 2: "Additional", 3: "Intensive/targeted", 4: "Specialist"}
MAX_CHARS = 100_000  # beyond this a message is cut (the start and the end are kept)
MAX_FOLLOW_UPS = 3  # guided follow-up questions in one conversation, at most
MESSAGES = {
    "empty": "Please tell me a little about what is worrying you, in a sentence or two, and I'll suggest the right kind of help.",
    "not_english": (
        "Sorry, I can only understand English at the moment. Could you tell me in English what is worrying you? "
        "If someone is in danger right now, call 999."
    ),
    "unclear": "I'm not sure I understood. Could you tell me a bit more about what is happening and who it affects?",
    "thin": (
        "Could you tell me a bit more about what is worrying you? For example what has been happening, "
        "who it affects and how long it has been going on."
    ),
}


# what each shared level means for a family, in plain words (used when no area is given; an area's own
# words from its data file are used otherwise)
SHARED_MEANING = {
    1: ("Everyday services every family can use, such as school, nursery, your GP or your health visitor, can "
        "help with this.", "They can also point you to clubs, groups and information near you."),
    2: ("Your family could do with some extra help with a particular worry, from one service or two working "
        "together.", "With your agreement, a worker you already know, such as at school or from health, helps "
        "or puts you in touch with the right service."),
    3: ("There are several worries at once, and services need to work together with one person coordinating "
        "the help.", "With your agreement, a worker does an early help assessment with you and a lead "
        "professional makes one plan with you and the services involved."),
    4: ("There are serious worries that a child may be harmed.", "The council's children's social care team "
        "should be told, and decides what happens next. If a child is in danger right now, call 999."),
}
DOMAIN_PLAIN = {
    "safeguarding": "About the child's safety",
    "child_development": "About the child's health, development, learning or behaviour",
    "parenting_capacity": "About parenting and the adults caring for the child",
    "family_environment": "About the family and home",
}


@dataclass
class Assessment:
    level: int
    shared_level: int
    label: str
    confidence: float
    reasons: list[dict[str, Any]] = field(default_factory=list)
    next_questions: list[dict[str, Any]] = field(default_factory=list)
    needs_more: bool = False
    message: str = ""
    rules: list[str] = field(default_factory=list)
    explanation: str = ""  # the level, what it means and why, in plain words for a family

    def by_domain(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for reason in self.reasons:
            grouped.setdefault(reason["domain"], []).append(reason)
        return grouped

    def to_dict(self) -> dict[str, Any]:
        return {
            "level": self.level,
            "label": self.label,
            "confidence": self.confidence,
            "reasons": list(self.reasons),
            "next_questions": list(self.next_questions),
            "shared_level": self.shared_level,
            "needs_more": self.needs_more,
            "message": self.message,
            "rules": list(self.rules),
            "explanation": self.explanation,
        }


# ------------------------------------------------------------------------------------------ inputs
_SPEAKERS = ("parent", "young_person", "professional")
_HOW_LONG = ("days", "weeks", "months", "years")
_YES = ("true", "yes", "y", "1")
_NO = ("false", "no", "n", "0")


def _as_int(name: str, value: Any, low: int, high: int) -> int:
    if isinstance(value, bool):
        raise BadInput(f"answers.{name} must be a whole number, got {value!r}")
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if not isinstance(value, int) or not low <= value <= high:
        raise BadInput(f"answers.{name} must be a whole number from {low} to {high}, got {value!r}")
    return value


def _choice(name: str, value: Any, allowed: tuple[str, ...]) -> str:
    if not isinstance(value, str) or value.strip().lower() not in allowed:
        raise BadInput(f"answers.{name} must be one of {', '.join(allowed)}, got {value!r}")
    return value.strip().lower()


def read_answers(answers: Any) -> Answers:
    """Structured answers, checked; unknown keys are ignored (a form may carry other slots)."""
    if answers is None:
        return Answers()
    if not isinstance(answers, dict):
        raise BadInput(f"answers must be a mapping of question ids to answers, got {type(answers).__name__}")
    out = Answers()
    get = {k: v for k, v in answers.items() if v is not None}
    if "age" in get:
        out.age = _as_int("age", get["age"], 0, 25)
    if "speaker" in get:
        out.speaker = _choice("speaker", get["speaker"], _SPEAKERS)
    if "services_involved" in get:
        value = get["services_involved"]
        if isinstance(value, str) and value.strip().lower() in _YES + _NO:
            value = value.strip().lower() in _YES
        if not isinstance(value, bool):
            raise BadInput(f"answers.services_involved must be true or false, got {value!r}")
        out.services_involved = value
    if "how_long" in get:
        out.how_long = _choice("how_long", get["how_long"], _HOW_LONG)
    if "needs_count" in get:
        out.needs_count = _as_int("needs_count", get["needs_count"], 0, 50)
    if "harm" in get:
        out.harm = _choice("harm", get["harm"], ("yes", "no", "unsure"))
    if "support" in get:
        out.support = _choice("support", get["support"], ("none", "helping", "not_enough"))
    return out


def _messages(text: Any) -> list[str]:
    if isinstance(text, str):
        items = [text]
    elif isinstance(text, (list, tuple)) and all(isinstance(t, str) for t in text):
        items = list(text)
    else:
        raise BadInput("text must be a string or a list of strings (the person's messages)")
    out = []
    for item in items:
        if len(item) > MAX_CHARS:
            item = item[: MAX_CHARS // 2] + "\n" + item[-MAX_CHARS // 2 :]
        out.append(item)
    return out


def _scheme(area: Any):
    """(function shared level -> (number, name)) for the area, or the shared names; the area object
    (or None) is kept on the function as ``.area`` for the plain-words explanation."""
    if area is None:
        def shared_names(shared: int) -> tuple[int, str]:
            return shared, SHARED_NAMES[shared]

        shared_names.area = None
        return shared_names
    if isinstance(area, str):
        from bot.areas import get_area

        area = get_area(area)
    if not hasattr(area, "level"):
        raise BadInput(f"area must be an area id, got {type(area).__name__}")

    def own(shared: int) -> tuple[int, str]:
        lvl = area.level(shared)
        return lvl.number, lvl.name

    own.area = area
    return own


@lru_cache(maxsize=1)
def _index() -> MeaningIndex:
    return MeaningIndex(load_bank())


# ------------------------------------------------------------------------------------------ assess
def assess(text: str | list[str], answers: dict | None = None, area: Any = None) -> Assessment:
    """The level of need for what the person said. Raises ``BadInput`` only for a wrong type, a bad answer
    value or an unknown area; any string (empty, emoji, another language, 20,000 characters) is answered."""
    own = _scheme(area)
    given = read_answers(answers)
    messages = _messages(text)
    bank = load_bank()
    sentences = T.sentences(messages)

    found = find_by_pattern(bank, sentences, given.age)
    screened = screen_signals(messages, bank, given.age) if any(m.strip() for m in messages) else []
    serious = any(s.level == 4 and not s.possible for s in [*found.values(), *screened])

    tokens = [w for m in messages for w in T.words(m)]
    thin_reason = None
    if not any(T.has_letters(m) for m in messages):
        thin_reason = "empty"
    elif not tokens or T.english_share(tokens, bank.vocabulary) < 0.5:
        thin_reason = "not_english" if _looks_like_language(messages) else "unclear"
    if thin_reason and not serious:
        return _needs_more(thin_reason, own, given)

    meaning = find_by_meaning(bank, _index(), sentences, given.age) if sentences else {}
    signals: dict[str, Signal] = dict(meaning)
    signals.update(found)  # a pattern match is surer than a match by meaning
    for s in screened:
        signals[s.id] = s
    if not serious and not any(s.kind in ("need", "universal", "protective") and not s.possible for s in signals.values()):
        if not _has_answers(given):
            return _needs_more("thin", own, given)

    decision = decide(signals.values(), given, bank.settings)
    return _assessment(decision, given, bank, own)


def _has_answers(given: Answers) -> bool:
    return any(v is not None for k, v in vars(given).items() if k not in ("age", "speaker"))


def _looks_like_language(messages: list[str]) -> bool:
    """Words of letters with vowels (another language), rather than key-mashing or symbols."""
    words = [w for m in messages for w in T.normalise(m).split() if T.has_letters(w)]
    if not words:
        return False
    # scripts other than Latin are a language we don't read
    if any(ord(ch) > 0x24F and ch.isalpha() for w in words for ch in w):
        return True
    voweled = [w for w in words if any(v in w.lower() for v in "aeiouyàáâäãåèéêëìíîïòóôöõùúûüýÿąęó")]
    return len(words) >= 2 and len(voweled) / len(words) >= 0.8 and sum(len(w) for w in words) / len(words) <= 12


def _needs_more(reason: str, own, given: Answers) -> Assessment:
    """Too little to judge. For English that names no need ("I'm worried about my son") the first questions
    are the ones that matter most, harm first; for empty, unreadable or non-English text, none."""
    number, name = own(1)
    questions: list[dict] = []
    if reason == "thin":
        bank = load_bank()
        questions = [bank.questions[q].render(given.speaker) for q in ("harm", "needs_count") if q in bank.questions]
    return Assessment(
        level=number,
        shared_level=1,
        label=name,
        confidence=0.0,
        reasons=[],
        next_questions=questions,
        needs_more=True,
        message=MESSAGES[reason],
        rules=[],
        explanation=MESSAGES[reason],
    )


def _assessment(decision: Decision, given: Answers, bank: Bank, own) -> Assessment:
    shared = decision.shared_level
    number, name = own(shared)
    confidence = decision.confidence
    if decision.torn and own(decision.torn[0])[0] == own(decision.torn[1])[0]:
        confidence = max(confidence, bank.settings.low_confidence)  # the scheme does not tell them apart
    decision.confidence = confidence
    reasons = reasons_for(decision)
    # a question that only tells apart two levels the area calls by one name is not worth asking
    questions = [q for q in questions_for(decision, given, bank, given.speaker)
                 if own(q["settles"][0])[0] != own(q["settles"][1])[0]]
    summary = f"This sounds like level {number} ({name})"
    if reasons:
        summary += ": " + "; ".join(r["plain"] for r in reasons[:3])
    return Assessment(
        level=number,
        shared_level=shared,
        label=name,
        confidence=confidence,
        reasons=reasons,
        next_questions=questions,
        needs_more=False,
        message=summary + ".",
        rules=list(decision.rules),
        explanation=explain(shared, reasons, list(decision.rules), own),
    )


def explain(shared: int, reasons: list[dict[str, Any]], rules: list[str], own) -> str:
    """The level in the area's words, what it means and what usually happens, then what was noticed (by
    domain) and why the level is what it is: plain words, no jargon, for the family or the professional."""
    area = getattr(own, "area", None)
    number, name = own(shared)
    if area is not None:
        level = area.level(shared)
        meaning, response = level.meaning, level.response
        where = f" (level {number} of {len(area.levels)} in {area.name})"
    else:
        meaning, response = SHARED_MEANING[shared]
        where = f" (level {number} of 4)"
    parts = [f"This sounds like {name}{where}. {meaning} {response}".strip()]
    grouped: dict[str, list[str]] = {}
    for reason in reasons:
        grouped.setdefault(reason["domain"], []).append(reason["plain"])
    if grouped:
        noticed = "; ".join(f"{DOMAIN_PLAIN.get(d, d)}: {', '.join(dict.fromkeys(p))}" for d, p in grouped.items())
        parts.append(f"What I noticed. {noticed}.")
    if rules:  # the rules name shared levels; say them in the area's words
        said = [re.sub(r"\s*\(level [1-4]\)", "", rule) for rule in rules]
        said = [re.sub(r"\blevel ([1-4])\b", lambda m: f"'{own(int(m.group(1)))[1]}'", rule) for rule in said]
        parts.append("Why this level: " + "; ".join(said) + ".")
    if shared == 4 and "999" not in response:
        parts.append("If a child is in danger right now, call 999.")
    return " ".join(parts)


# ------------------------------------------------------------------------------------------ follow-up
@dataclass
class FollowUp:
    """One step of the guided follow-up: the assessment so far and, while unsure, the next question."""

    assessment: Assessment
    question: dict[str, Any] | None  # {"id", "text", "options": [{"title", "value", "means"}], "settles"} or None
    answers: dict[str, Any]  # the answers so far, checked (keep them, pass them back next time)
    asked: list[str]  # ids of the follow-up questions asked so far

    @property
    def done(self) -> bool:
        return self.question is None

    def to_dict(self) -> dict[str, Any]:
        return {"assessment": self.assessment.to_dict(), "question": self.question,
                "answers": dict(self.answers), "asked": list(self.asked)}


def questions() -> dict[str, dict[str, Any]]:
    """The follow-up question bank by id, as rendered for a parent or professional (see questions.yml)."""
    return {q.id: q.render(None) for q in load_bank().questions.values()}


def record_answer(answers: dict | None, question_id: Any, reply: Any) -> dict[str, Any]:
    """``answers`` plus the reply to one follow-up question. The reply may be an option's value or its title
    ("not_enough" or "Yes, but it's not enough"). ``BadInput`` names the question or the options otherwise."""
    bank = load_bank()
    if not isinstance(question_id, str) or question_id not in bank.questions:
        raise BadInput(f"unknown follow-up question {question_id!r}; known: {', '.join(bank.questions)}")
    question = bank.questions[question_id]
    option = question.option(reply)
    if option is None:
        choices = ", ".join(f"{o.value!r} ({o.title})" for o in question.options)
        raise BadInput(f"{reply!r} is not an answer to {question_id!r}; choose one of {choices}")
    out = dict(answers or {})
    out[question_id] = option.value
    read_answers(out)  # still valid as a whole
    return out


def follow_up(
    text: str | list[str], answers: dict | None = None, area: Any = None, asked: list[str] | tuple[str, ...] = ()
) -> FollowUp:
    """Assess with the answers so far; while confidence is low and fewer than ``MAX_FOLLOW_UPS`` questions have
    been asked, also return the next question to ask (never one already asked or answered). The conversation
    calls this after the person has said what is happening, and again after each answer, until ``done``."""
    if not isinstance(asked, (list, tuple)) or not all(isinstance(a, str) for a in asked):
        raise BadInput("asked must be a list of follow-up question ids")
    assessment = assess(text, answers=answers, area=area)
    checked = {k: v for k, v in (answers or {}).items() if v is not None}
    done_ids = set(asked) | {k for k in checked if k in load_bank().questions}
    question = None
    if len(done_ids) < MAX_FOLLOW_UPS:
        question = next((q for q in assessment.next_questions if q["id"] not in done_ids), None)
    if assessment.needs_more and not assessment.next_questions:
        question = None  # nothing to ask with buttons: the person is asked to say more in their own words
    return FollowUp(assessment, question, checked, list(asked))
