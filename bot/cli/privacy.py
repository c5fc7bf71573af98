"""``earlyhelp privacy``: act on a person's request about their conversation (data protection officer).

    earlyhelp privacy export --session ID [--actor NAME]   everything stored about it, as JSON
    earlyhelp privacy erase --session ID [--actor NAME]    erase it (escalations already raised are kept)
    earlyhelp privacy purge [--dry-run]                    erase conversations past their area's retention period
    earlyhelp privacy audit                                the privacy audit: who did what, counts only
    earlyhelp privacy roles grant|revoke --username U --role dpo|manager    who may use the inbox's
                                                           data protection page (dpo) or figures (manager)
    earlyhelp privacy roles list

The session id is the ``sender`` id the web app gives a chat (shown to the duty team on an escalation).
"""
from __future__ import annotations

import getpass

from bot.cli.common import fail, print_json


def _actor(args) -> str:
    return args.actor or f"cli:{getpass.getuser()}"


def _export(args) -> int:
    from bot.privacy.export import export_conversation

    if not args.session.strip():
        return fail("--session must not be empty", args.json)
    print_json(export_conversation(args.session, actor=_actor(args)))
    return 0


def _erase(args) -> int:
    from bot.privacy.erase import SAFEGUARDING_NOTE, erase_conversation

    if not args.session.strip():
        return fail("--session must not be empty", args.json)
    result = erase_conversation(args.session, actor=_actor(args))
    document = result.to_dict()
    if result.kept_for_safeguarding:
        document["note"] = SAFEGUARDING_NOTE
    print_json(document)
    return 0


def _purge(args) -> int:
    from dataclasses import asdict

    from bot.privacy.retention import purge

    print_json(asdict(purge(dry_run=args.dry_run, actor=f"retention:{_actor(args)}")))
    return 0


def _audit(args) -> int:
    from bot.db import database_url, make_engine
    from bot.privacy.erase import erasures

    engine = make_engine(database_url("earlyhelp"))
    try:
        rows = erasures(engine)
    finally:
        engine.dispose()
    print_json({"audit": [{**r, "at": r["at"].isoformat() if hasattr(r["at"], "isoformat") else r["at"]} for r in rows]})
    return 0


def _roles(args) -> int:
    from bot.errors import BadInput
    from bot.web.duty import ROLES, grant_role, revoke_role, role_holders
    from bot.web.storage import WebStore

    store = WebStore.open()
    try:
        if args.roles_command == "list":
            print_json({"roles": role_holders(store), "meaning": ROLES})
            return 0
        try:
            if args.roles_command == "grant":
                grant_role(store, args.username, args.role, by=_actor(args))
                print_json({"username": args.username, "role": args.role, "granted": True})
            else:
                done = revoke_role(store, args.username, args.role, by=_actor(args))
                print_json({"username": args.username, "role": args.role, "revoked": done})
        except BadInput as err:
            return fail(str(err), args.json)
    finally:
        store.dispose()
    return 0


def register(commands) -> None:
    parser = commands.add_parser("privacy", help="export or erase one conversation for a data protection request")
    actions = parser.add_subparsers(dest="privacy_command", required=True, metavar="ACTION")
    for name, handler, text in (("export", _export, "everything stored about one conversation, as JSON"),
                                ("erase", _erase, "erase one conversation (escalations already raised are kept)")):
        sub = actions.add_parser(name, help=text)
        sub.add_argument("--session", required=True, help="the conversation's session (sender) id")
        sub.add_argument("--actor", help="who is acting, for the audit (default: cli:<user>)")
        sub.add_argument("--json", action="store_true", help="JSON output (the only output)")
        sub.set_defaults(handler=handler)
    purge = actions.add_parser("purge", help="erase conversations past their area's retention period")
    purge.add_argument("--dry-run", action="store_true", help="count what is due, erase nothing")
    purge.add_argument("--actor", help="who is acting, for the audit")
    purge.add_argument("--json", action="store_true")
    purge.set_defaults(handler=_purge)
    audit = actions.add_parser("audit", help="the privacy audit (counts only, never text)")
    audit.add_argument("--json", action="store_true")
    audit.set_defaults(handler=_audit)
    roles = actions.add_parser("roles", help="who may use the duty inbox's data protection page or manager view")
    role_actions = roles.add_subparsers(dest="roles_command", required=True, metavar="ACTION")
    for name, text in (("grant", "give a duty account a role"), ("revoke", "take a role away")):
        sub = role_actions.add_parser(name, help=text)
        sub.add_argument("--username", required=True)
        sub.add_argument("--role", required=True, choices=["dpo", "manager"],
                         help="dpo: export or erase conversations; manager: the figures for their areas")
        sub.add_argument("--actor", help="who is acting, for the audit")
        sub.add_argument("--json", action="store_true")
        sub.set_defaults(handler=_roles)
    listing = role_actions.add_parser("list", help="every account's roles")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=_roles)
