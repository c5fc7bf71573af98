"""Start the action server: rasa-sdk's own app, bound to loopback, refusing calls without the token.

Plain ``rasa run actions`` listens on every interface with no authentication; anyone who could reach
it could run our actions with a forged tracker. The runner gives both sides the same random
``EARLYHELP_ACTION_TOKEN``; Rasa sends it in a request header (``action_endpoint.headers``), not as
Rasa's ``token`` query parameter, because a query string ends up in proxies' error logs (nginx writes the
request line of a refused request).
"""
from __future__ import annotations

import argparse
import hmac
import logging
import os

from rasa_sdk.endpoint import create_app
from rasa_sdk.executor import ActionExecutor
from sanic import Sanic, response

from bot.runner import ACTION_TOKEN_HEADER as TOKEN_HEADER  # the one name both sides use


def build_app(token: str | None) -> Sanic:
    executor = ActionExecutor()
    executor.register_package("actions.actions")
    app = create_app(executor, cors_origins=[])

    @app.on_request
    async def require_token(request):
        if request.path == "/health":
            return None
        given = request.headers.get(TOKEN_HEADER, "")
        if not token or not hmac.compare_digest(given, token):
            return response.json({"error": "forbidden"}, status=403)
        return None

    @app.before_server_start
    async def warm_up(_app, _loop):
        # Load the embedding model and indexes before the first person waits for them.
        from actions.actions import warm_up as warm

        warm()

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description="Early Help action server (loopback only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=5055)
    args = parser.parse_args()
    logging.basicConfig(level=os.environ.get("EARLYHELP_LOG_LEVEL", "WARNING"))
    app = build_app(os.environ.get("EARLYHELP_ACTION_TOKEN"))
    app.run(host=args.host, port=args.port, single_process=True, access_log=False, motd=False)


if __name__ == "__main__":
    main()
