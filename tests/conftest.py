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
