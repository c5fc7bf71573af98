"""``earlyhelp triage [--area A] TEXT``: the level of need for what someone said, with the reasons.

    earlyhelp triage "my son hasn't been to school for weeks" --area gloucestershire
    earlyhelp triage --json "..."                    # the assessment as JSON (Assessment.to_dict)
    earlyhelp triage --answer harm=no --answer needs_count=3 "..."   # with follow-up answers (or age, speaker)
    earlyhelp triage --questions --json              # the follow-up question bank
    echo '{"text": "...", "area": "buckinghamshire", "answers": {"age": 9}}' | earlyhelp triage --batch
"""
from __future__ import annotations

from bot.cli.common import add_output_flags, field, print_json, run
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


def _questions_text(questions: list[dict]) -> list[str]:
    lines = []
    for question in questions:
        options = " / ".join(f"{o['title']} ({question['id']}={o['value']})" for o in question["options"])
        lines.append(f"  to be surer: {question['text']} [{options}]")
    return lines


def render(doc: dict) -> str:
    if doc.get("needs_more"):
        return "\n".join([doc["message"], *_questions_text(doc.get("next_questions", []))])
    lines = [f"Level {doc['level']}: {doc['label']} (shared level {doc['shared_level']} of 4, confidence {doc['confidence']:.2f})"]
    domain = None
    for reason in doc["reasons"]:
        if reason["domain"] != domain:
            domain = reason["domain"]
            lines.append(f"  {domain.replace('_', ' ')}:")
        lines.append(f"    - {reason['plain']} (level {reason['level']}, source {reason['source']})")
    for rule in doc.get("rules", []):
        lines.append(f"  rule: {rule}")
    lines.extend(_questions_text(doc["next_questions"]))
    if doc.get("explanation"):
        lines.append("")
        lines.append(doc["explanation"])
    return "\n".join(lines)


def _answers(pairs: list[str] | None) -> dict | None:
    """``--answer id=value`` pairs as the answers mapping (checked by the triage itself)."""
    if not pairs:
        return None
    out: dict = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--answer needs QUESTION=VALUE, e.g. --answer harm=no (got {pair!r})")
        out[key.strip()] = value.strip()
    return out


def register(commands) -> None:
    parser = commands.add_parser("triage", help="the level of need (1-4, in the area's own words) for what someone said")
    parser.add_argument("text", nargs="?", default=None, help="what the person said (omit with --batch)")
    parser.add_argument("--area", help="area id, for the area's own level names")
    parser.add_argument("--answer", action="append", metavar="QUESTION=VALUE",
                        help="a structured answer (harm, needs_count, support, how_long, age, speaker); repeatable")
    parser.add_argument("--questions", action="store_true", help="print the follow-up question bank and exit")
    add_output_flags(parser)

    def handler(args) -> int:
        if args.questions:
            from bot.triage import questions

            bank = {"questions": list(questions().values())}
            if args.json:
                print_json(bank)
            else:
                for question in bank["questions"]:
                    print(f"{question['id']}: {question['text']}")
                    for option in question["options"]:
                        print(f"  - {option['title']} ({option['value']}): {option['means']}")
            return 0

        def one(request: dict) -> dict:
            request = dict(request)
            request["answers"] = _answers(args.answer)
            return answer(request)

        request = {"text": args.text if args.text is not None else "", "area": args.area}
        return run(args, one if not args.batch else answer, request, render)

    parser.set_defaults(handler=handler)
