"""``earlyhelp users``: duty inbox accounts.

    earlyhelp users add --username jo.duty --areas gloucestershire,buckinghamshire [--password-stdin] [--replace]
    earlyhelp users list [--json]
    earlyhelp users disable --username jo.duty

Without ``--password-stdin`` the password is asked for twice on the terminal (never as an argument, so it
is not left in the shell history or the process list). Passwords are stored as argon2id hashes.
"""
from __future__ import annotations

import argparse
import getpass
import sys

from bot.cli.common import fail, print_json
from bot.errors import BadInput


def _store():
    from bot.web.storage import WebStore

    return WebStore.open()


def _read_password(from_stdin: bool) -> str:
    if from_stdin:
        line = sys.stdin.readline()
        return line.rstrip("\r\n")
    if not sys.stdin.isatty():
        raise BadInput("no terminal to ask for the password: use --password-stdin")
    first = getpass.getpass("Password: ")
    second = getpass.getpass("Password again: ")
    if first != second:
        raise BadInput("the two passwords differ")
    return first


def add(args: argparse.Namespace) -> int:
    try:
        areas = [a.strip() for a in args.areas.split(",") if a.strip()]
        password = _read_password(args.password_stdin)
        user = _store().add_user(args.username, password, areas, replace=args.replace)
    except BadInput as err:
        return fail(str(err), args.json)
    if args.json:
        print_json({"username": user.username, "areas": list(user.areas)})
    else:
        print(f"Saved duty account {user.username} for {', '.join(user.areas)}.")
    return 0


def list_users(args: argparse.Namespace) -> int:
    users = _store().users()
    if args.json:
        print_json({"users": users})
    elif not users:
        print("No duty accounts yet. Add one with: earlyhelp users add --username NAME --areas AREA")
    else:
        for u in users:
            print(f"{u['username']}: {', '.join(u['areas'])}{' (disabled)' if u['disabled'] else ''}")
    return 0


def disable(args: argparse.Namespace) -> int:
    try:
        _store().disable_user(args.username)
    except BadInput as err:
        return fail(str(err), args.json)
    if args.json:
        print_json({"username": args.username, "disabled": True})
    else:
        print(f"Disabled {args.username} and ended their logins.")
    return 0


def register(commands) -> None:
    parser = commands.add_parser("users", help="duty inbox accounts", description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="users_command", required=True, metavar="ACTION")

    p = sub.add_parser("add", help="add (or with --replace, change) a duty account")
    p.add_argument("--username", required=True)
    p.add_argument("--areas", required=True, help="area ids, comma separated (see `earlyhelp areas`)")
    p.add_argument("--password-stdin", action="store_true", help="read the password from the first line of stdin")
    p.add_argument("--replace", action="store_true", help="change the password and areas of an existing account")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=add)

    p = sub.add_parser("list", help="list duty accounts")
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=list_users)

    p = sub.add_parser("disable", help="disable a duty account and end its logins")
    p.add_argument("--username", required=True)
    p.add_argument("--json", action="store_true")
    p.set_defaults(handler=disable)
