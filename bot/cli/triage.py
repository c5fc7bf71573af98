"""``earlyhelp triage [--area A] TEXT``: the level of need for what someone said, with the reasons.

    earlyhelp triage "my son hasn't been to school for weeks" --area gloucestershire
    earlyhelp triage --json "..."                    # the assessment as JSON (Assessment.to_dict)
    echo '{"text": "...", "area": "buckinghamshire", "answers": {"age": 9}}' | earlyhelp triage --batch
"""
from __future__ import annotations

from bot.cli.common import add_output_flags, field, run
from bot.errors import BadInput


def answer(request: dict) -> dict:
    text = request.get("text")
    if isinstance(text, list):
        if not all(isinstance(t, str) for t in text):
            raise BadInput("'text' must be a string or a list of strings")
        messages = text
    else:
        messages = [field(request, "text", str, required=True)]
    if not any(m.strip() for m in messages):
        raise BadInput("'text' is empty: say what is worrying you, e.g. earlyhelp triage \"my son won't go to school\"")
    area = field(request, "area", str)
    answers = field(request, "answers", dict)
    from bot.triage import assess

    return assess(messages if isinstance(text, list) else messages[0], answers=answers, area=area).to_dict()


def render(doc: dict) -> str:
    if doc.get("needs_more"):
        return doc["message"]
    lines = [f"Level {doc['level']}: {doc['label']} (shared level {doc['shared_level']} of 4, confidence {doc['confidence']:.2f})"]
    domain = None
    for reason in doc["reasons"]:
        if reason["domain"] != domain:
            domain = reason["domain"]
            lines.append(f"  {domain.replace('_', ' ')}:")
        lines.append(f"    - {reason['plain']} (level {reason['level']}, source {reason['source']})")
    for rule in doc.get("rules", []):
        lines.append(f"  rule: {rule}")
    for question in doc["next_questions"]:
        options = " / ".join(o["title"] for o in question["options"])
        lines.append(f"  to be surer: {question['text']} [{options}]")
    return "\n".join(lines)


def register(commands) -> None:
    parser = commands.add_parser("triage", help="the level of need (1-4, in the area's own words) for what someone said")
    parser.add_argument("text", nargs="?", default=None, help="what the person said (omit with --batch)")
    parser.add_argument("--area", help="area id, for the area's own level names")
    add_output_flags(parser)

    def handler(args) -> int:
        request = {"text": args.text if args.text is not None else "", "area": args.area}
        return run(args, answer, request, render)

    parser.set_defaults(handler=handler)
