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

__all__ = ["assess", "Assessment", "Answers", "Signal", "decide", "TriageFileError", "SHARED_NAMES"]

SHARED_NAMES = {1: "Universal", 2: "Additional", 3: "Intensive/targeted", 4: "Specialist"}
MAX_CHARS = 100_000  # beyond this a message is cut (the start and the end are kept)
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
    """(function shared level -> (number, name)) for the area, or the shared names."""
    if area is None:
        return lambda shared: (shared, SHARED_NAMES[shared])
    if isinstance(area, str):
        from bot.areas import get_area

        area = get_area(area)
    if not hasattr(area, "level"):
        raise BadInput(f"area must be an area id, got {type(area).__name__}")

    def own(shared: int) -> tuple[int, str]:
        lvl = area.level(shared)
        return lvl.number, lvl.name

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
    screened = screen_signals(messages) if any(m.strip() for m in messages) else []
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
    number, name = own(1)
    return Assessment(
        level=number,
        shared_level=1,
        label=name,
        confidence=0.0,
        reasons=[],
        next_questions=[],
        needs_more=True,
        message=MESSAGES[reason],
        rules=[],
    )


def _assessment(decision: Decision, given: Answers, bank: Bank, own) -> Assessment:
    shared = decision.shared_level
    number, name = own(shared)
    confidence = decision.confidence
    if decision.torn and own(decision.torn[0])[0] == own(decision.torn[1])[0]:
        confidence = max(confidence, bank.settings.low_confidence)  # the scheme does not tell them apart
    decision.confidence = confidence
    reasons = reasons_for(decision)
    questions = questions_for(decision, given, bank, given.speaker)
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
    )
