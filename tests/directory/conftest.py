"""Directory test fixtures: real SQLite files, the real FAISS/numpy index and the real embedding model.

Every store lives under this run's temporary $EARLYHELP_HOME (set in tests/conftest.py), never in var/.
"""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from directory import Directory

FIXTURES = Path(__file__).resolve().parents[1] / "data" / "directory_fixtures"
QUERIES = Path(__file__).resolve().parents[1] / "data" / "directory_queries.jsonl"


@pytest.fixture(scope="session")
def seeded(tmp_path_factory) -> Directory:
    """The default content, seeded from knowledge/directory into its own SQLite file (shared, read-only)."""
    assert "earlyhelp-test-home" in os.environ["EARLYHELP_HOME"]
    folder = tmp_path_factory.mktemp("seeded")
    directory = Directory.open(url=f"sqlite:///{folder / 'directory.db'}")
    directory.catalog()
    return directory


@pytest.fixture
def empty(tmp_path) -> Directory:
    """A fresh, empty directory for tests that write."""
    directory = Directory.open(url=f"sqlite:///{tmp_path / 'directory.db'}", seed=False)
    yield directory
    directory.close()
