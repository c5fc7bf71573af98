"""Reading feeds: Open Referral UK JSON and HSDS CSV data packages, into raw service objects.

Nothing here decides whether a record is good; it only finds the records and says where each came from
(file and record number), so a rejection can name them. A file that cannot be read at all (missing, not
JSON, not a services shape, far too big) is a ``BadInput`` for the whole import.
"""
from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.errors import BadInput

MAX_FILE_BYTES = 64 * 1024 * 1024
MAX_CSV_FIELD = 1024 * 1024


@dataclass
class RawRecord:
    file: str
    label: str  # e.g. "record 3 (id 'abc')" or "row 4"
    data: Any


@dataclass
class Problem:
    file: str
    label: str
    field: str
    reason: str

    def as_dict(self) -> dict[str, str]:
        return {
            "file": self.file,
            "record": self.label,
            "field": self.field,
            "reason": self.reason,
            "message": f"{self.file}, {self.label}, field {self.field}: {self.reason}",
        }


def _read_bytes(path: Path) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as err:
        raise BadInput(f"{path}: cannot read it ({err.strerror or err})") from err
    if size > MAX_FILE_BYTES:
        raise BadInput(f"{path}: the file is {size} bytes; the limit is {MAX_FILE_BYTES}")
    return path.read_bytes()


def _label(index: int, data: Any) -> str:
    if isinstance(data, dict) and isinstance(data.get("id"), (str, int)) and not isinstance(data.get("id"), bool):
        return f"record {index + 1} (id {str(data['id'])[:80]!r})"
    return f"record {index + 1}"


def read_oruk_json(path: Path) -> list[RawRecord]:
    raw = _read_bytes(path)
    try:
        doc = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as err:
        raise BadInput(f"{path.name}: not UTF-8 text") from err
    except json.JSONDecodeError as err:
        raise BadInput(f"{path.name}: not valid JSON ({err.msg} at line {err.lineno}, column {err.colno})") from err
    except RecursionError as err:
        raise BadInput(f"{path.name}: JSON nested too deeply") from err
    if isinstance(doc, dict) and isinstance(doc.get("content"), list):
        items = doc["content"]  # an ORUK /services API page
    elif isinstance(doc, dict) and isinstance(doc.get("services"), list):
        items = doc["services"]
    elif isinstance(doc, dict) and "id" in doc and "name" in doc:
        items = [doc]  # one full service object
    elif isinstance(doc, list):
        items = doc
    else:
        raise BadInput(
            f"{path.name}: not an Open Referral UK feed: expected a /services page ({{\"content\": [...]}}), "
            "a service object or a list of services"
        )
    return [RawRecord(path.name, _label(i, item), item) for i, item in enumerate(items)]


# ---- HSDS CSV data packages ---------------------------------------------------------------------

_ALIASES = {
    "services": ("services.csv", "service.csv"),
    "organizations": ("organizations.csv", "organization.csv", "organisations.csv"),
    "contacts": ("contacts.csv", "contact.csv"),
    "phones": ("phones.csv", "phone.csv"),
    "eligibility": ("eligibility.csv", "eligibilitys.csv", "eligibilities.csv"),
    "service_areas": ("service_areas.csv", "service_area.csv"),
    "schedules": ("regular_schedules.csv", "schedules.csv", "schedule.csv"),
    "cost_options": ("cost_options.csv", "cost_option.csv"),
    "locations": ("locations.csv", "location.csv"),
    "physical_addresses": ("physical_addresses.csv", "physical_address.csv"),
    "service_at_location": ("services_at_location.csv", "service_at_location.csv", "service_at_locations.csv"),
    "taxonomy": ("taxonomy_terms.csv", "taxonomy_term.csv", "taxonomy.csv"),
    "service_taxonomy": ("service_taxonomy.csv", "service_taxonomys.csv"),
}


def is_hsds_package(folder: Path) -> bool:
    return any((folder / name).is_file() for name in _ALIASES["services"])


def _read_csv(folder: Path, kind: str) -> tuple[str, list[tuple[int, dict[str, str]]]]:
    for name in _ALIASES[kind]:
        path = folder / name
        if path.is_file():
            break
    else:
        return "", []
    text = _read_bytes(path)
    try:
        decoded = text.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise BadInput(f"{path.name}: not UTF-8 text") from err
    csv.field_size_limit(MAX_CSV_FIELD)
    reader = csv.DictReader(io.StringIO(decoded, newline=""))
    rows = []
    try:
        for row in reader:
            if None in row:  # more cells than headers
                row.pop(None)
            rows.append((reader.line_num, {k.strip(): (v if v is not None else "") for k, v in row.items() if k}))
    except csv.Error as err:
        raise BadInput(f"{path.name}: not a readable CSV file at line {reader.line_num}: {err}") from err
    if reader.fieldnames is None:
        return path.name, []
    return path.name, rows


def _empty_to_none(row: dict[str, str]) -> dict[str, Any]:
    return {k: (v if v.strip() != "" else None) for k, v in row.items()}


def read_hsds_package(folder: Path) -> tuple[list[RawRecord], list[Problem]]:
    """Service objects assembled from a folder of HSDS CSV tables, plus rows that point nowhere."""
    services_file, service_rows = _read_csv(folder, "services")
    if service_rows and "id" not in service_rows[0][1]:
        raise BadInput(f"{services_file}: has no 'id' column")
    problems: list[Problem] = []
    services: dict[str, dict[str, Any]] = {}
    records: list[RawRecord] = []
    for line, row in service_rows:
        data = _empty_to_none(row)
        for key in ("contacts", "phones", "eligibilitys", "service_areas", "regular_schedules", "cost_options",
                    "service_at_locations", "service_taxonomys"):
            data[key] = []
        records.append(RawRecord(services_file, f"row {line}" + (f" (id {data['id'][:80]!r})" if data.get("id") else ""), data))
        if data.get("id") and data["id"] not in services:
            services[data["id"]] = data

    _, org_rows = _read_csv(folder, "organizations")
    orgs = {row["id"]: _empty_to_none(row) for _, row in org_rows if row.get("id")}
    for data in services.values():
        org_id = data.pop("organization_id", None)
        if org_id is not None:
            data["organization"] = orgs.get(org_id, {"id": org_id, "name": None})

    def attach(kind: str, key: str, build=lambda row: row) -> None:
        file, rows = _read_csv(folder, kind)
        for line, row in rows:
            row = _empty_to_none(row)
            sid = row.get("service_id")
            if sid is None and kind == "phones" and row.get("contact_id") in contact_owner:
                sid = contact_owner[row["contact_id"]]
            if sid not in services:
                problems.append(Problem(file, f"row {line}", "service_id", f"no service with id {str(sid)[:80]!r} in {services_file}"))
                continue
            services[sid][key].append(build(row))

    contact_owner: dict[str, str] = {}
    _, contact_rows = _read_csv(folder, "contacts")
    for _, row in contact_rows:
        if row.get("id") and row.get("service_id"):
            contact_owner[row["id"]] = row["service_id"]
    attach("phones", "phones")
    attach("eligibility", "eligibilitys")
    attach("service_areas", "service_areas")
    attach("schedules", "regular_schedules")
    attach("cost_options", "cost_options")

    _, loc_rows = _read_csv(folder, "locations")
    locations = {row["id"]: _empty_to_none(row) for _, row in loc_rows if row.get("id")}
    _, addr_rows = _read_csv(folder, "physical_addresses")
    for _, row in addr_rows:
        loc = locations.get(row.get("location_id", ""))
        if loc is not None:
            loc.setdefault("physical_addresses", []).append(_empty_to_none(row))
    attach("service_at_location", "service_at_locations",
           lambda row: {"id": row.get("id"), "location": locations.get(row.get("location_id") or "", {"id": row.get("location_id")})})

    _, term_rows = _read_csv(folder, "taxonomy")
    terms = {row["id"]: _empty_to_none(row) for _, row in term_rows if row.get("id")}
    attach("service_taxonomy", "service_taxonomys",
           lambda row: {"id": row.get("id"), "taxonomy": terms.get(row.get("taxonomy_id") or row.get("taxonomy_term_id") or "",
                                                                   {"id": row.get("taxonomy_id"), "name": None})})
    return records, problems


def read_path(path: Path) -> tuple[list[RawRecord], list[Problem]]:
    """Every raw record under ``path`` (an ORUK JSON file, an HSDS folder, or a folder of JSON files)."""
    if not path.exists():
        raise BadInput(f"{path}: no such file or folder")
    if path.is_dir():
        if is_hsds_package(path):
            return read_hsds_package(path)
        files = sorted(p for p in path.iterdir() if p.suffix.lower() == ".json" and p.is_file())
        subpackages = sorted(p for p in path.iterdir() if p.is_dir() and is_hsds_package(p))
        if not files and not subpackages:
            raise BadInput(f"{path}: holds no ORUK JSON files (*.json) and no HSDS services.csv")
        records: list[RawRecord] = []
        problems: list[Problem] = []
        for file in files:
            records += read_oruk_json(file)
        for package in subpackages:
            more, issues = read_hsds_package(package)
            records += more
            problems += issues
        return records, problems
    if path.name.lower() in _ALIASES["services"]:
        return read_hsds_package(path.parent)
    if path.suffix.lower() == ".json":
        return read_oruk_json(path), []
    raise BadInput(f"{path.name}: expected an ORUK .json file or an HSDS CSV folder (with services.csv)")
