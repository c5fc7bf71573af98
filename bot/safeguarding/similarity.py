"""Paraphrase safety net: compare a message that matched no cue with short exemplars of each risk.

Only ever makes a screening *unsure* (one gentle safety question); an escalation always comes from a
cue in the bank, so the false-alarm rate is set by the curated bank alone. If the embedding model cannot
load (no weights, no memory) this step switches itself off for the rest of the process and screening
carries on with the cue bank ("degraded" mode).

Off by default, on measurement (``bench/safeguarding.py``): on the dev set it adds no escalation (by
design) and turns only a few paraphrases into "unsure", while on a shared 2-core machine one embedding
call costs ~20 ms with one torch thread and ~700 ms with two contending threads, on every message that
matched no cue. ``EARLYHELP_SAFEGUARDING_EMBEDDINGS=1`` turns it on.
"""
from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.paths import knowledge_dir
from bot.safeguarding.cues import CATEGORIES, CueBankError, _read_yaml, _validate

log = logging.getLogger(__name__)
EXEMPLARS_FILE = "exemplars.yml"
_SENTENCES = re.compile(r"(?<=[.!?;\n])\s+")
MAX_SENTENCES = 6
MIN_WORDS = 3

_state = {"failed": False}


class _Exemplar(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    category: str
    name: str = Field(min_length=3, max_length=80)
    texts: list[str] = Field(min_length=1)

    @field_validator("category")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in CATEGORIES:
            raise ValueError(f"unknown category {value!r}")
        return value


class _ExemplarFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    version: int
    last_reviewed: str
    threshold: float = Field(gt=0, lt=1)
    exemplars: list[_Exemplar] = Field(min_length=1)


@dataclass(frozen=True)
class Near:
    category: str
    name: str
    score: float


def load_exemplars(directory: Path | str | None = None) -> _ExemplarFile:
    folder = Path(directory) if directory is not None else knowledge_dir() / "safeguarding"
    path = folder / EXEMPLARS_FILE
    return _validate(_ExemplarFile, path, _read_yaml(path))


def enabled() -> bool:
    return os.environ.get("EARLYHELP_SAFEGUARDING_EMBEDDINGS", "0") == "1" and not _state["failed"]


@lru_cache(maxsize=1)
def _index():
    from bot.embeddings import embed

    data = load_exemplars()
    labels = [(e.category, e.name) for e in data.exemplars for _ in e.texts]
    vectors = embed([t for e in data.exemplars for t in e.texts])
    return data.threshold, labels, vectors


def nearest(text: str) -> Near | None:
    """The closest exemplar above the threshold, or None (also None when switched off or broken)."""
    if not enabled() or len(text.split()) < MIN_WORDS:
        return None
    try:
        from bot.embeddings import embed

        threshold, labels, vectors = _index()
        parts = [p for p in _SENTENCES.split(text[:2000]) if len(p.split()) >= MIN_WORDS][:MAX_SENTENCES]
        if not parts:
            return None
        scores = embed(parts) @ vectors.T
        best = scores.max(axis=0)
        i = int(best.argmax())
        if float(best[i]) < threshold:
            return None
        category, name = labels[i]
        return Near(category, name, float(best[i]))
    except CueBankError:
        raise
    except Exception:  # noqa: BLE001 - the model is optional; the cue bank still screens
        _state["failed"] = True
        log.warning("safeguarding: embedding model unavailable, screening with the cue bank only", exc_info=True)
        return None
