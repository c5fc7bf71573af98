"""``earlyhelp directory``: search, import and export the family information directory.

    earlyhelp directory search --area gloucestershire --age 2 "my toddler isn't talking yet" --json
    earlyhelp directory search --batch < queries.jsonl      # {"query", "area"?, "age"?, "k"?} per line
    earlyhelp directory import --area buckinghamshire feed.json --json
    earlyhelp directory export --format oruk-json > directory.json
    earlyhelp directory quality --json                       # what records lack; near-duplicates

Exit codes: 0 done, 2 bad input (including an import in which any record was rejected; the good ones are
still imported and the answer lists the rejected ones).
"""
from __future__ import annotations

import argparse
import json
import sys
from functools import lru_cache
from typing import Any

from bot.cli.common import add_output_flags, fail, field, print_json, run
from bot.errors import BadInput


@lru_cache(maxsize=1)
def _directory():
    from directory import Directory

    return Directory.open()


def search_answer(request: dict[str, Any]) -> dict[str, Any]:
    query = field(request, "query", str, required=True)
    results = _directory().search(
        query,
        area=field(request, "area", str),
        age=field(request, "age", int),
        k=field(request, "k", int, default=5),
        category=field(request, "category", str),
        free_only=field(request, "free_only", bool, default=False),
        open_now=_open_now(request),
        send=field(request, "send", bool, default=False),
        exclude=field(request, "exclude", list, default=[]),
    )
    return {"results": results}


def _open_now(request: dict[str, Any]) -> bool | str:
    value = request.get("open_now", False)
    if value is None:
        return False
    if not isinstance(value, (bool, str)):
        raise BadInput(f"'open_now' must be true, false or an ISO date and time, got {type(value).__name__}")
    return value


def _render_search(doc: dict[str, Any]) -> str:
    if not doc["results"]:
        return "No matching services."
    lines = []
    for i, r in enumerate(doc["results"], 1):
        contact = " | ".join(x for x in (r["phone"], r["email"], r["url"]) if x)
        lines.append(f"{i}. {r['name']} ({r['organization']})")
        if contact:
            lines.append(f"   {contact}")
        lines.append(f"   hours: {r['hours']}")
        lines.append(f"   why: {'; '.join(r['why'])}")
        source = r["source"] or "source not given"
        lines.append(f"   source: {source}" + (f", last verified {r['last_verified']}" if r["last_verified"] else ""))
        if r["synthetic"]:
            lines.append("   SYNTHETIC TEST RECORD, NOT A REAL SERVICE")
        for caution in r.get("caution", []):
            lines.append(f"   caution: {caution}")
    return "\n".join(lines)


def _search(args: argparse.Namespace) -> int:
    if args.batch:
        return _search_batch(sys.stdin)
    if not args.text:
        return fail("the search text is empty: say in a few words what help you are looking for", args.json)
    request: dict[str, Any] = {"query": " ".join(args.text), "k": args.k}
    for key in ("area", "age", "category"):
        if getattr(args, key) is not None:
            request[key] = getattr(args, key)
    if args.free_only:
        request["free_only"] = True
    if args.open_now:
        request["open_now"] = args.open_now
    if args.send:
        request["send"] = True
    return run(args, search_answer, request, _render_search)


def _search_batch(lines) -> int:
    """Every line of stdin, answered in order; the queries are embedded in batches of 64."""
    buffered: list[str] = []
    for raw in lines:
        buffered.append(raw)
        if len(buffered) >= 64:
            _flush(buffered)
            buffered = []
    _flush(buffered)
    return 0


def _flush(raw_lines: list[str]) -> None:
    requests: list[dict | Exception] = []
    for raw in raw_lines:
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise BadInput("each line must be a JSON object")
            for key, kind in (("query", str), ("area", str), ("age", int), ("k", int), ("category", str),
                              ("free_only", bool), ("send", bool), ("exclude", list)):
                field(request, key, kind, required=key == "query")
            _open_now(request)
            requests.append(request)
        except json.JSONDecodeError as err:
            requests.append(BadInput(f"line is not valid JSON: {err.msg}"))
        except BadInput as err:
            requests.append(err)
    good = [r for r in requests if isinstance(r, dict)]
    answers = iter(_directory().search_requests(good) if good else [])
    for request in requests:
        if isinstance(request, Exception):
            print_json({"error": str(request)})
            continue
        answer = next(answers)
        print_json({"error": str(answer)} if isinstance(answer, BadInput) else {"results": answer})


def _import(args: argparse.Namespace) -> int:
    try:
        report = _directory().import_path(args.path, area=args.area)
    except BadInput as err:
        return fail(str(err), args.json)
    if args.json:
        print_json(report)
    else:
        print(f"imported {report['imported']}, updated {report['updated']}, unchanged {report['unchanged']}, "
              f"rejected {len(report['rejected'])}")
        for problem in report["rejected"]:
            print(f"  rejected: {problem['message']}")
        q = report["quality"]
        print(f"quality: {q['missing_essentials']} missing essentials, {q['stale']} stale, {q['unverified']} unverified, "
              f"{len(q['near_duplicates'])} near-duplicate pair(s); report: {q['report'] or 'not written'}")
    if report["rejected"]:
        print(f"earlyhelp: {len(report['rejected'])} record(s) rejected; the rest were imported", file=sys.stderr)
        return 2
    return 0


def _export(args: argparse.Namespace) -> int:
    doc = _directory().export_oruk()  # always JSON; --json is accepted like every other command's
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, indent=None if args.compact or args.json else 2) + "\n")
    return 0


def _quality(args: argparse.Namespace) -> int:
    doc = _directory().quality_report()
    if args.json:
        print_json(doc)
        return 0
    summary = doc["summary"]
    print(f"{summary['accepted']} services: {summary['missing_essentials']} missing essentials, {summary['stale']} stale "
          f"(not checked for {doc['stale_after_days']} days), {summary['unverified']} unverified, "
          f"{summary['near_duplicates']} near-duplicate pair(s)")
    for code, warning in doc["warnings"].items():
        if warning["count"]:
            listed = ", ".join(warning["ids"][:8]) + (" ..." if warning["count"] > 8 else "")
            print(f"  {code} ({warning['count']}{', essential' if warning['essential'] else ''}): {listed}")
    for pair in doc["near_duplicates"]:
        print(f"  near-duplicate: {pair['ids'][0]} / {pair['ids'][1]}: {pair['reason']}")
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("directory", help="search, import and export the family information directory")
    commands = parser.add_subparsers(dest="directory_command", required=True, metavar="SUBCOMMAND")

    search = commands.add_parser("search", help="find services for a need, best first")
    search.add_argument("text", nargs="*", help="what help is needed, in your own words")
    search.add_argument("--area", help="area id, e.g. gloucestershire (national services match every area)")
    search.add_argument("--age", type=int, help="the child's age in years (0-25)")
    search.add_argument("-k", type=int, default=5, help="how many results (1-50, default 5)")
    search.add_argument("--category", help="only this category, e.g. parenting, send, money")
    search.add_argument("--free-only", action="store_true", help="only services that say they are free")
    search.add_argument("--open-now", nargs="?", const=True, default=False, metavar="WHEN",
                        help="only services open now (or at WHEN, ISO date and time)")
    search.add_argument("--send", action="store_true", help="only services for special educational needs and disabilities")
    add_output_flags(search)
    search.set_defaults(handler=_search)

    imp = commands.add_parser("import", help="import an ORUK JSON feed or an HSDS CSV folder")
    imp.add_argument("path", help="ORUK .json file, folder of them, or HSDS CSV folder (with services.csv)")
    imp.add_argument("--area", help="mark every imported service as covering this area")
    add_output_flags(imp, batch=False)
    imp.set_defaults(handler=_import)

    exp = commands.add_parser("export", help="write every service as Open Referral UK JSON")
    exp.add_argument("--format", choices=["oruk-json"], default="oruk-json")
    exp.add_argument("--compact", action="store_true", help="one line instead of indented JSON")
    exp.add_argument("--json", action="store_true", help="one JSON document on one line (the output is always JSON)")
    exp.set_defaults(handler=_export)

    qual = commands.add_parser("quality", help="report what the directory's records lack (contacts, areas, dates, duplicates)")
    add_output_flags(qual, batch=False)
    qual.set_defaults(handler=_quality)
