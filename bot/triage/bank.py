"""The triage's knowledge: the indicator bank, follow-up questions and decision settings.

Everything lives in YAML under ``knowledge/triage/`` so a council can read and correct it; files are
validated with pydantic at load and a mistake fails loudly with the file and the field.
"""
from __future__ import annotations

import re
from functools import cached_property, lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.paths import knowledge_dir

DOMAINS = ("child_development", "parenting_capacity", "family_environment", "safeguarding")
SOURCES = ("000", "001", "002", "003", "004", "practice")
# the answers a follow-up question may fill (bot.triage.read_answers reads them)
ANSWER_IDS = ("harm", "needs_count", "support", "how_long", "services_involved")


class TriageFileError(ValueError):
    """A triage knowledge file is wrong; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _compile(patterns: list[str], where: str) -> list[str]:
    for pattern in patterns:
        try:
            re.compile(pattern, re.IGNORECASE)
        except re.error as err:
            raise ValueError(f"{where} {pattern!r} is not a valid regular expression: {err}") from err
    return patterns


class Indicator(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    domain: Literal["child_development", "parenting_capacity", "family_environment", "safeguarding"]
    level: int = Field(ge=1, le=4)
    kind: Literal["need", "universal", "protective", "modifier"]
    theme: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="needs with the same theme count once")
    plain: str = Field(min_length=3, description="what this means, in plain words for a family")
    source: Literal["000", "001", "002", "003", "004", "practice"]
    patterns: list[str] = []
    unless: list[str] = []
    cues: list[str] = Field(default=[], description=(
        "level 3-4 needs: words (regular expressions) that anchor a match by meaning; a sentence with none of "
        "them (nor, at level 4, a harm word) counts for this indicator only at the closer 'unanchored' similarity"))
    exemplars: list[str] = []
    min_age: int | None = Field(default=None, ge=0, le=25)
    max_age: int | None = Field(default=None, ge=0, le=25)

    @field_validator("patterns")
    @classmethod
    def _patterns(cls, value: list[str]) -> list[str]:
        return _compile(value, "pattern")

    @field_validator("unless")
    @classmethod
    def _unless(cls, value: list[str]) -> list[str]:
        return _compile(value, "unless pattern")

    @field_validator("cues")
    @classmethod
    def _cues(cls, value: list[str]) -> list[str]:
        return _compile(value, "cue")

    @model_validator(mode="after")
    def _consistent(self) -> "Indicator":
        if not self.patterns and not self.exemplars:
            raise ValueError("an indicator needs at least one pattern or exemplar")
        if self.domain == "safeguarding" and self.level != 4:
            raise ValueError("safeguarding indicators are level 4 (risk of significant harm)")
        if self.kind in ("universal", "protective") and self.level != 1:
            raise ValueError(f"{self.kind} indicators are level 1")
        if self.kind == "need" and self.level == 1:
            raise ValueError("a level-1 indicator is 'universal' or 'protective', not a 'need'")
        if self.cues and not (self.kind == "need" and self.level >= 3):
            raise ValueError("cues anchor level 3-4 needs only")
        if self.kind == "need" and self.level == 3 and self.exemplars and not self.cues:
            raise ValueError("a level-3 need with exemplars needs cues (the words that anchor a match by meaning)")
        return self

    @cached_property
    def compiled(self) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in self.patterns]

    @cached_property
    def compiled_unless(self) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in self.unless]

    @cached_property
    def compiled_cues(self) -> list[re.Pattern]:
        return [re.compile(p, re.IGNORECASE) for p in self.cues]

    def applies_to_age(self, age: int | None) -> bool:
        if age is None:
            return True
        return (self.min_age is None or age >= self.min_age) and (self.max_age is None or age <= self.max_age)


class IndicatorFile(_Strict):
    sources: dict[str, str]
    indicators: list[Indicator] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "IndicatorFile":
        ids = [i.id for i in self.indicators]
        dupes = sorted({i for i in ids if ids.count(i) > 1})
        if dupes:
            raise ValueError(f"indicator ids must be unique, repeated: {dupes}")
        missing = sorted({i.source for i in self.indicators} - set(self.sources))
        if missing:
            raise ValueError(f"sources cited but not listed under 'sources': {missing}")
        for level in (1, 2, 3, 4):
            if not any(i.level == level for i in self.indicators):
                raise ValueError(f"the bank has no indicator at level {level}")
        return self


class Option(_Strict):
    title: str = Field(min_length=1, description="the button's words")
    value: str = Field(min_length=1, description="what goes into answers[question id]")
    means: str = Field(min_length=3, description="what this answer does to the level, in plain words")


class Question(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    settles: list[int] = Field(min_length=2, max_length=2)
    text: str
    text_young_person: str
    options: list[Option] = Field(min_length=2)

    def render(self, speaker: str | None) -> dict:
        text = self.text_young_person if speaker == "young_person" else self.text.replace("{child}", "the child")
        return {
            "id": self.id,
            "text": text,
            "options": [o.model_dump() for o in self.options],
            "settles": list(self.settles),
        }

    def option(self, given: object) -> Option | None:
        """The option a reply picks: its value or its title (any case), or None."""
        if not isinstance(given, str):
            return None
        said = " ".join(given.strip().lower().replace("\u2019", "'").split())
        for option in self.options:
            if said in (option.value.lower(), option.title.lower()):
                return option
        return None


class QuestionFile(_Strict):
    questions: list[Question] = Field(min_length=1)

    @model_validator(mode="after")
    def _known(self) -> "QuestionFile":
        ids = [q.id for q in self.questions]
        unknown = sorted(set(ids) - set(ANSWER_IDS))
        if unknown:
            raise ValueError(f"questions must be answers the triage reads ({', '.join(ANSWER_IDS)}), not {unknown}")
        if len(set(ids)) != len(ids):
            raise ValueError("question ids must be unique")
        return self


class Settings(_Strict):
    match_threshold: dict[int, float]
    possible_band: float = Field(ge=0, le=0.5)
    margin: float = Field(ge=0, le=1)
    several_needs: int = Field(ge=2)
    low_confidence: float = Field(gt=0, lt=1)
    max_units: int = Field(ge=1)
    max_unit_chars: int = Field(ge=20)
    # a level-3/4 need matched only by meaning, in a sentence without its cue words (or, at level 4, any harm
    # word), counts only at this similarity or closer, and is never "possibly level 4"
    unanchored_threshold: dict[int, float]
    # words of harm or risk (regular expressions): they anchor any level-4 match by meaning, and the
    # safeguarding screen's escalations made by its classifier alone
    harm_words: list[str] = Field(min_length=1)

    @field_validator("harm_words")
    @classmethod
    def _harm_words(cls, value: list[str]) -> list[str]:
        return _compile(value, "harm word")

    @field_validator("unanchored_threshold")
    @classmethod
    def _unanchored(cls, value: dict[int, float]) -> dict[int, float]:
        if sorted(value) != [3, 4] or not all(0 < v <= 1 for v in value.values()):
            raise ValueError("unanchored_threshold needs a similarity between 0 and 1 for levels 3 and 4")
        return value

    @cached_property
    def harm(self) -> re.Pattern:
        return re.compile("|".join(f"(?:{p})" for p in self.harm_words), re.IGNORECASE)

    @field_validator("match_threshold")
    @classmethod
    def _levels(cls, value: dict[int, float]) -> dict[int, float]:
        if sorted(value) != [1, 2, 3, 4] or not all(0 < v < 1 for v in value.values()):
            raise ValueError("match_threshold needs a similarity between 0 and 1 for each level 1-4")
        return value


class LanguageFile(_Strict):
    words: str


class Bank:
    """The loaded, validated knowledge the triage decides with."""

    def __init__(self, indicators: IndicatorFile, questions: QuestionFile, settings: Settings, words: set[str]):
        self.sources = indicators.sources
        self.indicators = indicators.indicators
        self.by_id = {i.id: i for i in self.indicators}
        self.questions = {q.id: q for q in questions.questions}
        self.settings = settings
        vocabulary = set(words)
        for ind in self.indicators:
            for text in [ind.plain, *ind.exemplars]:
                vocabulary.update(re.findall(r"[a-z']+", text.lower()))
        self.vocabulary = frozenset(vocabulary)
        # exemplar rows, in order, and which indicator each belongs to
        self.exemplars: list[str] = []
        self.exemplar_owner: list[int] = []
        for index, ind in enumerate(self.indicators):
            for ex in ind.exemplars:
                self.exemplars.append(ex)
                self.exemplar_owner.append(index)


def _describe(err: ValidationError, raw: object) -> str:
    lines = []
    for problem in err.errors():
        loc = list(problem["loc"])
        where = ".".join(str(part) for part in loc) or "(file)"
        # name the indicator/question by id, not only by its position
        if len(loc) >= 2 and isinstance(loc[1], int) and isinstance(raw, dict):
            items = raw.get(str(loc[0]))
            if isinstance(items, list) and loc[1] < len(items) and isinstance(items[loc[1]], dict):
                ident = items[loc[1]].get("id")
                if ident:
                    where = f"{where} (id {ident!r})"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def _load(path: Path, model: type[BaseModel]):
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError as err:
        raise TriageFileError(f"{path}: file not found") from err
    except yaml.YAMLError as err:
        raise TriageFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise TriageFileError(f"{path}: expected a mapping of fields at the top level")
    try:
        return model.model_validate(raw)
    except ValidationError as err:
        raise TriageFileError(f"{path}: {_describe(err, raw)}") from err


def load_bank_from(folder: Path) -> Bank:
    indicators = _load(folder / "indicators.yml", IndicatorFile)
    questions = _load(folder / "questions.yml", QuestionFile)
    settings = _load(folder / "settings.yml", Settings)
    language = _load(folder / "language.yml", LanguageFile)
    return Bank(indicators, questions, settings, set(language.words.lower().split()))


@lru_cache(maxsize=1)
def load_bank() -> Bank:
    """The configured bank, validated; cached for the life of the process."""
    return load_bank_from(knowledge_dir() / "triage")
