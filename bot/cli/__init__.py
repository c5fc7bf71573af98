"""The ``earlyhelp`` command line.

Each command lives in its own module with a ``register(subparsers)`` function, so the part of the
project that owns a capability also owns its command; this file only assembles them.
"""
from __future__ import annotations

import argparse
import importlib
import sys

COMMAND_MODULES = (
    "bot.cli.contacts",
    "bot.cli.pathways",
    "bot.cli.areas",
    "bot.cli.safeguarding",
    "bot.cli.triage",
    "bot.cli.escalations",
    "directory.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="earlyhelp", description="UK Early Help assistant tools")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:  # a capability not built yet is simply absent
            if err.name == name:
                continue
            raise
        module.register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
