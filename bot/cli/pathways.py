"""``earlyhelp pathway --area A --level N``: where a professional refers at that level, with sources."""
from __future__ import annotations

from bot.cli.common import add_output_flags, field, run
from bot.pathways import pathway_report, render_pathway


def answer(request: dict) -> dict:
    return pathway_report(field(request, "area", str, required=True), field(request, "level", int, required=True), field(request, "at", str))


def register(commands) -> None:
    parser = commands.add_parser("pathway", help="the referral pathway for a level of need in an area")
    parser.add_argument("--area", required=True)
    parser.add_argument("--level", type=int, required=True, choices=[1, 2, 3, 4])
    parser.add_argument("--at", help="ISO-8601 moment for ordering contacts; default now")
    add_output_flags(parser)
    parser.set_defaults(
        handler=lambda args: run(args, answer, {"area": args.area, "level": args.level, "at": args.at}, render_pathway)
    )
