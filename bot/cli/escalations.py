"""``earlyhelp escalations ...``: the duty team's queue from the command line, and the delivery worker.

```sh
earlyhelp escalations list [--status open] [--area A ...] [--json]
earlyhelp escalations show ID [--json]          # with its audit log
earlyhelp escalations ack ID --by NAME [--json]
earlyhelp escalations note ID --by NAME --text TEXT [--json]
earlyhelp escalations close ID --by NAME [--json]
earlyhelp escalations worker [--once] [--poll SECONDS]   # delivers until Ctrl-C / SIGTERM
```
"""
from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from bot.cli.common import add_output_flags, fail, field, run
from bot.errors import BadInput


def _store():
    from bot.escalation import EscalationStore

    return EscalationStore.open()


def _found(store, escalation_id: str) -> dict:
    from bot.escalation import UnknownEscalation

    esc = store.get(escalation_id)
    if esc is None:
        raise UnknownEscalation(escalation_id)
    return esc


def answer_list(request: dict) -> dict:
    status = field(request, "status", str)
    areas = field(request, "areas", list)
    items = _store().list(status=status, areas=areas)
    return {"count": len(items), "escalations": items}


def answer_show(request: dict) -> dict:
    store = _store()
    esc = _found(store, field(request, "id", str, required=True))
    return {"escalation": esc, "audit": store.audit(esc["id"])}


def answer_ack(request: dict) -> dict:
    store = _store()
    esc = _found(store, field(request, "id", str, required=True))
    return {"escalation": store.acknowledge(esc["id"], by=field(request, "by", str, required=True))}


def answer_note(request: dict) -> dict:
    store = _store()
    esc = _found(store, field(request, "id", str, required=True))
    note = store.add_note(esc["id"], by=field(request, "by", str, required=True), text=field(request, "text", str, required=True))
    return {"note": note}


def answer_close(request: dict) -> dict:
    store = _store()
    esc = _found(store, field(request, "id", str, required=True))
    return {"escalation": store.close(esc["id"], by=field(request, "by", str, required=True))}


def _line(esc: dict) -> str:
    ack = f" ack by {esc['acknowledged_by']}" if esc["acknowledged_by"] else ""
    return (f"{esc['id']}  {esc['urgency']:<9} {esc['status']:<12} {esc['area'] or '-':<28} {esc['created_at'][:19]}"
            f"  reminders {esc['reminders']} tier {esc['tier']}{ack}\n    {', '.join(esc['categories']) or '-'}: {esc['excerpt']}")


def render_list(doc: dict) -> str:
    if not doc["escalations"]:
        return "no escalations"
    return "\n".join(_line(esc) for esc in doc["escalations"])


def render_show(doc: dict) -> str:
    lines = [_line(doc["escalation"])]
    for row in doc["audit"]:
        lines.append(f"  {row['at'][:19]}  {row['actor']:<30} {row['action']:<16} {row['detail']}")
    return "\n".join(lines)


def render_escalation(doc: dict) -> str:
    return _line(doc["escalation"])


def render_note(doc: dict) -> str:
    return f"note added at {doc['note']['at']}"


def run_worker(args: argparse.Namespace) -> int:
    from bot.escalation import DeliveryWorker

    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s")
    try:
        store = _store()
        worker = DeliveryWorker(store)
    except BadInput as err:
        return fail(str(err), False)

    async def main() -> None:
        if args.once:
            delivered = await worker.run_once()
            await worker.aclose()
            print(f"delivered {delivered}")
            return
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        print(f"escalation worker {worker.worker_id}: channels {', '.join(worker.channels)}", file=sys.stderr, flush=True)
        await worker.run_forever(poll_interval=args.poll, stop_event=stop)
        print("escalation worker stopped", file=sys.stderr, flush=True)

    asyncio.run(main())
    store.dispose()
    return 0


def register(commands) -> None:
    parser = commands.add_parser("escalations", help="the duty team's safeguarding escalations, and their delivery worker")
    sub = parser.add_subparsers(dest="escalations_command", required=True, metavar="ACTION")

    p = sub.add_parser("list", help="escalations, most urgent and oldest first")
    p.add_argument("--status", choices=["open", "acknowledged", "closed"])
    p.add_argument("--area", action="append", dest="areas", help="only this area (repeatable)")
    add_output_flags(p, batch=False)
    p.set_defaults(handler=lambda a: run(a, answer_list, {"status": a.status, "areas": a.areas}, render_list))

    p = sub.add_parser("show", help="one escalation with its audit log")
    p.add_argument("id")
    add_output_flags(p, batch=False)
    p.set_defaults(handler=lambda a: run(a, answer_show, {"id": a.id}, render_show))

    p = sub.add_parser("ack", help="acknowledge an escalation (stops reminders and the next tier)")
    p.add_argument("id")
    p.add_argument("--by", required=True, help="who is acknowledging")
    add_output_flags(p, batch=False)
    p.set_defaults(handler=lambda a: run(a, answer_ack, {"id": a.id, "by": a.by}, render_escalation))

    p = sub.add_parser("note", help="add a note to an escalation")
    p.add_argument("id")
    p.add_argument("--by", required=True)
    p.add_argument("--text", required=True)
    add_output_flags(p, batch=False)
    p.set_defaults(handler=lambda a: run(a, answer_note, {"id": a.id, "by": a.by, "text": a.text}, render_note))

    p = sub.add_parser("close", help="close an escalation")
    p.add_argument("id")
    p.add_argument("--by", required=True)
    add_output_flags(p, batch=False)
    p.set_defaults(handler=lambda a: run(a, answer_close, {"id": a.id, "by": a.by}, render_escalation))

    p = sub.add_parser("worker", help="deliver escalations (inbox, email, webhook, next tier) until Ctrl-C or SIGTERM")
    p.add_argument("--once", action="store_true", help="one delivery round, then exit")
    p.add_argument("--poll", type=float, default=0.5, help="seconds between rounds (default 0.5)")
    p.set_defaults(handler=run_worker)
