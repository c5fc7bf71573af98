"""`earlyhelp privacy export|erase|audit` for a data protection officer, through the real console script,
on real SQLite databases: the project's own and a tracker store shaped like Rasa's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import sqlalchemy as sa

from bot.escalation.store import EscalationStore

EARLYHELP = Path(sys.executable).parent / "earlyhelp"


def run(home: Path, *args: str) -> tuple[int, dict]:
    done = subprocess.run([str(EARLYHELP), "privacy", *args, "--json"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "EARLYHELP_HOME": str(home)})
    return done.returncode, json.loads(done.stdout.strip().splitlines()[-1])


def rasa_like_tracker(home: Path, rows: list[tuple[str, str, dict]]) -> None:
    """The columns Rasa 3.6's SQLTrackerStore writes (rasa/core/tracker_store.py SQLEvent)."""
    engine = sa.create_engine(f"sqlite:///{home / 'rasa-tracker.db'}")
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER PRIMARY KEY, sender_id VARCHAR(255) NOT NULL, "
                             "type_name VARCHAR(255) NOT NULL, timestamp FLOAT, intent_name VARCHAR(255), "
                             "action_name VARCHAR(255), data TEXT)")
        for i, (sender, kind, data) in enumerate(rows):
            conn.exec_driver_sql("INSERT INTO events (sender_id, type_name, timestamp, data) VALUES (?, ?, ?, ?)",
                                 (sender, kind, 1_700_000_000 + i, json.dumps({"event": kind, **data})))
    engine.dispose()


def test_export_then_erase_one_conversation_keeping_the_escalation(tmp_path):
    store = EscalationStore.open(f"sqlite:///{tmp_path / 'earlyhelp.db'}")
    store.record_turn("web-abc", "we live in GL5 [postcode]", area="gloucestershire", categories=[],
                      immediate_danger=False, escalate=False)
    store.record_turn("web-abc", "her dad hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.record_turn("web-other", "hello", area=None, categories=[], immediate_danger=False, escalate=False)
    store.dispose()
    rasa_like_tracker(tmp_path, [("web-abc", "user", {"text": "we live in GL5 [postcode]"}),
                                 ("web-abc", "bot", {"text": "How old is the child?"}),
                                 ("web-abc", "slot", {"name": "area", "value": "gloucestershire"}),
                                 ("web-abc", "action", {"name": "action_listen"}),
                                 ("web-other", "user", {"text": "hello"})])

    code, exported = run(tmp_path, "export", "--session", "web-abc", "--actor", "dpo")
    assert code == 0
    assert [t["text_redacted"] for t in exported["recorded_turns"]] == ["we live in GL5 [postcode]", "her dad hits her"]
    assert len(exported["escalations"]) == 1 and exported["escalations"][0]["area"] == "gloucestershire"
    assert [e["event"] for e in exported["assistant_tracker"]] == ["user", "bot", "slot"]  # not the internals
    assert "hello" not in json.dumps(exported)  # nobody else's conversation

    code, erased = run(tmp_path, "erase", "--session", "web-abc", "--actor", "dpo")
    assert code == 0 and erased["kept_for_safeguarding"] and "safeguarding" in erased["note"]
    assert erased["tracker_events"] == 4 and erased["messages"] == 1 and erased["kept_messages"] == 1

    code, after = run(tmp_path, "export", "--session", "web-abc")
    assert [t["text_redacted"] for t in after["recorded_turns"]] == ["her dad hits her"]  # kept with its escalation
    assert after["assistant_tracker"] == []
    code, other = run(tmp_path, "export", "--session", "web-other")
    assert [t["text_redacted"] for t in other["recorded_turns"]] == ["hello"]  # untouched

    code, audit = run(tmp_path, "audit")
    assert [a["action"] for a in audit["audit"]] == ["conversation_exported", "conversation_erased",
                                                     "conversation_exported", "conversation_exported"]
    assert "web-abc" not in json.dumps(audit) and "dad" not in json.dumps(audit)  # hashes and counts only


def test_an_empty_session_is_refused_with_exit_code_2(tmp_path):
    code, doc = run(tmp_path, "erase", "--session", "  ")
    assert code == 2 and "session" in doc["error"]


def test_retention_erases_conversations_past_their_period_and_keeps_escalated_messages(tmp_path):
    import datetime as dt

    from bot.privacy.retention import load_policy, purge

    db = f"sqlite:///{tmp_path / 'earlyhelp.db'}"
    old = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    store = EscalationStore.open(db, clock=lambda: old)
    store.record_turn("web-old", "we are in Stroud", area="gloucestershire", categories=[], immediate_danger=False,
                      escalate=False)
    store.record_turn("web-old", "he hits her", area="gloucestershire", categories=["physical_abuse"],
                      immediate_danger=False, escalate=True)
    store.dispose()
    store = EscalationStore.open(db)  # today
    store.record_turn("web-new", "hello", area=None, categories=[], immediate_danger=False, escalate=False)
    store.dispose()
    days = load_policy().conversation_days("gloucestershire")
    now = old + dt.timedelta(days=days + 1)

    due = purge(now, dry_run=True, db_url=db, tracker=f"sqlite:///{tmp_path / 'no-tracker.db'}")
    assert due.conversations == 1 and due.messages == 0  # counted, nothing erased
    done = purge(now, db_url=db, tracker=f"sqlite:///{tmp_path / 'no-tracker.db'}")
    assert done.conversations == 1 and done.messages == 1 and done.kept_messages == 1
    store = EscalationStore.open(db)
    assert [m["text_redacted"] for m in store.messages("web-old")] == ["he hits her"]
    assert [m["text_redacted"] for m in store.messages("web-new")] == ["hello"]
    store.dispose()
    code, audit = run(tmp_path, "audit")
    purges = [a for a in audit["audit"] if a["action"] == "retention_purge"]
    assert len(purges) == 1 and purges[0]["detail"]["conversations"] == 1  # counts, never content
