"""The same end-to-end conversations as the single stack's (``tests/e2e/test_conversations.py``), through
the scaled stack: nginx's Rasa pool, two Rasa instances with the tracker in PostgreSQL and the turn lock in
Redis, two action servers with the directory in PostgreSQL. Every test of that module runs here again
unchanged, with ``conversation`` talking to the pool instead of the single Rasa, so a conversation that
works on one machine and breaks behind the load balancer (a slot lost between instances, a turn out of
order, an action server without the directory) fails here."""
from __future__ import annotations

import pytest

from tests.e2e import test_conversations as single_stack
from tests.e2e.conftest import Conversation

pytestmark = pytest.mark.e2e


@pytest.fixture
def conversation(scaled) -> Conversation:
    return Conversation(scaled.rasa_url)


# collected again in this module, where ``conversation`` is the scaled stack's
globals().update({name: test for name, test in vars(single_stack).items() if name.startswith("test_")})
