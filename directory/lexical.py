"""Lexical (word) search behind one small interface.

On SQLite the FTS5 table that the store keeps in step with every write answers with its BM25 ranking.
Elsewhere (PostgreSQL has no FTS5) a pure-Python BM25 over the same service texts, built in memory when
the index loads, gives the same kind of answer. Both see the same query terms: words minus stop words.
"""
from __future__ import annotations

import math
import re
from collections import Counter, defaultdict
from typing import Protocol, Sequence

from sqlalchemy import Engine, text

_WORD = re.compile(r"[a-z0-9]+")
MAX_TERMS = 24

STOP_WORDS = frozenset(
    """a about above after again against all am an and any are aren as at be because been before being below
    between both but by can cannot could couldn did didn do does doesn doing don down during each few for from
    further had hadn has hasn have haven having he her here hers herself him himself his how i if in into is
    isn it its itself just let me more most my myself no nor not now of off on once only or other ought our
    ours ourselves out over own same shan she should shouldn so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was wasn we were weren what
    when where which while who whom why will with won would wouldn you your yours yourself yourselves yet
    s t d ll m re ve im ive id dont cant wont isnt arent doesnt didnt hes shes theyre were whats thats really
    get got getting please thanks thank hi hello anyone someone something know need needs want wants like
    think looking look find tell give any one also still much many lot lots bit very""".split()
)


def terms(query: str) -> list[str]:
    """The distinct search words of a query, in order, at most ``MAX_TERMS``."""
    words = [w for w in _WORD.findall(query.lower().replace("'", "")) if w not in STOP_WORDS and len(w) > 1]
    return list(dict.fromkeys(words))[:MAX_TERMS]


def stem(word: str) -> str:
    """A light suffix stripper, close enough to Porter's for matching plural and verb forms."""
    for suffix, keep in (("ies", "y"), ("ing", ""), ("ers", ""), ("ed", ""), ("es", ""), ("er", ""), ("ly", ""), ("s", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 3:
            return word[: -len(suffix)] + keep
    return word


class Lexical(Protocol):
    name: str

    def search(self, words: Sequence[str], limit: int) -> list[tuple[str, float]]:
        """(service id, score) best first; higher score is better."""


class Fts5Lexical:
    """SQLite FTS5 with its built-in BM25; the name column weighs more than the body.

    BM25 ranking costs time in proportion to the rows the query words match, so the words are taken
    rarest first (by document frequency, looked up with FTS5's own stemmer) while the rows they match stay
    within ``POSTINGS_BUDGET``. A small directory keeps every word; in a very large one a word found in
    tens of thousands of services ("help", "family") is left to the dense half, which reads meaning, and
    a query made only of such words is not run lexically at all. Words no service contains are dropped.
    """

    name = "sqlite-fts5"
    POSTINGS_BUDGET = 1_000
    STEM_CACHE_SIZE = 20_000  # words whose FTS5 stems are remembered (a query's words recur across searches)
    _TOKENIZE = "tokenize = 'porter unicode61 remove_diacritics 2'"  # the same as the service_fts table
    _SQL = ("SELECT service_id, bm25(service_fts, 0.0, 3.0, 1.0) AS score FROM service_fts "
            "WHERE service_fts MATCH ? ORDER BY score LIMIT ?")

    def __init__(self, engine: Engine, reader=None):
        """``reader``: a ``directory.index.SqliteReader`` on the same file, for the query itself (no pool
        checkout or statement compile per search); without one, the query goes through ``engine``."""
        import sqlite3
        import threading

        self.engine = engine
        self.reader = reader
        self._stem_cache: dict[str, list[str]] = {}
        with engine.connect() as conn:
            conn.execute(text("CREATE VIRTUAL TABLE IF NOT EXISTS temp.service_fts_vocab USING fts5vocab(main, 'service_fts', 'row')"))
            self.df = {term: doc for term, doc in conn.execute(text("SELECT term, doc FROM temp.service_fts_vocab"))}
        self._stemmer = sqlite3.connect(":memory:", check_same_thread=False)
        self._stemmer.execute(f"CREATE VIRTUAL TABLE q USING fts5(w, {self._TOKENIZE})")
        self._stemmer.execute("CREATE VIRTUAL TABLE qv USING fts5vocab(q, 'instance')")
        self._lock = threading.Lock()

    def stems(self, words: Sequence[str]) -> list[list[str]]:
        """Each word's stems as FTS5 indexes them (a word such as 'e-mail' may give two); remembered."""
        with self._lock:
            new = [w for w in dict.fromkeys(words) if w not in self._stem_cache]
            if new:
                cur = self._stemmer.cursor()
                cur.executemany("INSERT INTO q (rowid, w) VALUES (?, ?)", [(i + 1, w) for i, w in enumerate(new)])
                found: dict[int, list[str]] = defaultdict(list)
                for term, doc in cur.execute("SELECT term, doc FROM qv ORDER BY doc, offset"):
                    found[doc].append(term)
                cur.execute("DELETE FROM q")
                if len(self._stem_cache) + len(new) > self.STEM_CACHE_SIZE:
                    self._stem_cache.clear()
                for i, w in enumerate(new):
                    self._stem_cache[w] = found.get(i + 1, [])
            return [self._stem_cache[w] for w in words]

    def choose(self, words: Sequence[str]) -> list[str]:
        """The words worth matching, within the postings budget, rarest first."""
        costed = []
        for word, stems in zip(words, self.stems(words)):
            df = max((self.df.get(s, 0) for s in stems), default=0)
            if df:
                costed.append((df, word))
        chosen, total = [], 0
        for df, word in sorted(costed):
            if total + df > self.POSTINGS_BUDGET:
                break
            chosen.append(word)
            total += df
        return chosen

    def search(self, words: Sequence[str], limit: int) -> list[tuple[str, float]]:
        words = self.choose(words) if words else []
        if not words:
            return []
        match = " OR ".join(f'"{w}"' for w in words)
        if self.reader is not None:
            rows = self.reader.rows(self._SQL, (match, limit))
        else:
            with self.engine.connect() as conn:
                rows = conn.exec_driver_sql(self._SQL, (match, limit)).all()
        return [(row[0], -float(row[1])) for row in rows]


class PythonBM25:
    """Okapi BM25 (k1=1.2, b=0.75) over an in-memory inverted index; the portable fallback."""

    name = "python-bm25"

    def __init__(self, docs: Sequence[tuple[str, str, str]], k1: float = 1.2, b: float = 0.75, name_weight: int = 3):
        self.k1, self.b = k1, b
        self.ids: list[str] = []
        self.postings: dict[str, list[tuple[int, int]]] = defaultdict(list)
        lengths: list[int] = []
        for doc_id, name, body in docs:
            tokens = [stem(w) for w in _WORD.findall(name.lower())] * name_weight + [stem(w) for w in _WORD.findall(body.lower())]
            row = len(self.ids)
            self.ids.append(doc_id)
            lengths.append(len(tokens))
            for term, freq in Counter(tokens).items():
                self.postings[term].append((row, freq))
        self.lengths = lengths
        self.avg = (sum(lengths) / len(lengths)) if lengths else 1.0

    def search(self, words: Sequence[str], limit: int) -> list[tuple[str, float]]:
        n = len(self.ids)
        scores: dict[int, float] = defaultdict(float)
        for word in dict.fromkeys(stem(w) for w in words):
            postings = self.postings.get(word)
            if not postings:
                continue
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for row, freq in postings:
                norm = self.k1 * (1 - self.b + self.b * self.lengths[row] / self.avg)
                scores[row] += idf * freq * (self.k1 + 1) / (freq + norm)
        best = sorted(scores.items(), key=lambda item: -item[1])[:limit]
        return [(self.ids[row], score) for row, score in best]
