"""``python -m bot.web [--host H] [--port P] [--rasa-url URL] [--action-url URL]``: serve the web app."""
from __future__ import annotations

import argparse
import logging
import sys

from aiohttp import web

from bot.errors import BadInput
from bot.web.app import create_app
from bot.web.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bot.web", description="Serve the Early Help chat widget and duty inbox")
    parser.add_argument("--host", help="address to listen on (default $EARLYHELP_HOST or 127.0.0.1)")
    parser.add_argument("--port", type=int, help="port (default $EARLYHELP_PORT or 8080)")
    parser.add_argument("--rasa-url", help="Rasa's address (default $EARLYHELP_RASA_URL or http://127.0.0.1:5005)")
    parser.add_argument("--action-url", help="the action server's address, for /readyz (default $EARLYHELP_ACTION_URL)")
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s %(message)s")
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)  # access lines would hold paths and addresses
    overrides = {k: v for k, v in {"host": args.host, "port": args.port,
                                    "rasa_url": args.rasa_url and args.rasa_url.rstrip("/"),
                                    "action_url": args.action_url and args.action_url.rstrip("/")}.items() if v}
    try:
        settings = Settings.from_env(**overrides)
    except BadInput as err:
        print(f"earlyhelp web: {err}", file=sys.stderr)
        return 2
    # Escalation commits run in threads beside the screen's and redaction's CPU-bound threads, all under one
    # GIL: with Python's 5 ms switch interval a commit's p99 was 61 ms beside one busy thread, 15 ms at 1 ms
    # (bench/escalation.py --gil, 2026-11-29; the target is 20 ms).
    sys.setswitchinterval(0.001)
    print(f"Early Help web app on http://{settings.host}:{settings.port} (Rasa {settings.rasa_url})", flush=True)
    web.run_app(create_app(settings), host=settings.host, port=settings.port, print=None, access_log=None)
    return 0


if __name__ == "__main__":
    sys.exit(main())
