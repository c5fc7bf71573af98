"""``earlyhelp contacts --area A [--at ISO-8601]``: who to call now about a child at risk."""
from __future__ import annotations

from bot.cli.common import add_output_flags, field, run
from bot.contacts import contacts_report


def answer(request: dict) -> dict:
    return contacts_report(field(request, "area", str, required=True), field(request, "at", str))


def render(doc: dict) -> str:
    lines = [f"{doc['area']} at {doc['at']} ({'office hours' if doc['in_hours'] else 'out of hours'})"]
    lines.append("Immediate danger: call 999")
    for i, c in enumerate(doc["contacts"]):
        lead = "Call now" if i == 0 else "Also"
        lines.append(f"{lead}: {c['name']} {c['phone'] or c['email'] or c['url']} ({c['hours']}) [source: {c['source']}]")
    return "\n".join(lines)


def register(commands) -> None:
    parser = commands.add_parser("contacts", help="the number to call now about a child at risk, by area and time")
    parser.add_argument("--area", required=True)
    parser.add_argument("--at", help="ISO-8601 moment; no offset means Europe/London; default now")
    add_output_flags(parser, batch=False)
    parser.set_defaults(handler=lambda args: run(args, answer, {"area": args.area, "at": args.at}, render))
