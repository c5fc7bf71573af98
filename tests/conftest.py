"""Shared fixtures: every test run gets its own $EARLYHELP_HOME, so tests never touch var/."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

# Set before any project module computes a path.
_HOME = Path(tempfile.mkdtemp(prefix="earlyhelp-test-home-"))
os.environ.setdefault("EARLYHELP_HOME", str(_HOME))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("RASA_TELEMETRY_ENABLED", "false")

REPO = Path(__file__).resolve().parents[1]
EARLYHELP = REPO / ".venv" / "bin" / "earlyhelp"


@pytest.fixture(scope="session")
def test_home() -> Path:
    return Path(os.environ["EARLYHELP_HOME"])


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    """A real action server and Rasa server (bot.runner.Stack), started once for every test that talks to
    the real assistant: the end-to-end conversations and the web app's stack tests share it, since each
    start costs a model load of both."""
    from bot.runner import Stack, free_port, train

    state = Path(tmp_path_factory.mktemp("stack"))
    running = Stack(rasa_port=free_port(), action_port=free_port(), state=state)
    running.start(model=train())
    yield running
    running.stop()
