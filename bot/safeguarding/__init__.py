"""Safeguarding cue detection: runs on every message, before any conversation logic.

```python
from bot.safeguarding import screen, Screening, CATEGORIES, recommended_lines
s = screen("he hits me n says dont tell")
s.escalate, s.immediate_danger, s.categories, s.matched, s.unsure, s.to_dict()
recommended_lines(s.categories, "young_person")   # -> ["childline"]
Screener(weights=other_weights)(text)             # the same screen with other classifier weights
```

Pure Python (no Rasa). The cue bank is data: ``knowledge/safeguarding/*.yml``.
"""
from __future__ import annotations

from bot.safeguarding.cues import CATEGORIES, SPEAKERS, CueBankError, default_bank, load_bank
from bot.safeguarding.detector import Screener, Screening, screen

__all__ = ["CATEGORIES", "SPEAKERS", "Screener", "Screening", "screen", "recommended_lines", "CueBankError", "load_bank"]


def recommended_lines(categories: list[str], speaker: str | None) -> list[str]:
    """National service ids that fit these categories and this speaker, most fitting first, no repeats.

    ``speaker`` is "parent", "young_person", "professional" or None (unknown: a mix fit for anyone).
    Unknown categories are ignored; an unknown speaker is treated as None. The mapping lives in
    ``knowledge/safeguarding/lines.yml``.
    """
    lines = default_bank().lines
    key = speaker if speaker in SPEAKERS else "default"
    out: list[str] = []
    for category in categories or []:
        by_speaker = lines.get(category)
        if not by_speaker:
            continue
        for service in by_speaker.get(key, by_speaker["default"]):
            if service not in out:
                out.append(service)
    return out
