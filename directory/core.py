"""The family information directory: one object for search, import, export and lookup.

``Directory.open()`` opens (and migrates) the store, seeds it from ``knowledge/directory`` the first
time (and again whenever those files change), and loads the search index lazily on first search. The
embedding model is loaded once per process (``bot.embeddings``).
"""
from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
from functools import lru_cache
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from sqlalchemy import Engine, select, text, update

from bot.errors import BadInput
from bot.paths import home, knowledge_dir
from directory import schema as t
from directory import store
from directory.feeds import Problem, RawRecord, read_path
from directory.hours import NOT_STATED, describe, local_moment, open_at
from directory.index import (Catalog, SqliteReader, area_bit, audience_bit, category_bit, dense_search, index_dir, load_catalog,
                             one_blas_thread, sqlite_path)
from directory.lexical import stem, terms
from directory import quality
from directory.records import RecordError, Service, service_from_oruk, service_to_oruk
from directory.sanitise import clean_control
from directory.vocab import (AUDIENCES, CATEGORIES, MAX_AGE, MAX_K, MAX_QUERY_CHARS, NATIONAL, SELF_CONTACT_MIN_AGE, check_area,
                             implied_ages, known_area_ids)

log = logging.getLogger(__name__)

AREA_NAMES = {
    "buckinghamshire": "Buckinghamshire",
    "bath-and-north-east-somerset": "Bath and North East Somerset",
    "gloucestershire": "Gloucestershire",
    "north-lincolnshire": "North Lincolnshire",
}

# Fusion, chosen on the development query set (bench/directory.py prints the comparison).
RRF_K = 60
CANDIDATES = 100
LEXICAL_CUTOFF = 0.3  # lexical hits scoring under this share of the best one only matched common words
LEXICAL_WEIGHT = 1.0
DENSE_WEIGHT = 1.0
LOCAL_BONUS = 0.0015  # about six ranks near the top: a local service wins a near-tie, not a rout
LOCAL_FIT_RANK = 10
LOCAL_FIT_SIMILARITY = 0.08
AGE_BONUS = 0.0005  # a service whose stated ages include the child's (see rank)
EARLY_YEARS_MAX_AGE = 5  # the early_years category is for under-fives
MAX_PAIRS_SHOWN = 20  # near-duplicate pairs listed in an import's answer (all are in the report file)
SELF_FIT_SIMILARITY = 0.08  # how close to the best meaning a self-contact service must be to count a shared word
SELF_CLEAR_SIMILARITY = 0.35  # ... and, sharing no word with the query, how close in its own right (see _rank)
WEAK_SIMILARITY = 0.3  # below this, with no query word in common, a result is marked ``weak_match``


def area_label(area_id: str) -> str:
    return AREA_NAMES.get(area_id, area_id.replace("-", " ").title())


def _clean_query(query: object) -> str:
    if not isinstance(query, str):
        raise BadInput(f"the search text must be text, got {type(query).__name__}")
    text = " ".join(clean_control(query[: MAX_QUERY_CHARS * 4]).split())[:MAX_QUERY_CHARS]
    if not text:
        raise BadInput("the search text is empty: say in a few words what help you are looking for")
    return text


def _check_age(age: object) -> int | None:
    if age is None:
        return None
    if isinstance(age, bool) or not isinstance(age, int):
        raise BadInput(f"age must be a whole number of years from 0 to {MAX_AGE}, got {age!r}"[:200])
    if not 0 <= age <= MAX_AGE:
        raise BadInput(f"age {age} is out of range: give the child's age in years, from 0 to {MAX_AGE}")
    return age


def _check_k(k: object) -> int:
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise BadInput(f"k (how many results) must be a whole number from 1 to {MAX_K}, got {k!r}"[:200])
    return k


def _who_for(s: Service, ages: tuple[int, int] | None) -> str | None:
    """Who the service is for, in words, for a card: the feed's eligibility text, else the age range and
    the audiences it names."""
    if s.eligibility:
        return s.eligibility
    bits = [f"ages {ages[0]} to {ages[1]}"] if ages is not None else []
    bits += [AUDIENCES[a] for a in s.audiences if a in AUDIENCES]
    return "; ".join(bits) or None


@lru_cache(maxsize=4096)
def _haystack(search_text: str) -> frozenset[str]:
    """The words of a service's text and their stems, to say which query words it mentions."""
    lower = search_text.lower()
    raw = set(lower.replace("'", "").split()) | {w.strip(".,;:()!?\"") for w in lower.split()}
    return frozenset(stem(w) for w in raw)  # each distinct word stemmed once


def _on_behalf_bits() -> int:
    return audience_bit("family") | audience_bit("professional")


_pool: list = []  # [pid, executor]: a forked child makes its own (a pool's threads do not survive a fork)
_pool_lock = threading.Lock()


def _lexical_pool():
    """The worker threads that run a query's word search while its vector is computed."""
    from concurrent.futures import ThreadPoolExecutor
    import os

    with _pool_lock:
        if not _pool or _pool[0] != os.getpid():
            _pool[:] = [os.getpid(), ThreadPoolExecutor(max_workers=2, thread_name_prefix="directory-lexical")]
        return _pool[1]


def _check_exclude(exclude: object) -> frozenset[str]:
    if exclude is None:
        return frozenset()
    if isinstance(exclude, (str, bytes)) or not isinstance(exclude, (list, tuple, set, frozenset)):
        raise BadInput("exclude must be a list of service ids")
    if len(exclude) > 1000 or not all(isinstance(x, str) for x in exclude):
        raise BadInput("exclude must be a list of at most 1000 service ids")
    return frozenset(exclude)


def _check_category(category: object) -> str | None:
    if category is None:
        return None
    if not isinstance(category, str) or category.strip().lower() not in CATEGORIES:
        raise BadInput(f"unknown category {category!r}; categories: {', '.join(CATEGORIES)}"[:600])
    return category.strip().lower()


def _check_moment(open_now: object) -> dt.datetime | None:
    if open_now is False or open_now is None:
        return None
    if open_now is True:
        return dt.datetime.now(dt.timezone.utc)
    if isinstance(open_now, dt.datetime):
        return open_now
    if isinstance(open_now, str):
        try:
            return dt.datetime.fromisoformat(open_now.strip())
        except ValueError as err:
            raise BadInput(f"open_now must be true or an ISO date and time, got {open_now[:60]!r}") from err
    raise BadInput("open_now must be true, false or a date and time")


@contextlib.contextmanager
def _setup_lock(engine: Engine, url: str):
    """Serialise migration and seeding across processes: a file lock for SQLite, an advisory lock on PostgreSQL."""
    if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
        import fcntl

        with open(url[len("sqlite:///"):] + ".setup-lock", "a+") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)
    elif engine.dialect.name == "postgresql":
        with engine.connect() as conn:
            conn.execute(text("SELECT pg_advisory_lock(482231)"))
            try:
                yield
            finally:
                conn.execute(text("SELECT pg_advisory_unlock(482231)"))
    else:
        yield


class Directory:
    def __init__(self, engine: Engine, url: str, allow_synthetic: bool = False, lexical: str = "auto"):
        self.engine = engine
        self.url = url
        self.allow_synthetic = allow_synthetic
        self.lexical_mode = lexical
        self.fusion = "rrf"
        self._catalog: Catalog | None = None
        self._lock = threading.RLock()
        # SQLite: a plain connection for the reads every search makes (see SqliteReader); the store's
        # data_version when the catalog was last known current (None: ask the store for its generation)
        path = sqlite_path(url) if engine.dialect.name == "sqlite" else None
        self._reader: SqliteReader | None = SqliteReader(path) if path else None
        self._seen_version: tuple[int, int] | None = None

    # ---- opening --------------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str | None = None, seed: bool = True, allow_synthetic: bool = False, lexical: str = "auto") -> "Directory":
        """Open the directory at ``url`` (default: ``directory.db`` under $EARLYHELP_HOME, or DATABASE_URL).

        ``seed``: load ``knowledge/directory`` into it on first open, and again when those files change.
        ``allow_synthetic``: accept synthetic records (scale tests only; the real directory refuses them).
        ``lexical``: "auto" (FTS5 on SQLite, Python BM25 elsewhere), "fts5" or "python".
        """
        from bot.db import database_url, make_engine

        url = url or database_url("directory")
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            Path(url[len("sqlite:///"):]).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(url)
        directory = cls(engine, url, allow_synthetic=allow_synthetic, lexical=lexical)
        with _setup_lock(engine, url):  # two processes opening a new store at once must not both build it
            t.migrate(engine)
            if seed:
                directory.seed()
        return directory

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
        self.engine.dispose()

    def seed(self, folder: Path | None = None) -> dict[str, Any] | None:
        """Load the default content if it changed since last time; services dropped from it are removed."""
        folder = folder or knowledge_dir() / "directory"
        files = sorted(folder.glob("*.json"))
        digest = hashlib.sha256()
        for file in files:
            digest.update(file.name.encode() + b"\0" + file.read_bytes())
        seed_hash = digest.hexdigest()
        with self.engine.connect() as conn:
            if store.get_meta(conn, "seed_hash") == seed_hash:
                return None
        records: list[RawRecord] = []
        for file in files:
            from directory.feeds import read_oruk_json

            records += read_oruk_json(file)
        services, problems = self._validate(records, [], area=None)
        if problems:  # the shipped content must be perfect: fail loudly, never half-seed
            raise RuntimeError("knowledge/directory is invalid: " + "; ".join(p.as_dict()["message"] for p in problems[:5]))
        if any(s.synthetic for s in services):
            raise RuntimeError("knowledge/directory must not hold synthetic records")
        keep = {s.id for s in services}
        with self.engine.begin() as conn:
            stale = [
                sid for sid in conn.execute(select(t.service.c.id).where(t.service.c.origin == "knowledge")).scalars() if sid not in keep
            ]
            store.delete_services(conn, stale)
            report = self._write(conn, services, origin="knowledge")
            if stale and not (report["imported"] or report["updated"]):  # removals alone must also reach every index
                store.set_meta(conn, "generation", str(int(store.get_meta(conn, "generation") or 0) + 1))
            store.set_meta(conn, "seed_hash", seed_hash)
        report["removed"] = len(stale)
        report["quality"] = self._quality_report(services, [], "knowledge/directory")
        return report

    # ---- import / export ------------------------------------------------------------------------
    def _validate(self, records: Sequence[RawRecord], problems: list[Problem], area: str | None) -> tuple[list[Service], list[Problem]]:
        problems = list(problems)
        seen: dict[str, tuple[Service, str]] = {}
        for record in records:
            try:
                service = service_from_oruk(record.data, extra_area=area)
            except RecordError as err:
                problems.append(Problem(record.file, record.label, err.field, err.reason))
                continue
            except RecursionError:
                problems.append(Problem(record.file, record.label, "(record)", "nested too deeply"))
                continue
            except (TypeError, ValueError, AttributeError, KeyError) as err:  # a shape no rule foresaw: reject, never crash
                problems.append(Problem(record.file, record.label, "(record)", f"malformed record ({type(err).__name__})"))
                continue
            if service.synthetic and not self.allow_synthetic:
                problems.append(Problem(record.file, record.label, "synthetic",
                                        "synthetic records are for scale tests and never enter a real directory"))
                continue
            if service.id in seen:
                first, where = seen[service.id]
                if first.fingerprint() != service.fingerprint():
                    problems.append(Problem(record.file, record.label, "id",
                                            f"duplicate id {service.id!r}: {where} already gives a different service with this id"))
                continue
            seen[service.id] = (service, f"{record.file} {record.label}")
        return [s for s, _ in seen.values()], problems

    def _write(self, conn, services: Sequence[Service], origin: str) -> dict[str, Any]:
        before = store.existing_fingerprints(conn, [s.id for s in services])
        changed = [s for s in services if before.get(s.id) != s.fingerprint()]
        if origin == "import":
            owned = set(conn.execute(select(t.service.c.id).where(t.service.c.origin == "knowledge")).scalars())
            origins = {s.id: ("knowledge" if s.id in owned else "import") for s in changed}
        else:
            origins = {s.id: origin for s in changed}
        for kind in ("knowledge", "import"):
            store.write_services(conn, [s for s in changed if origins[s.id] == kind], origin=kind)
        if changed:
            generation = int(store.get_meta(conn, "generation") or 0) + 1
            store.set_meta(conn, "generation", str(generation))
        return {
            "imported": sum(1 for s in changed if s.id not in before),
            "updated": sum(1 for s in changed if s.id in before),
            "unchanged": len(services) - len(changed),
        }

    def import_path(self, path: str | Path, area: str | None = None) -> dict[str, Any]:
        """Import an ORUK JSON file, a folder of them, or an HSDS CSV package, in one transaction.

        Bad records are listed in ``rejected`` (file, record, field, reason) and left out; the rest are
        written together. ``area`` marks every imported service as covering that area.
        """
        area_id = check_area(area) if area is not None else None
        records, problems = read_path(Path(path))
        return self.import_records(records, problems, area_id, source=str(path))

    def import_records(self, records: Sequence[RawRecord], problems: Sequence[Problem] = (), area: str | None = None,
                       source: str = "(given)") -> dict[str, Any]:
        services, problems = self._validate(records, list(problems), area)
        with self._lock:
            with self.engine.begin() as conn:
                report = self._write(conn, services, origin="import")
            self._catalog = None if report["imported"] or report["updated"] else self._catalog
        report["rejected"] = [p.as_dict() for p in problems]
        report["quality"] = self._quality_report(services, report["rejected"], source)
        return report

    def _quality_report(self, services: Sequence[Service], rejected: Sequence[dict], source: str) -> dict[str, Any]:
        """Write this import's quality report under $EARLYHELP_HOME/directory-reports; its summary and path."""
        with self.engine.connect() as conn:
            rows = store.light_rows(conn)
        doc = quality.build_report(services, rejected, rows, source)
        try:
            path: str | None = str(quality.write_report(doc, home() / "directory-reports"))
        except OSError as err:  # the import itself has landed; a report that cannot be written is logged
            log.error("directory quality report not written: %s", err)
            path = None
        # the answer lists the first pairs; the report file has them all
        return {"report": path, **doc["summary"], "near_duplicates": doc["near_duplicates"][:MAX_PAIRS_SHOWN]}

    def quality_report(self, today: dt.date | None = None) -> dict[str, Any]:
        """The quality report of everything in the store now (nothing written)."""
        services = self.services()
        with self.engine.connect() as conn:
            rows = store.light_rows(conn)
        return quality.build_report(services, [], rows, "the whole directory", today=today)

    def import_services(self, docs: Sequence[dict], area: str | None = None, file: str = "(given)") -> dict[str, Any]:
        """Import ORUK service objects already in memory (the synthetic generator and tests use this)."""
        area_id = check_area(area) if area is not None else None
        records = [RawRecord(file, f"record {i + 1}", doc) for i, doc in enumerate(docs)]
        return self.import_records(records, (), area_id, source=file)

    def export_oruk(self) -> dict[str, Any]:
        """Every service as an ORUK /services page (``content`` plus paging fields)."""
        with self.engine.connect() as conn:
            services = store.read_services(conn)
        content = [service_to_oruk(s) for s in services]
        return {"totalElements": len(content), "totalPages": 1, "number": 1, "size": len(content), "first": True,
                "last": True, "content": content}

    def get(self, service_id: str) -> dict[str, Any] | None:
        if not isinstance(service_id, str):
            return None
        with self.engine.connect() as conn:
            found = store.read_services(conn, [service_id])
        return self._result(found[0], score=None, why=[]) if found else None

    def services(self) -> list[Service]:
        with self.engine.connect() as conn:
            return store.read_services(conn)

    def count(self) -> int:
        with self.engine.connect() as conn:
            return store.count(conn)

    # ---- index ----------------------------------------------------------------------------------
    def catalog(self) -> Catalog:
        """The search index, loaded on first use and reloaded when another process changed the store."""
        with self._lock:
            # Read before the generation: a commit after this point changes it, so it is seen next time.
            version = self._reader.data_version() if self._reader is not None else None
            if self._catalog is not None:
                if version is not None and version == self._seen_version:
                    return self._catalog  # nothing committed since the catalog was known current
                with self.engine.connect() as conn:
                    generation = store.get_meta(conn, "generation") or "0"
                if generation == self._catalog.generation:
                    self._seen_version = version
                    return self._catalog
            self._catalog = load_catalog(self.engine, index_dir(self.url, home()), lexical=self.lexical_mode, reader=self._reader)
            self._seen_version = version
            return self._catalog

    # ---- search ---------------------------------------------------------------------------------
    def search(
        self,
        query: str,
        area: str | None = None,
        age: int | None = None,
        k: int = 5,
        category: str | None = None,
        free_only: bool = False,
        open_now: bool | dt.datetime = False,
        send: bool = False,
        exclude: Sequence[str] = (),
    ) -> list[dict[str, Any]]:
        """The best ``k`` services for ``query``, best first, each saying why it matched.

        ``exclude``: service ids already shown (for "show more" and after "none of these fit").
        """
        return self.search_many([query], area=area, age=age, k=k, category=category, free_only=free_only,
                                open_now=open_now, send=send, exclude=exclude)[0]

    def search_many(self, queries: Sequence[str], **filters: Any) -> list[list[dict[str, Any]]]:
        """Several searches with the same filters; the queries are embedded in one batch."""
        from bot.embeddings import embed_query

        texts = [_clean_query(q) for q in queries]
        plan = self._plan(**filters)
        catalog = self.catalog()
        if len(texts) == 1:
            # One question (the conversation's case): the word search does not need the query's vector,
            # so it runs in a worker thread while the query is embedded (both release the GIL: SQLite
            # while it steps, ONNX Runtime while it runs), and the search waits for the longer of the two
            # instead of their sum.
            mask = self._mask(catalog, plan)
            pending = _lexical_pool().submit(self._lexical_hits, catalog, texts[0], mask)
            try:
                vector = embed_query(texts)[0]
            finally:
                hits = pending.result()
            return [self._search_one(catalog, texts[0], vector, plan, mask=mask, lexical_hits=hits)]
        vectors = embed_query(texts) if texts else np.zeros((0, 384), np.float32)
        return [self._search_one(catalog, text, vectors[i], plan) for i, text in enumerate(texts)]

    def search_requests(self, requests: Sequence[dict[str, Any]]) -> list[list[dict[str, Any]] | BadInput]:
        """Many searches with their own filters (batch mode): one embedding call, one answer or error each."""
        from bot.embeddings import embed_fast

        prepared: list[tuple[str, dict] | BadInput] = []
        for request in requests:
            try:
                filters = {key: request[key] for key in ("area", "age", "k", "category", "free_only", "open_now", "send", "exclude")
                           if key in request}
                prepared.append((_clean_query(request.get("query")), self._plan(**filters)))
            except BadInput as err:
                prepared.append(err)
        good = [p for p in prepared if not isinstance(p, BadInput)]
        catalog = self.catalog()
        vectors = embed_fast([text for text, _ in good]) if good else None
        out: list[list[dict[str, Any]] | BadInput] = []
        row = 0
        for item in prepared:
            if isinstance(item, BadInput):
                out.append(item)
                continue
            out.append(self._search_one(catalog, item[0], vectors[row], item[1]))
            row += 1
        return out

    def _plan(self, area=None, age=None, k=5, category=None, free_only=False, open_now=False, send=False, exclude=()) -> dict[str, Any]:
        return {
            "area": check_area(area) if area is not None else None,
            "age": _check_age(age),
            "k": _check_k(k),
            "category": _check_category(category),
            "free_only": bool(free_only),
            "moment": _check_moment(open_now),
            "send": bool(send),
            "exclude": _check_exclude(exclude),
        }

    def refine(self, query: str, area: str | None = None, age: int | None = None, shown: Sequence[str] = (),
               choices: int = 4) -> dict[str, Any]:
        """For "none of these fit": one refining question, and the choices that would answer it.

        The services that fit next (after those ``shown``) are grouped by category; the commonest
        categories near the top become the choices. Each choice is a ready search:
        ``search(query, area=area, age=age, category=choice["category"], exclude=shown)``. When the
        next services share no category, ``choices`` is empty and the question asks for a few more
        words instead (search again with the concern and those words, ``exclude=shown``).
        """
        shown = _check_exclude(shown)
        results = self.search(query, area=area, age=age, k=20, exclude=sorted(shown))
        weight: dict[str, float] = {}
        for rank, r in enumerate(results):
            for c in r["categories"]:
                if c not in ("get_help_now",):  # urgent contacts are always offered beside the cards anyway
                    weight[c] = weight.get(c, 0.0) + 1.0 / (rank + 1)
        best = sorted(weight, key=lambda c: (-weight[c], c))[: max(0, int(choices))]
        if len(best) >= 2:
            return {
                "question": "Sorry those didn't fit. Which of these is closest to what you need?",
                "choices": [{"category": c, "label": CATEGORIES[c]} for c in best],
                "free_text": "Something else: tell me in a few words",
                "exclude": sorted(shown),
            }
        return {
            "question": "Sorry those didn't fit. Can you tell me a little more about what you need, in a few words?",
            "choices": [],
            "free_text": None,
            "exclude": sorted(shown),
        }

    def _mask(self, catalog: Catalog, plan: dict[str, Any]) -> np.ndarray | None:
        # A service the feed calls inactive, defunct or temporarily closed is never offered.
        mask = None if catalog.active.all() else catalog.active.copy()

        def both(current, new):
            return new if current is None else current & new

        if plan["area"]:
            mask = both(mask, (catalog.area_bits & (area_bit(plan["area"]) | area_bit(NATIONAL))) != 0)
        if plan["age"] is not None:
            age = plan["age"]
            mask = both(mask, (catalog.min_age <= age) & (catalog.max_age >= age))
            if age < SELF_CONTACT_MIN_AGE:
                # Only the child contacts it, and it states no minimum age: a young child's family is asking
                # on the child's behalf, so it is not for them.
                child_only = (catalog.audience_bits == audience_bit("child-self")) & (catalog.min_age < 0)
                if child_only.any():
                    mask = both(mask, ~child_only)
        if plan["category"]:
            mask = both(mask, (catalog.cat_bits & category_bit(plan["category"])) != 0)
        if plan["send"]:
            mask = both(mask, (catalog.cat_bits & category_bit("send")) != 0)
        if plan["free_only"]:
            mask = both(mask, catalog.free)
        if plan["moment"] is not None:
            rows = [row for row, sched in catalog.schedules.items() if open_at(sched, plan["moment"])]
            is_open = np.zeros(catalog.size, dtype=bool)
            is_open[rows] = True
            mask = both(mask, is_open)
        return mask

    def _search_one(self, catalog: Catalog, text: str, vector: np.ndarray, plan: dict[str, Any], mode: str = "hybrid",
                    mask: np.ndarray | None | bool = False, lexical_hits: list[tuple[int, float]] | None = None) -> list[dict]:
        ranked = self._rank(catalog, text, vector, plan, mode, mask=mask, lexical_hits=lexical_hits)
        top = ranked[: plan["k"]]
        services = self._services_of(catalog, [catalog.ids[row] for row, *_ in top])
        words = terms(text)
        results = []
        for row, score, lex_rank, dense_sim in top:
            service = services.get(catalog.ids[row])
            if service is None:  # deleted by another process since the index loaded
                continue
            result = self._result(service, score, self._why(service, words, lex_rank, dense_sim, plan))
            # neither a word of the query nor its meaning is close: the best we have, not a good fit
            result["weak_match"] = not any(w.startswith("mentions") for w in result["why"]) and (dense_sim or 0.0) < WEAK_SIMILARITY
            results.append(result)
        return results

    def _services_of(self, catalog: Catalog, ids: list[str]) -> dict[str, Service]:
        """The services for ``ids``, from the catalog's cache when it has them (it lives as long as the
        catalog, which is rebuilt whenever the store changes), else read in one go and cached."""
        found = catalog.cached_services(ids)
        missing = [sid for sid in ids if sid not in found]
        if missing:
            if self._reader is not None:
                fresh = store.services_from_docs(self._reader.docs(missing), missing, self.engine)
            else:
                with self.engine.connect() as conn:
                    fresh = store.read_service_docs(conn, missing)
            catalog.cache_services(fresh)
            found.update({s.id: s for s in fresh})
        return found

    def rank(self, catalog: Catalog, text: str, vector: np.ndarray, plan: dict[str, Any], mode: str = "hybrid") -> list[tuple[int, float, int | None, float | None]]:
        """(row, fused score, lexical rank, dense similarity) best first, after filters."""
        return self._rank(catalog, text, vector, plan, mode)

    def _lexical_hits(self, catalog: Catalog, text: str, mask: np.ndarray | None) -> list[tuple[int, float]]:
        """(row, BM25 score) best first among the rows ``mask`` allows, without hits under
        ``LEXICAL_CUTOFF`` of the best (they only matched common words)."""
        limit = CANDIDATES if mask is None else CANDIDATES * 4
        hits = catalog.lexical.search(terms(text), limit)
        floor = hits[0][1] * LEXICAL_CUTOFF if hits else 0.0
        found = []
        for sid, score in hits:
            row = catalog.row_of.get(sid)
            if row is not None and score >= floor and (mask is None or mask[row]):
                found.append((row, score))
        return found

    def _rank(self, catalog: Catalog, text: str, vector: np.ndarray, plan: dict[str, Any], mode: str,
              mask: np.ndarray | None | bool = False, lexical_hits: list[tuple[int, float]] | None = None,
              ) -> list[tuple[int, float, int | None, float | None]]:
        """``mask`` and ``lexical_hits``, when given, were worked out already for this plan and text."""
        if mask is False:
            mask = self._mask(catalog, plan)
        dense: list[tuple[int, float]] = []
        if mode in ("hybrid", "dense"):
            dense = dense_search(catalog, vector, mask, CANDIDATES)
        # With a child's age the search is on a child's behalf. A service people contact only about
        # themselves (no parent, carer or professional audience, and not one the child is old enough to
        # contact) is offered only when it is close in meaning to what was asked, never on a shared word
        # ("my toddler isn't talking" is not "someone to talk to"; "I can't cope any more" still finds one).
        off_behalf: set[int] = set()
        if mode not in ("hybrid", "lexical"):
            lexical_hits = []
        elif lexical_hits is None:
            lexical_hits = self._lexical_hits(catalog, text, mask)
        if plan["age"] is not None and catalog.audience_bits.any():
            # Only the rows already found matter: those in the dense list (their similarity is known) and
            # the lexical hits (their similarity is one short product each), not every such service.
            fitting = _on_behalf_bits() | (audience_bit("child-self") if plan["age"] >= SELF_CONTACT_MIN_AGE else 0)
            bits = catalog.audience_bits
            if dense:
                best = dense[0][1]
            else:  # lexical only (measuring): the best meaning over every service
                with one_blas_thread():
                    best = float(np.max(catalog.vectors @ vector)) if catalog.size else 0.0
            sim_of = dict(dense)
            found = np.array(list(dict.fromkeys([row for row, _ in dense] + [row for row, _ in lexical_hits])), dtype=np.int64)
            if found.size:
                found = found[(bits[found] != 0) & ((bits[found] & fitting) == 0)]
            unknown = [int(row) for row in found if int(row) not in sim_of]
            if unknown:
                sim_of.update(zip(unknown, (catalog.vectors[unknown] @ vector).tolist()))
            # Close to the best is not enough when the best is itself a poor match (the toddler who isn't
            # talking yet: the best is 0.30 and FRANK, drugs advice, 0.29): it must also share a word
            # with the query ("I can't cope" and Samaritans, "my partner hits me" and the abuse lines)
            # or be clearly close in meaning on its own.
            worded = {row for row, _ in lexical_hits}
            off_behalf = {int(row) for row in found
                          if sim_of[int(row)] < best - SELF_FIT_SIMILARITY
                          or (sim_of[int(row)] < SELF_CLEAR_SIMILARITY and int(row) not in worded)}
            dense = [(row, sim) for row, sim in dense if row not in off_behalf]
        lexical = [row for row, _ in lexical_hits if row not in off_behalf][:CANDIDATES]
        lex_rank = {row: i for i, row in enumerate(lexical)}
        dense_sim = dict(dense)
        dense_rank = {row: i for i, (row, _) in enumerate(dense)}
        scores: dict[int, float] = {}
        if self.fusion == "blend" and mode == "hybrid":
            sims = np.array([s for _, s in dense]) if dense else np.zeros(1)
            lo, hi = float(sims.min()), float(sims.max())
            for row in set(lex_rank) | set(dense_rank):
                d = (dense_sim[row] - lo) / (hi - lo + 1e-9) if row in dense_sim else 0.0
                lx = 1.0 - lex_rank[row] / CANDIDATES if row in lex_rank else 0.0
                scores[row] = 0.6 * d + 0.4 * lx
        else:
            for rank_map, weight in ((lex_rank, LEXICAL_WEIGHT), (dense_rank, DENSE_WEIGHT)):
                for row, rank in rank_map.items():
                    scores[row] = scores.get(row, 0.0) + weight / (RRF_K + rank + 1)
        if mode == "hybrid" and (plan["area"] or plan["age"] is not None):
            # A service that fits about as well as the best match (in the top lexical hits, or close to the
            # best similarity in meaning) gets a small bonus when it is local to the area, and another when
            # its stated ages include the child's (or, with no stated ages, it is an early-years service and
            # the child is under five): a tie-breaker of a few ranks, not a rout.
            best = dense[0][1] if dense else 1.0
            local = area_bit(plan["area"]) if plan["area"] else 0
            early = category_bit("early_years")
            age = plan["age"]
            for row in scores:
                fits = lex_rank.get(row, CANDIDATES) < LOCAL_FIT_RANK or dense_sim.get(row, -1.0) >= best - LOCAL_FIT_SIMILARITY
                if not fits:
                    continue
                if local and catalog.area_bits[row] & local:
                    scores[row] += LOCAL_BONUS
                if age is not None:
                    stated = catalog.min_age[row] >= 0 or catalog.max_age[row] < 999
                    if stated or (age <= EARLY_YEARS_MAX_AGE and catalog.cat_bits[row] & early):
                        scores[row] += AGE_BONUS
        ordered = sorted(scores.items(), key=lambda item: (-item[1], catalog.ids[item[0]]))
        if plan.get("exclude"):  # after ranking, so "show more" continues the same order
            ordered = [(row, score) for row, score in ordered if catalog.ids[row] not in plan["exclude"]]
        return [(row, score, lex_rank.get(row), dense_sim.get(row)) for row, score in ordered]

    # ---- results --------------------------------------------------------------------------------
    def _why(self, s: Service, words: list[str], lex_rank: int | None, dense_sim: float | None, plan: dict[str, Any]) -> list[str]:
        why: list[str] = []
        if lex_rank is not None and words:
            haystack = _haystack(s.search_text())
            matched = [w for w in words if stem(w) in haystack or w in haystack]
            if matched:
                why.append("mentions " + ", ".join(f"'{w}'" for w in matched[:6]))
        if dense_sim is not None and dense_sim >= 0.3:
            why.append(f"close in meaning to what you wrote (similarity {dense_sim:.2f})")
        elif dense_sim is not None and not why:
            why.append(f"the nearest in meaning we have (similarity {dense_sim:.2f})")
        if plan["area"]:
            if plan["area"] in s.areas:
                why.append(f"covers {area_label(plan['area'])}")
            else:
                why.append("a national service, available in every area")
        if plan["age"] is not None:
            stage = implied_ages(s.name) if s.min_age is None and s.max_age is None else None
            if stage is not None:
                why.append(f"for ages {stage.min_age}-{stage.max_age} (child is {plan['age']}): its name says "
                           f"'{stage.phrase}'; its source states no ages")
            elif s.min_age is None and s.max_age is None:
                why.append("no age limits stated")
            else:
                why.append(f"for ages {s.min_age if s.min_age is not None else 0}-{s.max_age if s.max_age is not None else MAX_AGE} "
                           f"(child is {plan['age']})")
        if plan["category"]:
            why.append(f"category: {CATEGORIES[plan['category']]}")
        if plan["send"]:
            why.append("for children with special educational needs or disabilities")
        if plan["free_only"]:
            why.append("free")
        if plan["moment"] is not None:
            why.append(f"open at {local_moment(plan['moment']).strftime('%a %H:%M')}")
        return why

    def _result(self, s: Service, score: float | None, why: list[str]) -> dict[str, Any]:
        areas: list[str] | str = "national" if s.national else list(s.areas) + list(s.area_names)
        ages = None if s.min_age is None and s.max_age is None else (s.min_age if s.min_age is not None else 0,
                                                                       s.max_age if s.max_age is not None else MAX_AGE)
        return {
            "id": s.id,
            "name": s.name,
            "organization": s.organization,
            "description": s.description,
            "phone": s.phones[0].number if s.phones else None,
            "phones": [{"number": p.number, "description": p.description} for p in s.phones],
            "email": s.email,
            "url": s.url,
            "area": areas,
            "ages": ages,
            "hours": describe(s.schedules, s.hours) if (s.schedules or s.hours) else NOT_STATED,
            "cost": s.cost or "cost not stated in the source document",
            "free": s.free,
            "source": s.source,
            "last_verified": s.last_verified.isoformat() if s.last_verified else None,
            "synthetic": s.synthetic,
            "score": None if score is None else round(float(score), 5),
            "why": why,
            "category": s.categories[0] if s.categories else None,
            "categories": list(s.categories),
            "status": s.status,
            "eligibility": s.eligibility,
            "who_for": _who_for(s, ages),
            "audiences": list(s.audiences),
            **quality.result_flags(s),
        }
