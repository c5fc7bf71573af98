"""``earlyhelp safeguarding TEXT [--json] [--batch]``: screen a message for safeguarding cues.

Batch lines are ``{"text": ...}``; each answer is one JSON line
``{"escalate", "immediate_danger", "categories", "matched", "unsure"}`` or ``{"error": ...}``.
"""
from __future__ import annotations

from bot.cli.common import add_output_flags, fail, field, run
from bot.errors import BadInput
from bot.safeguarding import screen


def answer(request: dict) -> dict:
    text = field(request, "text", str, required=True)
    if not text.strip():
        raise BadInput("'text' is empty")
    return screen(text).to_dict()


def render(doc: dict) -> str:
    if doc["immediate_danger"]:
        head = "ESCALATE - IMMEDIATE DANGER: call 999"
    elif doc["escalate"]:
        head = "ESCALATE to the duty team"
    elif doc["unsure"]:
        head = "UNSURE: ask one gentle safety question"
    else:
        head = "no safeguarding cue"
    lines = [head]
    if doc["categories"]:
        lines.append("categories: " + ", ".join(doc["categories"]))
    for name in doc["matched"]:
        lines.append(f"  - {name}")
    return "\n".join(lines)


def _handle(args) -> int:
    if not args.batch and args.text is None:
        return fail("give the TEXT to screen, or --batch with JSON Lines on stdin", args.json)
    return run(args, answer, {"text": args.text}, render)


def register(commands) -> None:
    parser = commands.add_parser("safeguarding", help="screen a message for safeguarding cues (escalate / immediate danger)")
    parser.add_argument("text", nargs="?", metavar="TEXT", help="the message to screen")
    add_output_flags(parser)
    parser.set_defaults(handler=_handle)
