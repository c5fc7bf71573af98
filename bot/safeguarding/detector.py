"""Screen one message for safeguarding cues.

The method (chosen on the dev set, see ``bench/safeguarding.py``):

1. Normalise: lower case, apostrophes dropped, text-speak spelled out ("n" -> "and", "kms" -> "kill
   myself", "hittin" -> "hitting"), runs of letters shortened.
2. Blank out idioms ("this homework is killing me", "I could murder a pizza", "mum will kill me if I'm
   late") so they cannot match, while a real cue elsewhere in the message still can. The classifier (step
   5) reads the message with each idiom's whole clause blanked (``mask_idioms_for_meaning``).
3. Match the curated cue bank (``knowledge/safeguarding/cues.yml``); each hit is then read in context:
   - negated ("nobody hurts me", "he has never hit her") -> ignored, unless the negation is about
     something else ("nobody knows he hits me", "he doesn't stop hitting me");
   - a question about the topic ("what are the signs of grooming?") -> unsure;
   - told as long ago ("years ago", "when I was little") and settled ("he left", "we're safe now") ->
     ignored; long ago but not said to be settled -> unsure; anything still, again or recent -> escalate;
   - a weak cue (a secret, fear without a stated harm) -> unsure.
4. Immediate danger: a cue that is itself immediate (weapon, threat to kill, overdose taken, young child
   alone, child missing now ...) or any cue plus a "now" marker ("right now", "he's still in the house",
   "call 999").
5. By meaning (``bot.safeguarding.classifier``, on by default): a message in which the cue bank found
   nothing at all (no cue, nothing negated or settled) is embedded and scored by logistic-regression
   heads trained on the labelled development set: a high score escalates, a middling one asks one gentle
   safety question. For any escalation the ``immediate`` head can add immediate danger (with a lower bar,
   ``immediate_after_cue``, when the cue bank itself escalated). A cue the bank dismissed (negated, settled,
   long ago) is never overridden; one it only wondered about (the gentle question) escalates when the
   model is very sure (``override_unsure``). If the model cannot load this step switches itself off and
   the cue bank carries on alone.

``Screener(weights=...)`` is the same screen with other classifier weights (a bench scoring heads trained
without one holdout); ``screen`` is the shipped one. ``screen`` never raises: on an internal fault it logs (without the text) and returns ``unsure`` so the
conversation asks a safety question rather than carrying on blind.
"""
from __future__ import annotations

import logging
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from bot.safeguarding.cues import CATEGORIES, CueBank, default_bank

log = logging.getLogger(__name__)

_APOSTROPHES = re.compile(r"['\u2018\u2019\u201b`\u00b4\u02bc]")
_JOINERS = re.compile(r"[-_/\\*~^+=|<>#@&]")
_REPEATS = re.compile(r"([a-z])\1{2,}")
_AGE = re.compile(r"\b(\d{1,2})\s*(?:yo|y o|yrs? old|years? old|yr|year)\b")
_WORD = re.compile(r"[a-z0-9]+")
_SENTENCE = re.compile(r"[.!?;\n]+")
_SPACES = re.compile(r"[ \t\r\f\v]+")
_CLAUSE_PUNCT = re.compile(r"[.!?;,:\n()\[\]\"]")

#: Beyond this many characters only the start and the end of a message are read (a message this long
#: is pasted text; cues are still found in the first and last parts). Keeps ``screen`` fast on anything.
MAX_CHARS = 20_000


@dataclass(frozen=True)
class Screening:
    """The outcome of screening one message. ``to_dict`` gives the JSON shape used by the CLI and web app."""

    escalate: bool = False
    immediate_danger: bool = False
    categories: list[str] = field(default_factory=list)
    matched: list[str] = field(default_factory=list)
    unsure: bool = False
    #: escalated on the classifier's reading alone, with no cue of the bank (the triage weighs such a
    #: reading against what else the message says); not part of the JSON shape
    by_meaning_only: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "escalate": self.escalate,
            "immediate_danger": self.immediate_danger,
            "categories": list(self.categories),
            "matched": list(self.matched),
            "unsure": self.unsure,
        }


@dataclass
class _Hit:
    cue_name: str
    categories: tuple[str, ...]
    status: str  # "escalate" or "unsure"
    immediate: bool
    note: str = ""


def normalise(text: str, bank: CueBank) -> str:
    text = unicodedata.normalize("NFKC", text)
    text = "".join(" " if unicodedata.category(ch)[0] == "C" and ch != "\n" else ch for ch in text)
    text = text.lower()
    text = _APOSTROPHES.sub("", text)
    text = _JOINERS.sub(" ", text)
    text = _REPEATS.sub(r"\1\1", text)
    text = _AGE.sub(r"\1 year old", text)
    text = bank.dropped_g.sub(lambda m: m.group(1) + "ing", text)
    spellings = bank.spellings
    text = _WORD.sub(lambda m: spellings.get(m.group(0), m.group(0)), text)
    return _SPACES.sub(" ", text)


def _mask_idioms(text: str, bank: CueBank) -> str:
    for idiom in bank.idioms:
        text = idiom.sub(lambda m: " " * (m.end() - m.start()), text)
    return text


def mask_idioms_for_meaning(text: str, bank: CueBank) -> str:
    """What the classifier by meaning reads: each idiom blanked together with the rest of its clause.

    Blanking the idiom alone leaves its clause's other words ("emptying the dishwasher every night ...
    according to my 12 year old") to be read by meaning as what the idiom was about. So the words around
    an idiom, at most ``idiom_clause_words`` each side, are blanked too, but never past punctuation
    ("this homework is killing me, my step dad hits me") or a stop that starts something new ("he",
    "she", "also", "my step dad" ...): what sits beside an idiom is still read. ("and" alone is no stop:
    "I could run off to the Maldives and never come back" is one idiom.)
    """
    spans: list[tuple[int, int]] = []
    for idiom in bank.idioms:
        found = [m.span() for m in idiom.finditer(text) if m.end() > m.start()]
        if found:
            spans += found
            text = idiom.sub(lambda m: " " * (m.end() - m.start()), text)
    n = bank.idiom_clause_words
    if not spans or n <= 0:
        return text
    chars = list(text)
    for a, b in spans:
        # left: back to the clause start or the end of the last stop, at most n words
        lo = max(0, a - 200)
        left = lo
        for m in _CLAUSE_PUNCT.finditer(text, lo, a):
            left = m.end()
        for m in bank.idiom_clause_stops.finditer(text, left, a):
            left = m.end()
        words = list(_WORD.finditer(text, left, a))
        if len(words) > n:
            left = words[-n].start()
        # right: on to the next clause break or stop, at most n words
        hi = min(len(text), b + 200)
        right = hi
        for m in (_CLAUSE_PUNCT.search(text, b, hi), bank.idiom_clause_stops.search(text, b, hi)):
            if m:
                right = min(right, m.start())
        words = list(_WORD.finditer(text, b, right))
        if len(words) > n:
            right = words[n - 1].end()
        for i in range(left, a):
            chars[i] = " "
        for i in range(b, right):
            chars[i] = " "
    return "".join(chars)


def _clause_start(text: str, pos: int, bank: CueBank) -> int:
    start = 0
    lo = max(0, pos - 200)
    for m in bank.clause_breaks.finditer(text, lo, pos):
        start = m.end()
    return max(start, lo)


_OR_BEFORE = re.compile(r"\b(?:or|nor)\s*$")


def _negated(text: str, start: int, bank: CueBank, window_words: int, depth: int = 0) -> bool:
    cs = _clause_start(text, start, bank)
    if depth < 2 and len(text[cs:start].split()) <= 2 and not _negated_in(text[cs:start], bank, window_words):
        # a cue right after "or"/"nor" shares the negation of the clause before ("nobody hits me or hurts me")
        joined = _OR_BEFORE.search(text, max(0, cs - 8), cs)
        return bool(joined) and _negated(text, joined.start(), bank, window_words, depth + 1)
    return _negated_in(text[cs:start], bank, window_words)


def _negated_in(clause: str, bank: CueBank, window_words: int) -> bool:
    # words that look like negators but are not ("when i tell him no he ...", "no joke, he ...")
    clause = bank.negation_ignored.sub(" ", clause)
    words = clause.split()
    window = " ".join(words[-window_words:]) if words else ""
    if not window:
        return False
    last = None
    for m in bank.negators.finditer(window):
        last = m
    if last is None:
        return False
    between = window[last.end() :]
    return not bank.negation_resets.search(between)


def _sentence_bounds(text: str, pos: int) -> tuple[int, int, int]:
    """(start, end, end of the following sentence) of the sentence holding ``pos``."""
    start = 0
    for m in _SENTENCE.finditer(text, max(0, pos - 400), pos):
        start = m.end()
    m = _SENTENCE.search(text, pos)
    end = m.start() if m else len(text)
    m2 = _SENTENCE.search(text, m.end()) if m else None
    after = (m2.start() if m2 else len(text)) if m else len(text)
    return start, end, min(after, end + 400)


def _time_status(text: str, start: int, end: int, bank: CueBank) -> str:
    """'current', 'resolved' (long ago or past, and settled) or 'distant' (long ago, not said to be settled)."""
    s0, s1, s2 = _sentence_bounds(text, start)
    sentence = text[s0:s1]
    # What settles it may be said in the same sentence or the next one.
    context = text[s0:s2]
    resolved_spans = [m.span() for m in bank.resolved.finditer(context)]
    if resolved_spans:
        # "he is still in prison" is settled, not ongoing: read "ongoing" outside the settling words.
        pieces, last = [], 0
        for a, b in resolved_spans:
            pieces.append(context[last:a])
            last = b
        pieces.append(context[last:])
        ongoing = bool(bank.ongoing.search(" ".join(pieces)))
    else:
        ongoing = bool(bank.ongoing.search(sentence))
    if ongoing:
        return "current"
    distant = bool(bank.distant_past.search(sentence))
    if resolved_spans:
        past = distant or bool(bank.past_tense.search(text[max(s0, start - 60) : end]))
        if past:
            return "resolved"
    return "distant" if distant else "current"


def _screen(text: str, bank: CueBank) -> tuple[Screening, bool]:
    """The screening, and whether a cue was found but dismissed (negated, idiom-free but settled)."""
    if len(text) > MAX_CHARS:
        half = MAX_CHARS // 2
        text = text[:half] + "\n" + text[-half:]
    norm = normalise(text, bank)
    if not norm.strip():
        return Screening(), False
    masked = _mask_idioms(norm, bank)

    hits: list[_Hit] = []
    dismissed = False
    for cue in bank.cues:
        if cue.requires and not all(r.search(masked) for r in cue.requires):
            continue
        if cue.unless and any(u.search(masked) for u in cue.unless):
            continue
        for m in cue.pattern.finditer(masked):
            if m.end() == m.start():
                continue
            # Danger-now cues are negated only by words right before them ("he hasn't got a knife"), so
            # a run-on message ("landlord wont fix it call 999 he has a knife") is not misread.
            window = min(3, bank.negation_window_words) if cue.immediate else bank.negation_window_words
            if _negated(masked, m.start(), bank, window):
                # "it's not like he hits me, he just ...": the negation is about this cue only; when a
                # contrast follows ("just", "but", "only"), what comes after is still read (by the
                # other cues and by the classifier), so this negation does not dismiss the message
                if not bank.negation_contrast.search(masked, m.end(), m.end() + 80):
                    dismissed = True
                continue
            status, note = ("escalate", "") if cue.strong else ("unsure", "")
            immediate = cue.immediate
            if not immediate:
                s0, s1, _ = _sentence_bounds(masked, m.start())
                if bank.info_question.search(masked[s0:s1]) and not bank.info_disclosed.search(
                        masked[:s0] + " " + masked[s1:]):
                    # a question about the topic, unless another sentence says it happens here
                    # ("is it normal to shake a baby? my partner does it")
                    status, note = "unsure", "asked about"
                else:
                    when = _time_status(masked, m.start(), m.end(), bank)
                    if when == "resolved":
                        dismissed = True
                        continue
                    if when == "distant":
                        status, note = "unsure", "long ago"
            hits.append(_Hit(cue.name, cue.categories, status, immediate and status == "escalate", note))
            break  # one hit per cue is enough

    # Immediate danger from "now" markers (anywhere in the message) on any escalating cue.
    if any(h.status == "escalate" for h in hits) and bank.immediate_markers.search(masked):
        for h in hits:
            if h.status == "escalate" and not set(h.categories) <= bank.immediate_excluded:
                h.immediate = True

    escalating = [h for h in hits if h.status == "escalate"]
    relevant = escalating or [h for h in hits if h.status == "unsure"]
    cats: set[str] = {c for h in relevant for c in h.categories}
    for rule in bank.reclassify:
        if rule.when_category in cats and rule.pattern.search(masked):
            cats.add(rule.add)
    immediate_cats = {c for h in escalating if h.immediate for c in h.categories}
    if immediate_cats and "domestic_abuse" in cats and "physical_abuse" in immediate_cats:
        immediate_cats.add("domestic_abuse")
    order = {c: i for i, c in enumerate(bank.order)}
    categories = sorted(cats, key=lambda c: (c not in immediate_cats, order.get(c, 99)))

    matched: list[str] = []
    for h in sorted(relevant, key=lambda h: (not h.immediate, min(order.get(c, 99) for c in h.categories))):
        label = f"{h.cue_name} ({h.note})" if h.note else h.cue_name
        if label not in matched:
            matched.append(label)

    escalate = bool(escalating)
    return (Screening(
        escalate=escalate,
        immediate_danger=escalate and any(h.immediate for h in escalating),
        categories=[c for c in categories if c in CATEGORIES],
        matched=matched,
        unsure=not escalate and bool(hits),
    ), dismissed)


def _by_meaning(text: str, result: Screening, dismissed: bool, bank: CueBank, weights: Any = None,
                embed: Any = None) -> Screening:
    """Add what the classifier sees to the cue bank's result (see step 5 of the module docstring)."""
    from bot.safeguarding import classifier

    if dismissed or result.immediate_danger or not classifier.enabled():
        return result
    if weights is None and embed is None:
        prediction = classifier.predict(text)
    else:
        prediction = classifier.predict(text, weights, embed=embed)
    if prediction is None:
        return result
    weights = weights or classifier.default_weights()
    now_words = "close in meaning to danger happening now"
    if result.escalate:
        if prediction.p_immediate >= weights.t_immediate_after_cue:
            return Screening(escalate=True, immediate_danger=True, categories=result.categories,
                             matched=[*result.matched, now_words], unsure=False)
        return result
    order = {c: i for i, c in enumerate(bank.order)}
    cats = sorted(prediction.categories, key=lambda c: order.get(c, 99))
    label = bank.labels.get(prediction.categories[0], prediction.categories[0]).lower()
    masked = _mask_idioms(normalise(text[:MAX_CHARS], bank), bank)
    if result.unsure:
        # a weak cue the model is confident about escalates; otherwise the gentle question stands
        # (a question about the topic, or something long ago, keeps its question: those readings are deliberate)
        deliberate = any(m.endswith(("(asked about)", "(long ago)")) for m in result.matched)
        if deliberate or prediction.p_escalate < weights.t_override_unsure:
            return result
        cats = list(result.categories) or cats
        now = prediction.p_immediate >= weights.t_immediate or (
            bool(bank.immediate_markers.search(masked)) and not set(cats) <= bank.immediate_excluded)
        return Screening(escalate=True, immediate_danger=now, categories=cats,
                         matched=[*result.matched, f"close in meaning to {label}"] + ([now_words] if now else []),
                         unsure=False)
    if prediction.p_escalate >= weights.t_escalate:
        now = prediction.p_immediate >= weights.t_immediate or (
            bool(bank.immediate_markers.search(masked)) and not set(cats) <= bank.immediate_excluded)
        matched = [f"close in meaning to {label}"] + ([now_words] if now else [])
        return Screening(escalate=True, immediate_danger=now, categories=cats, matched=matched, unsure=False,
                         by_meaning_only=True)
    if prediction.p_escalate >= weights.t_unsure:
        return Screening(unsure=True, categories=cats, matched=[f"possibly {label}"])
    return result


class Screener:
    """A screen with its own classifier weights (and, optionally, its own embedding function).

    ``screen(text)`` is ``Screener()(text)``: the shipped cue bank and the shipped weights. A bench or a
    test that scores with other weights (heads trained without one holdout, other thresholds) makes
    ``Screener(weights=...)`` instead of changing the module; ``embed`` (texts -> unit vectors) lets it
    reuse vectors it has already computed. ``bank`` defaults to the shipped cue bank.
    """

    def __init__(self, weights: Any = None, *, bank: CueBank | None = None, embed: Any = None) -> None:
        self.weights = weights
        self.bank = bank
        self.embed = embed

    def __call__(self, text: str) -> Screening:
        """Screen one message. Never raises; see the module docstring for what the fields mean."""
        try:
            if not isinstance(text, str):
                text = "" if text is None else str(text)
            bank = self.bank or default_bank()
            result, dismissed = _screen(text, bank)
            if not text.strip():
                return result
            return _by_meaning(text, result, dismissed, bank, self.weights, self.embed)
        except Exception:  # noqa: BLE001 - screening must never take the conversation down
            log.exception("safeguarding screen failed (message not logged)")
            return Screening(unsure=True, matched=["screening failed; ask a safety question"])


_SHIPPED = Screener()


def screen(text: str) -> Screening:
    """Screen one message with the shipped cue bank and weights. Never raises; see the module docstring."""
    return _SHIPPED(text)
