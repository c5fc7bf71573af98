"""The ``earlyhelp`` command line.

Each command lives in its own module with a ``register(subparsers)`` function, so the part of the
project that owns a capability also owns its command; this file only assembles them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

# command -> the module that owns it (imported only when that command runs, so `earlyhelp contacts`
# does not pay for loading the directory's search index or the embedding model)
COMMANDS = {
    "contacts": "bot.cli.contacts",
    "pathway": "bot.cli.pathways",
    "areas": "bot.cli.areas",
    "safeguarding": "bot.cli.safeguarding",
    "triage": "bot.cli.triage",
    "escalations": "bot.cli.escalations",
    "users": "bot.cli.users",
    "privacy": "bot.cli.privacy",
    "report": "bot.cli.report",
    "directory": "directory.cli",
}
COMMAND_MODULES = tuple(dict.fromkeys(COMMANDS.values()))


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earlyhelp", description="UK Early Help assistant tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    names = [COMMANDS[command]] if command in COMMANDS else COMMAND_MODULES
    for name in names:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a capability not built yet is simply absent
            if err.name == name:
                continue
            raise
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
