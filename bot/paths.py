"""Where the project's files and state live.

Knowledge (facts with sources) ships with the code under ``knowledge/``; everything written at run time
lives under ``$EARLYHELP_HOME`` (default ``var/`` in the checkout) so two homes never share anything.
"""
from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def knowledge_dir() -> Path:
    """The folder of validated fact files (areas, national services, indicator and cue banks)."""
    return Path(os.environ.get("EARLYHELP_KNOWLEDGE", REPO_ROOT / "knowledge"))


def home() -> Path:
    """The state folder for this deployment or test run; created on first use."""
    path = Path(os.environ.get("EARLYHELP_HOME", REPO_ROOT / "var"))
    path.mkdir(parents=True, exist_ok=True)
    return path
