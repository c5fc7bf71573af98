"""The crash test: a turn-recording process and two delivery workers SIGKILLed at random moments.

Every escalation whose id reached the "person" (was printed after ``record_turn`` returned) must be
stored exactly once and delivered at least once, the receiver must never count a notification twice,
and after a final drain no outbox row may be left pending.
"""
from __future__ import annotations

from collections import Counter

import sqlalchemy as sa

from bot.escalation import EscalationStore
from tests.bot.escalation.harness import chaos

CYCLES = 20


def test_nothing_is_lost_or_doubled_when_processes_are_killed(tmp_path):
    result = chaos(tmp_path / "chaos", CYCLES, gap=(0.4, 1.1), lease=1.0, seed=20261127, writer_turns=2)
    assert sum(result.kills.values()) >= CYCLES and result.kills["writer"] >= 5
    printed = [p for p in result.printed if p["id"]]
    assert len(printed) >= 10, "the writer should have answered some escalating turns between kills"

    store = EscalationStore.open(result.url, channels=["inbox", "webhook"])
    stored = {e["id"]: e for e in store.list()}
    with store.engine.connect() as conn:
        per_message = conn.execute(sa.text(
            "SELECT m.message_id, count(DISTINCT m.id), count(e.id) FROM esc_messages m "
            "LEFT JOIN esc_escalations e ON e.message_pk = m.id GROUP BY m.session_id, m.message_id")).all()
    store.dispose()

    # every id a person saw is stored; a resent message (the writer restarts from the first unanswered
    # turn) gave back the same escalation, never a second one
    assert {p["id"] for p in printed} <= set(stored)
    by_turn: dict[int, set] = {}
    for p in result.printed:
        by_turn.setdefault(p["n"], set()).add(p["id"])
    assert all(len(ids) == 1 for ids in by_turn.values())
    assert all(messages == 1 and escalations <= 1 for _mid, messages, escalations in per_message)
    assert len(stored) == sum(escalations for *_x, escalations in per_message)

    # delivered at least once to each channel; counted once per key by the receiver
    accepted = Counter(a["key"] for a in result.accepted)
    assert all(n == 1 for n in accepted.values())
    created = Counter(a["escalation_id"] for a in result.accepted if a["event"] == "escalation.created")
    assert set(created) == set(stored), "every stored escalation reached the receiver, and nothing else did"
    assert all(n == 1 for n in created.values())
    assert all(e["inbox_visible_at"] for e in stored.values())
    assert result.outbox.get("pending", 0) == 0 and result.outbox.get("sending", 0) == 0
    assert result.outbox.get("delivered") == 2 * len(stored)
    # a notification whose response was lost was sent again under the same key, and deduped by the receiver
    outcomes = Counter(a["outcome"].split("+")[0] for a in result.arrivals)
    assert outcomes["accepted"] == len(accepted)
    lost = {a["key"] for a in result.arrivals if a["outcome"] == "accepted+lost"}
    repeated = {a["key"] for a in result.arrivals if a["outcome"].startswith("duplicate")}
    assert lost <= repeated
