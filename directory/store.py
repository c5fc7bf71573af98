"""Reading and writing services in the ORUK-shaped tables.

A write replaces each service whole (its phones, schedules, areas ... are deleted and written again), all
inside the caller's transaction, so an import either lands completely or not at all.
"""
from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from typing import Iterable, Sequence

from sqlalchemy import Connection, delete, func, insert, select, text, update

from directory import schema as t
from directory.records import CostOption, Location, Phone, Schedule, Service, service_from_doc, service_to_doc
from directory.vocab import AUDIENCE_VOCABULARY, CATEGORY_VOCABULARY, area_from_name

_CHUNK = 500  # ids per IN (...) query: well under every engine's parameter limit


def _chunks(items: Sequence, size: int = _CHUNK) -> Iterable[Sequence]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def get_meta(conn: Connection, key: str) -> str | None:
    return conn.execute(select(t.meta.c.value).where(t.meta.c.key == key)).scalar()


def set_meta(conn: Connection, key: str, value: str) -> None:
    if conn.execute(update(t.meta).where(t.meta.c.key == key).values(value=value)).rowcount == 0:
        conn.execute(insert(t.meta).values(key=key, value=value))


def existing_fingerprints(conn: Connection, ids: Sequence[str]) -> dict[str, str]:
    found: dict[str, str] = {}
    for chunk in _chunks(list(ids)):
        rows = conn.execute(select(t.service.c.id, t.service.c.fingerprint).where(t.service.c.id.in_(chunk)))
        found.update({row.id: row.fingerprint for row in rows})
    return found


def delete_services(conn: Connection, ids: Sequence[str]) -> None:
    for chunk in _chunks(list(ids)):
        for table in (t.phone, *[tb for tb in t.CHILD_TABLES if tb is not t.phone]):
            conn.execute(delete(table).where(table.c.service_id.in_(chunk)))
        conn.execute(delete(t.service).where(t.service.c.id.in_(chunk)))
        if conn.dialect.name == "sqlite":
            for sid in chunk:
                conn.execute(text("DELETE FROM service_fts WHERE service_id = :sid"), {"sid": sid})


def write_services(conn: Connection, services: Sequence[Service], origin: str = "import") -> None:
    """Insert or replace ``services`` (already validated) inside the caller's transaction."""
    if not services:
        return
    now = dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    ids = [s.id for s in services]
    existing = set(existing_fingerprints(conn, ids))
    delete_services(conn, [i for i in ids if i in existing])

    orgs: dict[str, dict] = {}
    for s in services:
        orgs[s.organization_id] = {"id": s.organization_id, "name": s.organization, "url": s.organization_url}
    known_orgs: set[str] = set()
    for chunk in _chunks(list(orgs)):
        known_orgs |= set(conn.execute(select(t.organization.c.id).where(t.organization.c.id.in_(chunk))).scalars())
    for org_id, row in orgs.items():
        if org_id in known_orgs:
            conn.execute(update(t.organization).where(t.organization.c.id == org_id).values(name=row["name"], url=row["url"]))
    new_orgs = [row for org_id, row in orgs.items() if org_id not in known_orgs]
    if new_orgs:
        conn.execute(insert(t.organization), new_orgs)

    terms = {f"{CATEGORY_VOCABULARY}:{c}": (c, CATEGORY_VOCABULARY) for s in services for c in s.categories}
    terms.update({f"{AUDIENCE_VOCABULARY}:{a}": (a, AUDIENCE_VOCABULARY) for s in services for a in s.audiences})
    terms.update({"term:" + hashlib.sha1(n.encode()).hexdigest()[:16]: (n, None) for s in services for n in s.terms})
    known_terms: set[str] = set()
    for chunk in _chunks(list(terms)):
        known_terms |= set(conn.execute(select(t.taxonomy_term.c.id).where(t.taxonomy_term.c.id.in_(chunk))).scalars())
    new_terms = [{"id": k, "name": n, "vocabulary": v} for k, (n, v) in terms.items() if k not in known_terms]
    if new_terms:
        conn.execute(insert(t.taxonomy_term), new_terms)

    locations: dict[str, Location] = {loc.id: loc for s in services for loc in s.locations}
    known_locs: set[str] = set()
    for chunk in _chunks(list(locations)):
        known_locs |= set(conn.execute(select(t.location.c.id).where(t.location.c.id.in_(chunk))).scalars())
    for loc_id, loc in locations.items():
        row = {"name": loc.name, "address": loc.address, "postal_code": loc.postal_code, "latitude": loc.latitude, "longitude": loc.longitude}
        if loc_id in known_locs:
            conn.execute(update(t.location).where(t.location.c.id == loc_id).values(**row))
        else:
            conn.execute(insert(t.location).values(id=loc_id, **row))

    rows: dict[str, list[dict]] = defaultdict(list)
    for s in services:
        rows["service"].append(
            {
                "id": s.id, "organization_id": s.organization_id, "name": s.name, "description": s.description,
                "url": s.url, "email": s.email, "status": s.status, "fees": s.fees, "assured_date": s.last_verified,
                "source": s.source, "synthetic": s.synthetic, "hours": s.hours, "origin": origin,
                "fingerprint": s.fingerprint(), "text_hash": s.text_hash(), "updated_at": now, "doc": service_to_doc(s),
            }
        )
        if s.phones:
            contact_id = f"{s.id}/contact/0"
            rows["contact"].append({"id": contact_id, "service_id": s.id, "name": s.name, "title": None})
            for i, p in enumerate(s.phones):
                rows["phone"].append(
                    {"id": f"{s.id}/phone/{i}", "service_id": s.id, "contact_id": contact_id, "number": p.number,
                     "description": p.description, "position": i}
                )
        for i, sc in enumerate(s.schedules):
            rows["schedule"].append(
                {"id": f"{s.id}/schedule/{i}", "service_id": s.id, "byday": ",".join(sc.byday), "opens_at": sc.opens_at,
                 "closes_at": sc.closes_at, "description": sc.description, "position": i}
            )
        if s.min_age is not None or s.max_age is not None or s.eligibility:
            rows["eligibility"].append(
                {"id": f"{s.id}/eligibility/0", "service_id": s.id, "eligibility": s.eligibility,
                 "minimum_age": s.min_age, "maximum_age": s.max_age}
            )
        for i, c in enumerate(s.cost_options):
            rows["cost_option"].append(
                {"id": f"{s.id}/cost/{i}", "service_id": s.id, "option": c.option, "amount": c.amount,
                 "amount_description": c.description, "position": i}
            )
        for i, name in enumerate([*s.areas, *s.area_names]):
            rows["service_area"].append(
                {"id": f"{s.id}/area/{i}", "service_id": s.id, "service_area": name, "area_id": area_from_name(name), "position": i}
            )
        term_ids = [f"{CATEGORY_VOCABULARY}:{c}" for c in s.categories]
        term_ids += [f"{AUDIENCE_VOCABULARY}:{a}" for a in s.audiences]
        term_ids += ["term:" + hashlib.sha1(n.encode()).hexdigest()[:16] for n in s.terms]
        for i, term_id in enumerate(term_ids):
            rows["service_taxonomy"].append({"id": f"{s.id}/taxonomy/{i}", "service_id": s.id, "taxonomy_term_id": term_id, "position": i})
        for i, loc in enumerate(s.locations):
            rows["service_at_location"].append({"id": f"{s.id}/at/{i}", "service_id": s.id, "location_id": loc.id, "position": i})
    for name in ("service", "contact", "phone", "schedule", "eligibility", "cost_option", "service_area", "service_taxonomy", "service_at_location"):
        if rows[name]:
            conn.execute(insert(t.metadata.tables[name]), rows[name])
    if conn.dialect.name == "sqlite":
        conn.execute(
            text("INSERT INTO service_fts (service_id, name, body) VALUES (:sid, :name, :body)"),
            [{"sid": s.id, "name": s.name, "body": s.search_text()} for s in services],
        )


def count(conn: Connection) -> int:
    return conn.execute(select(func.count()).select_from(t.service)).scalar_one()


def read_services(conn: Connection, ids: Sequence[str] | None = None) -> list[Service]:
    """Services by id in the order asked (missing ids skipped), or every service ordered by id."""
    if ids is None:
        ids = list(conn.execute(select(t.service.c.id).order_by(t.service.c.id)).scalars())
    ids = list(dict.fromkeys(ids))
    out: dict[str, Service] = {}
    for chunk in _chunks(ids):
        out.update(_read_chunk(conn, chunk))
    return [out[i] for i in ids if i in out]


def read_service_docs(conn: Connection, ids: Sequence[str]) -> list[Service]:
    """Services by id in the order asked, from their stored JSON in one query; any without one (written
    before migration 3) read from their tables."""
    ids = list(dict.fromkeys(ids))
    out: dict[str, Service] = {}
    for chunk in _chunks(ids):
        for sid, doc in conn.execute(select(t.service.c.id, t.service.c.doc).where(t.service.c.id.in_(chunk))):
            if doc:
                out[sid] = service_from_doc(doc)
    missing = [sid for sid in ids if sid not in out]
    if missing:
        for chunk in _chunks(missing):
            out.update(_read_chunk(conn, chunk))
    return [out[i] for i in ids if i in out]


def services_from_docs(rows: Sequence[tuple[str, str | None]], ids: Sequence[str], engine) -> list[Service]:
    """``read_service_docs`` for rows of (id, stored JSON) already read (SQLite's fast path); any service
    without a stored JSON is read from its tables through ``engine``."""
    out = {sid: service_from_doc(doc) for sid, doc in rows if doc}
    missing = [sid for sid, doc in rows if not doc]
    if missing:
        with engine.connect() as conn:
            for chunk in _chunks(missing):
                out.update(_read_chunk(conn, chunk))
    return [out[i] for i in dict.fromkeys(ids) if i in out]


def _read_chunk(conn: Connection, ids: Sequence[str]) -> dict[str, Service]:
    s, o = t.service, t.organization
    base = conn.execute(
        select(s, o.c.name.label("org_name"), o.c.url.label("org_url")).join(o, o.c.id == s.c.organization_id).where(s.c.id.in_(ids))
    ).mappings().all()
    if not base:
        return {}

    def children(table, order=True):
        query = select(table).where(table.c.service_id.in_(ids))
        if order and "position" in table.c:
            query = query.order_by(table.c.service_id, table.c.position)
        grouped: dict[str, list] = defaultdict(list)
        for row in conn.execute(query).mappings():
            grouped[row["service_id"]].append(row)
        return grouped

    phones = children(t.phone)
    schedules = children(t.schedule)
    eligibility = children(t.eligibility)
    costs = children(t.cost_option)
    areas = children(t.service_area)
    tax_rows: dict[str, list] = defaultdict(list)
    query = (
        select(t.service_taxonomy.c.service_id, t.taxonomy_term.c.name, t.taxonomy_term.c.vocabulary)
        .join(t.taxonomy_term, t.taxonomy_term.c.id == t.service_taxonomy.c.taxonomy_term_id)
        .where(t.service_taxonomy.c.service_id.in_(ids))
        .order_by(t.service_taxonomy.c.service_id, t.service_taxonomy.c.position)
    )
    for row in conn.execute(query):
        tax_rows[row.service_id].append(row)
    loc_rows: dict[str, list] = defaultdict(list)
    query = (
        select(t.service_at_location.c.service_id, t.location)
        .join(t.location, t.location.c.id == t.service_at_location.c.location_id)
        .where(t.service_at_location.c.service_id.in_(ids))
        .order_by(t.service_at_location.c.service_id, t.service_at_location.c.position)
    )
    for row in conn.execute(query).mappings():
        loc_rows[row["service_id"]].append(row)

    out: dict[str, Service] = {}
    for row in base:
        sid = row["id"]
        elig = eligibility.get(sid, [])
        area_rows = areas.get(sid, [])
        out[sid] = Service(
            id=sid,
            name=row["name"],
            organization_id=row["organization_id"],
            organization=row["org_name"],
            organization_url=row["org_url"],
            description=row["description"] or "",
            url=row["url"],
            email=row["email"],
            status=row["status"],
            phones=tuple(Phone(p["number"], p["description"]) for p in phones.get(sid, [])),
            schedules=tuple(
                Schedule(tuple(x["byday"].split(",")), x["opens_at"], x["closes_at"], x["description"]) for x in schedules.get(sid, [])
            ),
            hours=row["hours"],
            min_age=elig[0]["minimum_age"] if elig else None,
            max_age=elig[0]["maximum_age"] if elig else None,
            eligibility=elig[0]["eligibility"] if elig else None,
            cost_options=tuple(CostOption(c["option"], c["amount"], c["amount_description"]) for c in costs.get(sid, [])),
            fees=row["fees"],
            areas=tuple(a["service_area"] for a in area_rows if a["area_id"]),
            area_names=tuple(a["service_area"] for a in area_rows if not a["area_id"]),
            categories=tuple(r.name for r in tax_rows.get(sid, []) if r.vocabulary == CATEGORY_VOCABULARY),
            terms=tuple(r.name for r in tax_rows.get(sid, []) if r.vocabulary not in (CATEGORY_VOCABULARY, AUDIENCE_VOCABULARY)),
            audiences=tuple(r.name for r in tax_rows.get(sid, []) if r.vocabulary == AUDIENCE_VOCABULARY),
            locations=tuple(
                Location(lr["id"], lr["name"], lr["address"], lr["postal_code"], lr["latitude"], lr["longitude"])
                for lr in loc_rows.get(sid, [])
            ),
            source=row["source"],
            last_verified=row["assured_date"],
            synthetic=bool(row["synthetic"]),
        )
    return out


def content_hash(conn: Connection) -> tuple[str, list[str], list[str]]:
    """A hash of every service's id and searchable text, with the ids and text hashes in id order."""
    rows = conn.execute(select(t.service.c.id, t.service.c.text_hash).order_by(t.service.c.id)).all()
    digest = hashlib.sha256()
    for row in rows:
        digest.update(f"{row.id}\x1f{row.text_hash}\x1e".encode("utf-8"))
    return digest.hexdigest()[:24], [r.id for r in rows], [r.text_hash for r in rows]


def light_rows(conn: Connection) -> list[dict]:
    """Every service's id, name, web address, phone numbers and known areas: what near-duplicate checks need."""
    rows = {r.id: {"id": r.id, "name": r.name, "url": r.url, "phones": [], "areas": []}
            for r in conn.execute(select(t.service.c.id, t.service.c.name, t.service.c.url))}
    for sid, number in conn.execute(select(t.phone.c.service_id, t.phone.c.number)):
        if sid in rows:
            rows[sid]["phones"].append(number)
    for sid, area_id in conn.execute(select(t.service_area.c.service_id, t.service_area.c.area_id).where(t.service_area.c.area_id.is_not(None))):
        if sid in rows:
            rows[sid]["areas"].append(area_id)
    return [rows[sid] for sid in sorted(rows)]
