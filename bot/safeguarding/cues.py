"""Load and validate the safeguarding cue bank (``knowledge/safeguarding/*.yml``).

Three files: ``cues.yml`` (categories in order of seriousness and the cues themselves), ``modifiers.yml``
(how text is normalised and how negation, idioms, time and questions change a cue) and ``lines.yml``
(which national helplines fit which category and speaker). Everything is checked at load: the schema with
pydantic, every regular expression by compiling it, every ``<<macro>>`` against the lexicon. Any problem
raises :class:`CueBankError` whose message names the file and the field, for example
``cues.yml: cues.12.patterns.0 (cue 'pa_hit_person'): bad regular expression: missing ), ...``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from bot.paths import knowledge_dir

CATEGORIES: tuple[str, ...] = (
    "physical_abuse",
    "sexual_abuse",
    "emotional_abuse",
    "neglect",
    "domestic_abuse",
    "child_sexual_exploitation",
    "child_criminal_exploitation",
    "online_grooming",
    "self_harm",
    "missing",
    "fgm",
    "forced_marriage",
    "honour_based_abuse",
    "radicalisation",
    "trafficking",
)
SPEAKERS: tuple[str, ...] = ("young_person", "parent", "professional")
SOURCE_RE = r"^(?:00[0-4]|practice)$"
CUES_FILE, MODIFIERS_FILE, LINES_FILE = "cues.yml", "modifiers.yml", "lines.yml"

_MACRO = re.compile(r"<<(\w+)>>")


class CueBankError(ValueError):
    """The cue bank on disk is broken; the message names the file and the field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class CategoryDef(_Strict):
    id: str
    label: str = Field(min_length=1, max_length=60)
    sources: list[str] = Field(min_length=1)

    @field_validator("id")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}; known: {', '.join(CATEGORIES)}")
        return value

    @field_validator("sources")
    @classmethod
    def _sources(cls, value: list[str]) -> list[str]:
        for source in value:
            if not re.match(SOURCE_RE, source):
                raise ValueError(f"source {source!r} must be a seed id 000-004 or 'practice'")
        return value


class CueDef(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=3, max_length=80)
    categories: list[str] = Field(min_length=1)
    source: str = Field(pattern=SOURCE_RE)
    level: Literal["strong", "weak"] = "strong"
    immediate: bool = False
    patterns: list[str] = Field(min_length=1)
    requires: list[str] = []
    unless: list[str] = []

    @field_validator("categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for category in value:
            if category not in CATEGORIES:
                raise ValueError(f"unknown category {category!r}; known: {', '.join(CATEGORIES)}")
        return value


class CueFile(_Strict):
    version: int
    last_reviewed: str
    categories: list[CategoryDef]
    cues: list[CueDef] = Field(min_length=1)

    @field_validator("categories")
    @classmethod
    def _all_once(cls, value: list[CategoryDef]) -> list[CategoryDef]:
        ids = [c.id for c in value]
        missing = sorted(set(CATEGORIES) - set(ids))
        if missing or len(ids) != len(set(ids)):
            raise ValueError(f"must list every category exactly once (missing: {missing or 'none'})")
        return value


class IdiomDef(_Strict):
    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str = Field(min_length=3, max_length=80)
    pattern: str
    # optional: a match is not an idiom when one of these is found within 80 characters of it
    unless: list[str] = []


class ReclassifyDef(_Strict):
    when_category: str
    add: str
    pattern: str

    @field_validator("when_category", "add")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}")
        return value


class ModifierFile(_Strict):
    version: int
    last_reviewed: str
    lexicon: dict[str, str]
    spellings: dict[str, str]
    dropped_g_stems: str
    idioms: list[IdiomDef]
    negators: str
    negation_resets: str
    clause_breaks: str
    negation_window_words: int = Field(ge=1, le=12)
    distant_past: str
    past_tense: str
    resolved: str
    ongoing: str
    immediate_markers: str
    immediate_excluded_categories: list[str]
    info_question: str
    reclassify: list[ReclassifyDef] = []
    # optional reading rules (2026-11-29, helper 29)
    negation_ignored: str = r"(?!x)x"
    negation_contrast: str = r"(?!x)x"
    info_disclosed: str = r"(?!x)x"
    # what the classifier by meaning does not read around an idiom (2026-11-29, helper 33): the rest of the
    # idiom's clause, at most ``idiom_clause_words`` words each side, never past a clause break or a stop
    idiom_clause_stops: str = r"(?!x)x"
    idiom_clause_words: int = Field(default=0, ge=0, le=20)

    @field_validator("immediate_excluded_categories")
    @classmethod
    def _known(cls, value: list[str]) -> list[str]:
        for category in value:
            if category not in CATEGORIES:
                raise ValueError(f"unknown category {category!r}")
        return value


class LinesFile(_Strict):
    version: int
    last_reviewed: str
    services: list[str] = Field(min_length=1)
    by_category: dict[str, dict[str, list[str]]]

    @field_validator("by_category")
    @classmethod
    def _complete(cls, value: dict[str, dict[str, list[str]]]) -> dict[str, dict[str, list[str]]]:
        for category, by_speaker in value.items():
            if category not in CATEGORIES:
                raise ValueError(f"unknown category {category!r}")
            for speaker in by_speaker:
                if speaker not in (*SPEAKERS, "default"):
                    raise ValueError(f"{category}: unknown speaker {speaker!r}")
            if "default" not in by_speaker:
                raise ValueError(f"{category}: needs a 'default' list")
        missing = sorted(set(CATEGORIES) - set(value))
        if missing:
            raise ValueError(f"no lines for categories: {', '.join(missing)}")
        return value


# ------------------------------------------------------------------------------------------ compiled bank
@dataclass(frozen=True)
class Cue:
    id: str
    name: str
    categories: tuple[str, ...]
    source: str
    strong: bool
    immediate: bool
    pattern: re.Pattern[str]
    requires: tuple[re.Pattern[str], ...]
    unless: tuple[re.Pattern[str], ...]


@dataclass(frozen=True)
class Idiom:
    """A compiled idiom: ``pattern``, except where one of ``unless`` is found near the match."""

    pattern: re.Pattern[str]
    unless: tuple[re.Pattern[str], ...] = ()

    def finditer(self, text: str):
        for m in self.pattern.finditer(text):
            if self.unless:
                near = text[max(0, m.start() - 80) : m.end() + 80]
                if any(u.search(near) for u in self.unless):
                    continue
            yield m

    def sub(self, repl, text: str) -> str:
        pieces, last = [], 0
        for m in self.finditer(text):
            pieces.append(text[last : m.start()])
            pieces.append(repl(m))
            last = m.end()
        if not pieces:
            return text
        pieces.append(text[last:])
        return "".join(pieces)


@dataclass(frozen=True)
class Reclassify:
    when_category: str
    add: str
    pattern: re.Pattern[str]


@dataclass(frozen=True)
class CueBank:
    directory: Path
    order: tuple[str, ...]  # categories, most serious first
    labels: dict[str, str]
    cues: tuple[Cue, ...]
    spellings: dict[str, str]
    dropped_g: re.Pattern[str]
    idioms: tuple[Idiom, ...]
    negators: re.Pattern[str]
    negation_resets: re.Pattern[str]
    clause_breaks: re.Pattern[str]
    negation_window_words: int
    distant_past: re.Pattern[str]
    past_tense: re.Pattern[str]
    resolved: re.Pattern[str]
    ongoing: re.Pattern[str]
    immediate_markers: re.Pattern[str]
    immediate_excluded: frozenset[str]
    info_question: re.Pattern[str]
    reclassify: tuple[Reclassify, ...]
    negation_ignored: re.Pattern[str] = re.compile(r"(?!x)x")
    negation_contrast: re.Pattern[str] = re.compile(r"(?!x)x")
    info_disclosed: re.Pattern[str] = re.compile(r"(?!x)x")
    idiom_clause_stops: re.Pattern[str] = re.compile(r"(?!x)x")
    idiom_clause_words: int = 0
    lines: dict[str, dict[str, tuple[str, ...]]] = field(default_factory=dict)
    services: tuple[str, ...] = ()


def _read_yaml(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise CueBankError(f"{path.name}: cannot read file: {err.strerror or err}") from None
    try:
        return yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # the C parser: 10x faster
    except yaml.YAMLError as err:
        where = getattr(err, "problem_mark", None)
        at = f" at line {where.line + 1}" if where is not None else ""
        raise CueBankError(f"{path.name}: not valid YAML{at}: {getattr(err, 'problem', err)}") from None


def _validate(model: type[BaseModel], path: Path, data: Any) -> Any:
    if not isinstance(data, dict):
        raise CueBankError(f"{path.name}: top level must be a mapping, got {type(data).__name__}")
    try:
        return model.model_validate(data)
    except ValidationError as err:
        problems = []
        for e in err.errors()[:5]:
            loc = ".".join(str(p) for p in e["loc"]) or "(top level)"
            problems.append(f"{loc}: {e['msg']}")
        more = f" (and {err.error_count() - 5} more)" if err.error_count() > 5 else ""
        raise CueBankError(f"{path.name}: " + "; ".join(problems) + more) from None


class _Compiler:
    """Expands ``<<macro>>`` and compiles, reporting failures with file and field."""

    def __init__(self, lexicon: dict[str, str], file: str):
        self.lexicon = lexicon
        self.file = file
        self._expanded: dict[str, str] = {}

    def expand(self, pattern: str, where: str, depth: int = 0) -> str:
        if depth > 5:
            raise CueBankError(f"{self.file}: {where}: macros nest too deeply")

        def sub(m: re.Match[str]) -> str:
            name = m.group(1)
            if name not in self.lexicon:
                raise CueBankError(f"{self.file}: {where}: unknown macro <<{name}>> (lexicon has: {', '.join(sorted(self.lexicon))})")
            if name not in self._expanded:
                self._expanded[name] = self.expand(self.lexicon[name], f"lexicon.{name}", depth + 1)
            return self._expanded[name]

        return _MACRO.sub(sub, pattern)

    def compile(self, pattern: str, where: str) -> re.Pattern[str]:
        expanded = self.expand(pattern, where)
        try:
            return re.compile(expanded)
        except re.error as err:
            raise CueBankError(f"{self.file}: {where}: bad regular expression: {err}") from None


def load_bank(directory: Path | str | None = None) -> CueBank:
    """Read, validate and compile the bank in ``directory`` (default ``knowledge/safeguarding``)."""
    folder = Path(directory) if directory is not None else knowledge_dir() / "safeguarding"
    cue_path, mod_path, lines_path = folder / CUES_FILE, folder / MODIFIERS_FILE, folder / LINES_FILE
    cue_file: CueFile = _validate(CueFile, cue_path, _read_yaml(cue_path))
    mods: ModifierFile = _validate(ModifierFile, mod_path, _read_yaml(mod_path))
    lines_file: LinesFile = _validate(LinesFile, lines_path, _read_yaml(lines_path))

    m = _Compiler(mods.lexicon, MODIFIERS_FILE)
    c = _Compiler(mods.lexicon, CUES_FILE)

    seen: set[str] = set()
    cues = []
    for i, cue in enumerate(cue_file.cues):
        where = f"cues.{i}"
        if cue.id in seen:
            raise CueBankError(f"{CUES_FILE}: {where}.id: duplicate cue id {cue.id!r}")
        seen.add(cue.id)
        parts = [c.expand(p, f"{where}.patterns.{j} (cue {cue.id!r})") for j, p in enumerate(cue.patterns)]
        for j, p in enumerate(parts):  # compile each alone first so the error names the right pattern
            try:
                re.compile(p)
            except re.error as err:
                raise CueBankError(f"{CUES_FILE}: {where}.patterns.{j} (cue {cue.id!r}): bad regular expression: {err}") from None
        cues.append(
            Cue(
                id=cue.id,
                name=cue.name,
                categories=tuple(cue.categories),
                source=cue.source,
                strong=cue.level == "strong",
                immediate=cue.immediate,
                pattern=re.compile("|".join(f"(?:{p})" for p in parts)),
                requires=tuple(c.compile(p, f"{where}.requires.{j} (cue {cue.id!r})") for j, p in enumerate(cue.requires)),
                unless=tuple(c.compile(p, f"{where}.unless.{j} (cue {cue.id!r})") for j, p in enumerate(cue.unless)),
            )
        )

    idiom_ids: set[str] = set()
    idioms = []
    for i, idiom in enumerate(mods.idioms):
        if idiom.id in idiom_ids:
            raise CueBankError(f"{MODIFIERS_FILE}: idioms.{i}.id: duplicate idiom id {idiom.id!r}")
        idiom_ids.add(idiom.id)
        idioms.append(Idiom(
            m.compile(idiom.pattern, f"idioms.{i}.pattern (idiom {idiom.id!r})"),
            tuple(m.compile(u, f"idioms.{i}.unless.{j} (idiom {idiom.id!r})") for j, u in enumerate(idiom.unless)),
        ))

    known = set(lines_file.services)
    lines: dict[str, dict[str, tuple[str, ...]]] = {}
    for category, by_speaker in lines_file.by_category.items():
        for speaker, ids in by_speaker.items():
            for k, service in enumerate(ids):
                if service not in known:
                    raise CueBankError(
                        f"{LINES_FILE}: by_category.{category}.{speaker}.{k}: unknown service {service!r}; "
                        f"known: {', '.join(lines_file.services)}"
                    )
        lines[category] = {speaker: tuple(ids) for speaker, ids in by_speaker.items()}

    for k, (token, replacement) in enumerate(mods.spellings.items()):
        if not re.fullmatch(r"[a-z0-9]+", str(token)):
            raise CueBankError(f"{MODIFIERS_FILE}: spellings.{token}: keys must be one lower-case word")
    return CueBank(
        directory=folder,
        order=tuple(cat.id for cat in cue_file.categories),
        labels={cat.id: cat.label for cat in cue_file.categories},
        cues=tuple(cues),
        spellings={str(k): str(v) for k, v in mods.spellings.items()},
        dropped_g=m.compile(r"\b(" + mods.dropped_g_stems + r")in\b", "dropped_g_stems"),
        idioms=tuple(idioms),
        negators=m.compile(mods.negators, "negators"),
        negation_resets=m.compile(mods.negation_resets, "negation_resets"),
        clause_breaks=m.compile(mods.clause_breaks, "clause_breaks"),
        negation_window_words=mods.negation_window_words,
        distant_past=m.compile(mods.distant_past, "distant_past"),
        past_tense=m.compile(mods.past_tense, "past_tense"),
        resolved=m.compile(mods.resolved, "resolved"),
        ongoing=m.compile(mods.ongoing, "ongoing"),
        immediate_markers=m.compile(mods.immediate_markers, "immediate_markers"),
        immediate_excluded=frozenset(mods.immediate_excluded_categories),
        info_question=m.compile(mods.info_question, "info_question"),
        reclassify=tuple(
            Reclassify(r.when_category, r.add, m.compile(r.pattern, f"reclassify.{i}.pattern"))
            for i, r in enumerate(mods.reclassify)
        ),
        negation_ignored=m.compile(mods.negation_ignored, "negation_ignored"),
        negation_contrast=m.compile(mods.negation_contrast, "negation_contrast"),
        info_disclosed=m.compile(mods.info_disclosed, "info_disclosed"),
        idiom_clause_stops=m.compile(mods.idiom_clause_stops, "idiom_clause_stops"),
        idiom_clause_words=mods.idiom_clause_words,
        lines=lines,
        services=tuple(lines_file.services),
    )


@lru_cache(maxsize=1)
def default_bank() -> CueBank:
    """The bank shipped in ``knowledge/safeguarding``, loaded once per process."""
    return load_bank()
