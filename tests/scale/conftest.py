"""The scaled stack (PostgreSQL, Redis, nginx, two of each server), started ONCE for the scale tests.

It is the same ``ScaledStack`` that ``python -m bot.scaled run`` starts, on a throw-away PostgreSQL
cluster and redis-server, with nginx on loopback ports. Skipped, saying what is missing, only when the
PostgreSQL, Redis or nginx binaries are not installed.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from bot.runner import free_port, train
from bot.scaled import ScaledStack, missing
from tests.scale.support import WebChat, rasa_say


@pytest.fixture(scope="session")
def scaled(tmp_path_factory):
    lacking = missing({})  # always a throw-away cluster and redis-server: never a configured one
    if lacking:
        pytest.skip("scaled stack not runnable here: " + "; ".join(lacking))
    state = Path(tmp_path_factory.mktemp("scaled"))
    stack = ScaledStack(state=state, web_host="127.0.0.1", web_port=free_port(),
                        extra_env={"HF_HUB_OFFLINE": "1", "EARLYHELP_WEB_DELIVERY": "1"})
    stack.start(model=train(), timeout=600)
    warm_up(stack)
    yield stack
    stack.stop()


def warm_up(stack: ScaledStack) -> None:
    """Two conversations through the Rasa pool, so each Rasa instance and action server has taken each
    kind of turn once (first calls load models and indexes) before the tests time anything."""
    for n in range(2):
        for message in ("/identify_parent", "we live in Stroud", "she's 2",
                        "my toddler isn't talking yet and I'm worried she's behind", "/affirm"):
            rasa_say(stack.rasa_url, f"warm-up-{n}", message)


@pytest.fixture
def web_chat(scaled) -> WebChat:
    return WebChat(scaled.public_url).open()
