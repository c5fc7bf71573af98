"""``earlyhelp report --area A --from YYYY-MM-DD --to YYYY-MM-DD [--out FOLDER]``: the commissioners'
report (HTML with charts, and CSV) for one area and period, with counts below 5 suppressed."""
from __future__ import annotations

import datetime as dt
from pathlib import Path

from bot.cli.common import fail, print_json
from bot.errors import BadInput


def _run(args) -> int:
    from bot.areas import get_area
    from bot.report import write

    try:
        get_area(args.area)
        start, end = dt.date.fromisoformat(args.start), dt.date.fromisoformat(args.end)
    except (BadInput, ValueError) as err:
        return fail(str(err), args.json)
    if end < start:
        return fail("--to must not be before --from", args.json)
    print_json(write(args.area, start, end, Path(args.out)))
    return 0


def register(commands) -> None:
    parser = commands.add_parser("report", help="commissioners' report for an area and period (no personal data)")
    parser.add_argument("--area", required=True)
    parser.add_argument("--from", dest="start", required=True, help="first day, YYYY-MM-DD")
    parser.add_argument("--to", dest="end", required=True, help="last day, YYYY-MM-DD")
    parser.add_argument("--out", default="report", help="folder for report.html and report.csv (default ./report)")
    parser.add_argument("--json", action="store_true")
    parser.set_defaults(handler=_run)
