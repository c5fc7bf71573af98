"""Shared pieces of the tests in tests/bot."""
from __future__ import annotations

import json
from pathlib import Path

from bot.safeguarding.classifier import BLIND_SETS, TRAINING_FILES

REPO = Path(__file__).resolve().parents[2]


def safeguarding_wording_seen() -> set[str]:
    """Every message (lower case) of the safeguarding sets the screen is trained on or measured with blind:
    the pinned-situation tests use wording found in none of them, so they check a situation is covered, not a
    sentence learnt or a blind set leaked."""
    seen: set[str] = set()
    for name in (*TRAINING_FILES, *(f"tests/data/{blind}" for blind in BLIND_SETS)):
        for line in (REPO / name).read_text(encoding="utf-8").splitlines():
            if line.strip():
                seen.add(json.loads(line)["text"].lower())
    return seen
