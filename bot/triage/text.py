"""Reading what the person said: normalising, splitting into sentences and clauses, and telling whether a
message is English enough (and long enough) to judge at all."""
from __future__ import annotations

import re
import unicodedata

_QUOTES = str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-"})
_SENTENCE = re.compile(r"(?<=[.!?])\s+|[\r\n]+|;\s*|(?<=[.!?])(?=[A-Z])")
_CLAUSE = re.compile(r",\s*|\s+(?:but|and|so|because|although|though|while|plus|also)\s+", re.IGNORECASE)
_WORD = re.compile(r"[a-z]+(?:'[a-z]+)?")
_LETTER = re.compile(r"[^\W\d_]")
# negation just before a cue ("no concerns about", "he doesn't", "never"): the cue is not asserted
NEGATION = re.compile(
    r"\b(no|not|never|without|denies|denied|nor|isn't|aren't|wasn't|weren't|doesn't|don't|didn't|hasn't|haven't|"
    r"nothing|isnt|doesnt|dont|didnt|hasnt|havent|wasnt)\b",
    re.IGNORECASE,
)
# a whole sentence saying there is nothing to worry about
NOTHING_WRONG = re.compile(
    r"\bno (other |further |additional )?(concerns?|worries|problems|issues|signs?|evidence|history|indication)\b|"
    r"\bnot (worried|concerned)\b|\bnothing (to worry|wrong)\b|\bno (\w+ )?(violence|abuse|injuries|marks|bruises|safeguarding)\b",
    re.IGNORECASE,
)


def normalise(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    return text.replace("\x00", " ")


def sentences(messages: list[str]) -> list[str]:
    """Every sentence of every message, in order; a cue never spans two messages or two sentences."""
    out: list[str] = []
    for message in messages:
        for part in _SENTENCE.split(normalise(message)):
            part = part.strip(" \t.!?,")
            if part:
                out.append(part)
    return out


def clauses(sentence: str, min_words: int = 8) -> list[str]:
    """The parts of a longer sentence, each compared on its own (a short sentence is one thought)."""
    if len(sentence.split()) < min_words:
        return []
    return [c.strip() for c in _CLAUSE.split(sentence) if c and len(c.split()) >= 3]


def words(text: str) -> list[str]:
    return _WORD.findall(normalise(text).lower())


def has_letters(text: str) -> bool:
    return bool(_LETTER.search(text))


def english_share(tokens: list[str], vocabulary: frozenset[str]) -> float:
    """The share of words that are common English (or text-speak, or in the indicator bank)."""
    if not tokens:
        return 0.0
    known = 0
    for token in tokens:
        bare = token.replace("'", "")
        if token in vocabulary or bare in vocabulary or _english_stem(token) in vocabulary:
            known += 1
    return known / len(tokens)


def _english_stem(token: str) -> str:
    for suffix in ("ing", "ed", "es", "s", "ly", "er"):
        if token.endswith(suffix) and len(token) - len(suffix) >= 3:
            return token[: -len(suffix)]
    return token


def negated(sentence: str, start: int) -> bool:
    """Whether a negation stands among the three words before position ``start`` of the sentence."""
    before = sentence[max(0, start - 40) : start]
    tail = " ".join(before.split()[-3:])
    return bool(NEGATION.search(tail))
