"""Shared behaviour of every command: ``--json``, ``--batch`` (JSON Lines in, one line out per line in)
and exit codes (0 success, 2 bad usage or bad input).

A command supplies one function ``answer(request: dict) -> dict``; this module feeds it either from the
command-line arguments or from each batch line, so single and batch answers can never drift apart.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable

from bot.errors import BadInput

Answer = Callable[[dict[str, Any]], dict[str, Any]]
Render = Callable[[dict[str, Any]], str]


def add_output_flags(parser: argparse.ArgumentParser, batch: bool = True) -> None:
    parser.add_argument("--json", action="store_true", help="print one JSON document on stdout")
    if batch:
        parser.add_argument(
            "--batch", action="store_true", help="read JSON Lines on stdin, write one JSON line per line in"
        )


def print_json(doc: Any) -> None:
    sys.stdout.write(json.dumps(doc, ensure_ascii=False, default=str) + "\n")
    sys.stdout.flush()


def fail(message: str, as_json: bool) -> int:
    """Report bad input the same way everywhere and return exit code 2."""
    if as_json:
        print_json({"error": message})
    print(f"earlyhelp: {message}", file=sys.stderr)
    return 2


def run(args: argparse.Namespace, answer: Answer, request: dict[str, Any], render: Render) -> int:
    """Answer one request from the command line, or every line of stdin with ``--batch``."""
    if getattr(args, "batch", False):
        return run_batch(answer, sys.stdin)
    try:
        doc = answer(request)
    except BadInput as err:
        return fail(str(err), args.json)
    if args.json:
        print_json(doc)
    else:
        print(render(doc))
    return 0


def run_batch(answer: Answer, lines: Any) -> int:
    for raw in lines:
        if not raw.strip():
            continue
        try:
            request = json.loads(raw)
            if not isinstance(request, dict):
                raise BadInput("each line must be a JSON object")
            doc = answer(request)
        except json.JSONDecodeError as err:
            doc = {"error": f"line is not valid JSON: {err.msg}"}
        except BadInput as err:
            doc = {"error": str(err)}
        print_json(doc)
    return 0


def field(request: dict[str, Any], name: str, kind: type, required: bool = False, default: Any = None) -> Any:
    """Read one field of a request with a clear message for a missing or mistyped value."""
    value = request.get(name, default)
    if value is None:
        if required:
            raise BadInput(f"'{name}' is required")
        return default
    if kind is int and isinstance(value, bool) or not isinstance(value, kind):
        raise BadInput(f"'{name}' must be {kind.__name__}, got {type(value).__name__}")
    return value
