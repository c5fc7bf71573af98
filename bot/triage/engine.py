"""How a level of need is decided. Pure Python (no Rasa): text and answers in, an explained level out.

1. Read: split what was said into sentences (and clauses) and look for indicators from the bank, by
   keyword pattern (enough on its own) and by meaning (sentence embeddings close to an indicator's
   example sentences). Negated cues ("no concerns about ...") do not count.
2. Ask the safeguarding screen too (``bot.safeguarding``, when installed): any cue it escalates is level 4;
   when it is only unsure, the level is not raised but the question about harm is asked first.
3. Decide (``decide``): the highest level any indicator points to, then the combination rules:
   several additional needs -> level 3; support already in place but not enough, or long-standing needs
   -> one level up (never past 3 without a sign of harm); an answer "yes" to "has anyone hurt the child"
   -> level 4 ("not sure" -> possibly level 4, so level 4 at low confidence). When a higher level is
   possible but not certain, the higher one is chosen (conservative) with a lower confidence and the
   question that would settle it.
"""
from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from bot.triage.bank import Bank, Indicator, Settings
from bot.triage import text as T

log = logging.getLogger(__name__)

DOMAIN_ORDER = ("safeguarding", "child_development", "parenting_capacity", "family_environment")
SEVERAL = "several_needs"


@dataclass(frozen=True)
class Signal:
    """One indicator found in what was said (or in an answer), and how strongly."""

    id: str
    domain: str
    level: int
    kind: str
    theme: str
    plain: str
    source: str
    strength: float  # 1.0 for a keyword pattern or an answer; the similarity for a match by meaning
    via: str  # "pattern" | "meaning" | "screen" | "answer"
    possible: bool = False  # close to, but under, the match threshold

    @classmethod
    def of(cls, ind: Indicator, strength: float, via: str, possible: bool = False) -> "Signal":
        return cls(ind.id, ind.domain, ind.level, ind.kind, ind.theme, ind.plain, ind.source, strength, via, possible)


@dataclass
class Answers:
    age: int | None = None
    speaker: str | None = None
    services_involved: bool | None = None
    how_long: str | None = None
    needs_count: int | None = None
    harm: str | None = None
    support: str | None = None

    @property
    def not_enough(self) -> bool:
        """Services are involved and what they do is not enough (asking for more help implies it)."""
        if self.support is not None:
            return self.support == "not_enough"
        return bool(self.services_involved)

    @property
    def long_standing(self) -> bool:
        return self.how_long in ("months", "years")


@dataclass
class Decision:
    shared_level: int
    confidence: float
    torn: tuple[int, int] | None
    rules: list[str] = field(default_factory=list)
    signals: list[Signal] = field(default_factory=list)
    doubt: bool = False  # the safeguarding screen was unsure: ask about harm first


# ------------------------------------------------------------------------------------------ reading
def find_by_pattern(bank: Bank, sentences: list[str], age: int | None) -> dict[str, Signal]:
    found: dict[str, Signal] = {}
    # one search over the whole text first (a long message has thousands of sentences, most indicators match
    # none); the separator stops a look-ahead or look-behind from seeing the next or previous sentence
    whole = "\n\x1f\n".join(sentences)
    for ind in bank.indicators:
        if not ind.compiled or not ind.applies_to_age(age):
            continue
        if not any(pattern.search(whole) for pattern in ind.compiled):
            continue
        for sentence in sentences:
            if ind.compiled_unless and any(u.search(sentence) for u in ind.compiled_unless):
                continue
            hit = False
            for pattern in ind.compiled:
                for match in pattern.finditer(sentence):
                    if not T.negated(sentence, match.start()):
                        hit = True
                        break
                if hit:
                    break
            if hit:
                found[ind.id] = Signal.of(ind, 1.0, "pattern")
                break
    return found


class MeaningIndex:
    """Exemplar sentences embedded once per process (and cached on disk under $EARLYHELP_HOME)."""

    def __init__(self, bank: Bank):
        self.bank = bank
        self.owner = np.asarray(bank.exemplar_owner, dtype=np.int64)
        self.starts = np.flatnonzero(np.r_[True, self.owner[1:] != self.owner[:-1]]) if len(self.owner) else self.owner
        self.owners = self.owner[self.starts] if len(self.owner) else self.owner
        self.vectors = self._load_vectors()

    def _load_vectors(self) -> np.ndarray:
        from bot.embeddings import embed

        digest = hashlib.sha256("\n".join(["all-MiniLM-L6-v2", *self.bank.exemplars]).encode()).hexdigest()[:16]
        cache = None
        try:
            from bot.paths import home

            cache = home() / "cache" / f"triage-exemplars-{digest}.npy"
            if cache.exists():
                vectors = np.load(cache)
                if vectors.shape[0] == len(self.bank.exemplars):
                    return vectors
        except Exception:  # a broken cache is only a slower start
            log.warning("triage exemplar cache unreadable; re-embedding")
        vectors = embed(self.bank.exemplars)
        if cache is not None:
            try:
                cache.parent.mkdir(parents=True, exist_ok=True)
                tmp = cache.with_suffix(".tmp.npy")
                np.save(tmp, vectors)
                tmp.replace(cache)
            except OSError:
                log.warning("could not write the triage exemplar cache")
        return vectors

    def similarities(self, units: list[str]) -> np.ndarray:
        """units x indicators: for each unit, its best similarity to each indicator's exemplars (-1 if none)."""
        # The same sentences come back on every turn of a conversation (the concern, then the concern with
        # each answer), so the query cache of bot.embeddings serves all but the first.
        from bot.embeddings import embed_query

        sims = embed_query(units) @ self.vectors.T  # units x exemplars
        per = np.maximum.reduceat(sims, self.starts, axis=1)  # units x indicators-with-exemplars
        out = np.full((len(units), len(self.bank.indicators)), -1.0, dtype=np.float32)
        out[:, self.owners] = per
        return out


def find_by_meaning(
    bank: Bank, index: MeaningIndex, sentences: list[str], age: int | None
) -> dict[str, Signal]:
    settings = bank.settings
    units: list[str] = []
    quiet: list[bool] = []  # the unit says there is nothing wrong
    whole: list[str] = []  # the sentence each unit comes from (cue words are looked for in all of it)
    reassuring = [p for ind in bank.indicators if ind.kind == "protective" for p in ind.compiled]
    for sentence in sentences:
        for unit in dict.fromkeys([sentence, *T.clauses(sentence)]):
            units.append(unit[: settings.max_unit_chars])
            whole.append(sentence)
            # a sentence saying all is well: only everyday (level 1) matches count by meaning there
            quiet.append(bool(T.NOTHING_WRONG.search(unit)) or any(p.search(unit) for p in reassuring))
    if len(units) > settings.max_units:  # keep both ends of a very long text
        head = settings.max_units * 3 // 4
        keep = list(range(head)) + list(range(len(units) - (settings.max_units - head), len(units)))
        units = [units[i] for i in keep]
        quiet = [quiet[i] for i in keep]
        whole = [whole[i] for i in keep]
    if not units:
        return {}
    sims = index.similarities(units)
    eligible = np.array([ind.applies_to_age(age) for ind in bank.indicators])
    thresholds = np.array([settings.match_threshold[ind.level] for ind in bank.indicators], dtype=np.float32)
    found: dict[str, Signal] = {}
    anchors: dict[tuple[str, int], bool] = {}
    for row, calm, sentence in zip(sims, quiet, whole):
        row = np.where(eligible, row, -1.0)
        best = float(row.max())
        for i in np.flatnonzero(row >= best - settings.margin):
            ind = bank.indicators[i]
            s = float(row[i])
            if calm and ind.kind not in ("universal", "protective"):
                continue
            if ind.kind == "need" and ind.level >= 3:
                key = (ind.id, id(sentence))
                if key not in anchors:
                    anchors[key] = anchored(ind, sentence, settings) or not explained(bank, sentence, ind.level, age)
                if not anchors[key]:
                    # a loose likeness with nothing of the indicator's own words (nor any harm word) in a
                    # sentence that a lower need's own words already explain ("struggling with money") is
                    # that need, not this one: only a near paraphrase counts. A sentence nothing else
                    # explains keeps the likeness (when unsure, the higher level).
                    if s >= settings.unanchored_threshold[ind.level]:
                        sig = Signal.of(ind, s, "meaning")
                        old = found.get(ind.id)
                        if old is None or old.possible or s > old.strength:
                            found[ind.id] = sig
                    continue
            if s >= thresholds[i]:
                sig = Signal.of(ind, s, "meaning")
            elif ind.level == 4 and s >= thresholds[i] - settings.possible_band:
                sig = Signal.of(ind, s, "meaning", possible=True)
            else:
                continue
            old = found.get(ind.id)
            if old is None or (old.possible and not sig.possible) or (old.possible == sig.possible and s > old.strength):
                found[ind.id] = sig
    return found


def _cue_found(patterns: Iterable, sentence: str) -> bool:
    for pattern in patterns:
        for match in pattern.finditer(sentence):
            if not T.negated(sentence, match.start()):
                return True
    return False


def anchored(ind: Indicator, sentence: str, settings: Settings) -> bool:
    """Whether the sentence holds a word that anchors a match by meaning to this level-3/4 need: one of its
    own cues or, for level 4, a harm word (not negated: "no marks or bruises" anchors nothing)."""
    if _cue_found(ind.compiled_cues, sentence):
        return True
    return ind.level == 4 and _cue_found([settings.harm], sentence)


def explained(bank: Bank, sentence: str, below: int, age: int | None) -> bool:
    """Whether a lower-level need (or an everyday question) is said in so many words in the sentence: its
    keyword pattern matches, not negated, not cancelled by its ``unless``."""
    for ind in bank.indicators:
        if ind.level >= below or ind.kind not in ("need", "universal") or not ind.compiled:
            continue
        if not ind.applies_to_age(age) or any(u.search(sentence) for u in ind.compiled_unless):
            continue
        if _cue_found(ind.compiled, sentence):
            return True
    return False


def _by_classifier_only(result: Any) -> bool:
    """The screen escalated on its classifier's reading alone (a likeness of meaning, no cue of its bank)."""
    return bool(getattr(result, "by_meaning_only", False))


# the bank's level-4 indicators that say the same as each category of the safeguarding screen: their cues
# (with the harm words) anchor the screen's classifier-only readings (a category not listed: every cue)
SCREEN_INDICATORS = {
    "physical_abuse": ("physical_abuse", "injury_to_baby", "afraid_to_go_home", "parent_may_harm_child"),
    "sexual_abuse": ("sexual_abuse",),
    "emotional_abuse": ("emotional_abuse", "afraid_to_go_home"),
    "neglect": ("severe_neglect", "carer_incapacitated"),
    "domestic_abuse": ("domestic_abuse", "threats_to_kill_or_harm"),
    "self_harm": ("self_harm", "serious_self_harm"),
    "suicide": ("suicide_risk",),
    "online_grooming": ("online_grooming",),
    "child_sexual_exploitation": ("sexual_exploitation",),
    "child_criminal_exploitation": ("criminal_exploitation",),
    "missing": ("missing_from_home",),
    "forced_marriage": ("forced_marriage",),
    "honour_based_abuse": ("forced_marriage", "threats_to_kill_or_harm"),
    "fgm": ("fgm",),
    "radicalisation": ("radicalisation",),
    "trafficking": ("trafficking_and_slavery",),
}

SCREEN_PLAIN = {
    "physical_abuse": "a child may be being physically hurt",
    "sexual_abuse": "a child may be being sexually abused",
    "emotional_abuse": "a child may be being emotionally abused",
    "neglect": "a child's basic needs or safety may be being neglected",
    "domestic_abuse": "domestic abuse in the home",
    "self_harm": "a young person may be at risk of harming themselves",
    "suicide": "a young person may be thinking of ending their life",
    "online_grooming": "an adult may be grooming a child online",
    "child_sexual_exploitation": "a child may be being sexually exploited",
    "child_criminal_exploitation": "a child may be being criminally exploited",
    "missing": "a child has gone missing or run away",
    "forced_marriage": "a young person may be forced to marry",
    "honour_based_abuse": "a risk of so-called honour-based abuse",
    "fgm": "a girl may be at risk of female genital mutilation",
    "radicalisation": "a young person may be being drawn into extremism",
    "trafficking": "signs of trafficking or modern slavery",
}


def screen_signals(messages: list[str], bank: Bank | None = None, age: int | None = None) -> list[Signal]:
    """Level-4 signals from the safeguarding screen, when that module is installed.

    With the bank given, an escalation made by the screen's classifier alone, in a text with no harm word
    and no cue of the matching level-4 indicators, where every sentence already says a lower need in so
    many words ("we've been sofa surfing since the landlord sold the house"), is the screen's doubt (the
    level is not raised, the question about harm is asked first). A sentence nothing else explains keeps
    the escalation. The screen still escalates on its own
    wherever it is used (the chat shows its safeguarding reply); this is only the level of need."""
    try:
        from bot.safeguarding import screen
    except ImportError:
        return []
    try:
        result = screen("\n".join(messages))
    except Exception:  # the screen failing must never stop a level being given; our own bank still reads
        log.exception("safeguarding screen failed; triage continues on its own indicators")
        return []
    out: list[Signal] = []
    escalate = getattr(result, "escalate", False)
    if escalate and bank is not None and not getattr(result, "immediate_danger", False) and _by_classifier_only(result):
        text = "\n".join(messages)
        ids = {i for c in (getattr(result, "categories", None) or []) for i in SCREEN_INDICATORS.get(str(c), ("*",))}
        cues = [p for ind in bank.indicators if ind.level == 4 and ind.kind == "need" and (ind.id in ids or "*" in ids)
                for p in ind.compiled_cues]
        sentences = [x for x in T.sentences(messages) if T.has_letters(x)]
        if not _cue_found([bank.settings.harm, *cues], text) and sentences and all(
            explained(bank, x, 4, age) for x in sentences
        ):
            escalate = False
            result = type("Doubt", (), {"unsure": True})()
    if escalate:
        categories = list(getattr(result, "categories", None) or []) or ["significant_harm"]
        for category in categories:
            category = str(category)
            plain = SCREEN_PLAIN.get(category, "a sign that a child may be at risk of significant harm")
            out.append(Signal(f"safeguarding:{category}", "safeguarding", 4, "need", category, plain, "practice", 1.0, "screen"))
    elif getattr(result, "unsure", False):
        out.append(
            Signal("safeguarding:unsure", "safeguarding", 4, "need", "unsure",
                   "something that might be a safeguarding concern", "practice", 0.5, "screen", possible=True)
        )
    return out


# ------------------------------------------------------------------------------------------ deciding
def _strength_score(sig: Signal, settings: Settings) -> float:
    """0-1: how sure one signal is (a pattern or answer is sure; a match by meaning by its margin)."""
    if sig.via != "meaning":
        return 1.0
    over = sig.strength - settings.match_threshold[sig.level]
    return float(min(1.0, max(0.0, 0.35 + over / 0.2)))


def decide(signals: Iterable[Signal], answers: Answers, settings: Settings) -> Decision:
    """The shared level (1-4) from the signals found and the answers given, with the rules that applied."""
    signals = list(signals)
    firm = [s for s in signals if not s.possible]
    # The safeguarding screen's "unsure" is a doubt, not a reading: it does not set the level (the web app
    # screens every message itself and handles its own doubts); it makes the triage ask about harm first.
    doubt = any(s.possible and s.via == "screen" for s in signals) and answers.harm is None
    possible = [s for s in signals if s.possible and s.via != "screen"]
    rules: list[str] = []
    if answers.harm == "yes":
        firm.append(Signal("answer:harm", "safeguarding", 4, "need", "harm",
                           "you said someone has hurt the child or the child feels unsafe", "practice", 1.0, "answer"))
    if answers.harm == "no":
        possible = [s for s in possible if s.level < 4]
    if answers.harm == "unsure":  # unsure whether a child is hurt or unsafe: err upward, at low confidence
        possible.append(Signal("answer:harm_unsure", "safeguarding", 4, "need", "harm",
                               "you were not sure whether the child has been hurt or feels unsafe", "practice", 0.5,
                               "answer", possible=True))
    needs = [s for s in firm if s.kind == "need"]
    modifiers = {s.id for s in firm if s.kind == "modifier"}
    level = max((s.level for s in needs), default=1)
    from_rule = False

    if level < 4:
        themes = {s.theme for s in needs if s.level in (2, 3)}
        count = max(len(themes), answers.needs_count or 0)
        not_enough = answers.not_enough or "support_not_working" in modifiers
        long_standing = answers.long_standing or "long_standing" in modifiers
        if level < 3 and count >= settings.several_needs:
            level, from_rule = 3, True
            rules.append("several needs together usually need several services working together (level 3)")
        if level == 2 and not_enough:
            level, from_rule = 3, True
            rules.append("support is already in place but it is not enough, so the level goes up")
        elif level == 2 and long_standing and count >= 2:
            level, from_rule = 3, True
            rules.append("more than one need, going on for a long time, so the level goes up")
        if level == 1 and (count >= 2 or not_enough or long_standing) and (needs or count or signals):
            level, from_rule = 2, True
            rules.append("the need has lasted or the usual help has not been enough, so the level goes up")

    torn: tuple[int, int] | None = None
    higher = [s for s in possible if s.level > level]
    if higher:
        top = max(s.level for s in higher)
        torn = (level, top)
        rules.append(f"a sign of level {top} is possible but not certain: erring upward until it is clearer")
        level = top

    # confidence
    decisive = [s for s in firm if s.level == level and s.kind in ("need", "universal", "protective")]
    if torn:
        confidence = 0.4
    elif decisive and not from_rule:
        best = max(_strength_score(s, settings) for s in decisive)
        confidence = 0.55 + 0.35 * best + 0.05 * min(2, len(decisive) - 1)
    elif from_rule:
        confidence = 0.65 + 0.05 * min(2, len(rules) - 1)
    elif firm:
        confidence = 0.5
    else:
        confidence = 0.3
    if not torn and level == 2 and not from_rule:
        themes2 = {s.theme for s in firm if s.kind == "need" and s.level == 2}
        domains2 = {s.domain for s in firm if s.kind == "need" and s.level == 2}
        if len(themes2) == settings.several_needs - 1 and len(domains2) >= 2 and answers.needs_count is None:
            confidence = min(confidence, 0.55)  # near the 2/3 boundary
    if level == 1 and any(s.kind == "need" for s in signals):
        confidence = min(confidence, 0.55)
    if doubt and level < 4:
        confidence = min(confidence, settings.low_confidence - 0.05)
        rules.append("something said might point to harm: the question about harm settles it")
    return Decision(level, round(float(min(0.97, max(0.0, confidence))), 2), torn, rules, firm + higher, doubt and level < 4)


# ------------------------------------------------------------------------------------------ helpers
def reasons_for(decision: Decision) -> list[dict[str, Any]]:
    level = decision.shared_level
    chosen = [
        s for s in decision.signals
        if (s.kind in ("need", "modifier") and (level > 1 or s.level == 1))
        or (level == 1 and s.kind in ("universal", "protective"))
    ]
    if level > 1:
        chosen = [s for s in chosen if s.kind != "protective"]
    seen: dict[str, Signal] = {}
    for s in chosen:
        if s.id not in seen or s.strength > seen[s.id].strength:
            seen[s.id] = s
    ordered = sorted(seen.values(), key=lambda s: (DOMAIN_ORDER.index(s.domain), -s.level, -s.strength))
    return [{"domain": s.domain, "indicator": s.id, "level": s.level, "plain": s.plain, "source": s.source} for s in ordered]


def questions_for(decision: Decision, answers: Answers, bank: Bank, speaker: str | None) -> list[dict]:
    if decision.confidence >= bank.settings.low_confidence:
        return []
    level = decision.shared_level
    if decision.torn:  # torn between two levels (maybe not next to each other): the highest boundary first
        low, high = decision.torn
        boundaries = [(b - 1, b) for b in range(high, low, -1)]
    else:
        boundaries = {1: [(1, 2), (2, 3)], 2: [(2, 3), (1, 2)], 3: [(3, 4), (2, 3)], 4: [(3, 4)]}[level]
    if decision.doubt:
        boundaries = [(3, 4), *[b for b in boundaries if b != (3, 4)]]
    answered = {k for k, v in vars(answers).items() if v is not None}
    if answers.services_involved is not None:
        answered.add("support")
    out: list[dict] = []
    for low, high in boundaries:
        for q in bank.questions.values():
            if tuple(q.settles) == (low, high) and q.id not in answered and q.id not in [o["id"] for o in out]:
                out.append(q.render(speaker))
    return out[:2]
