"""``earlyhelp areas``: the configured areas, and ``earlyhelp areas check DIR`` to validate area files."""
from __future__ import annotations

from pathlib import Path

from bot.areas import AreaFileError, load_areas, load_areas_from
from bot.cli.common import add_output_flags, fail, print_json
from bot.places import resolve_area


def _list(args) -> int:
    areas = load_areas()
    doc = {"areas": [{"id": a.id, "name": a.name, "levels": [lvl.name for lvl in a.levels]} for a in areas.values()]}
    if args.json:
        print_json(doc)
    else:
        for a in doc["areas"]:
            print(f"{a['id']}: {a['name']} (levels: {', '.join(a['levels'])})")
    return 0


def _check(args) -> int:
    try:
        areas = load_areas_from(Path(args.folder))
    except AreaFileError as err:
        return fail(str(err), args.json)
    doc = {"valid": sorted(areas)}
    print_json(doc) if args.json else print("valid: " + ", ".join(doc["valid"]))
    return 0


def _where(args) -> int:
    match = resolve_area(args.text)
    doc = {"area": match.area_id if match else None, "matched": match.matched if match else None}
    print_json(doc) if args.json else print(doc["area"] or "no single area recognised")
    return 0


def register(commands) -> None:
    parser = commands.add_parser("areas", help="list, check or recognise areas")
    add_output_flags(parser, batch=False)
    parser.set_defaults(handler=_list)
    sub = parser.add_subparsers(dest="areas_command")
    check = sub.add_parser("check", help="validate a folder of area files")
    check.add_argument("folder")
    add_output_flags(check, batch=False)
    check.set_defaults(handler=_check)
    where = sub.add_parser("where", help="which area a place, town or postcode is in")
    where.add_argument("text")
    add_output_flags(where, batch=False)
    where.set_defaults(handler=_where)
