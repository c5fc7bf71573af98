"""The crash test: a turn-recording process and two delivery workers SIGKILLed at random moments.

Every escalation whose id reached the "person" (was printed after ``record_turn`` returned) must be
stored exactly once and delivered at least once, the receiver must never count a notification twice,
and after a final drain no outbox row may be left pending. The guarantees are checked by
``harness.check_chaos`` (the same checks as the crash test on the real web app, ``webcrash.check``).
"""
from __future__ import annotations

from collections import Counter

from tests.bot.escalation.harness import chaos, check_chaos

CYCLES = 20


def test_nothing_is_lost_or_doubled_when_processes_are_killed(tmp_path):
    result = chaos(tmp_path / "chaos", CYCLES, gap=(0.4, 1.1), lease=1.0, seed=20261127, writer_turns=2)
    assert sum(result.kills.values()) >= CYCLES and result.kills["writer"] >= 5
    printed = [p for p in result.printed if p["id"]]
    assert len(printed) >= 10, "the writer should have answered some escalating turns between kills"
    assert check_chaos(result) == []
    # every stored escalation went out once per channel (no reminders: the run is shorter than their delay)
    assert result.stored and result.outbox.get("delivered") == 2 * len(result.stored)
    # the receiver's faults happened, so retries under the same key were really exercised
    outcomes = Counter(a["outcome"] for a in result.arrivals)
    assert outcomes["failed"] + outcomes["accepted+lost"] >= 1 and outcomes["duplicate"] >= 1, outcomes


def test_the_checks_catch_a_lost_a_doubled_and_a_stuck_escalation(tmp_path):
    """The checks themselves can fail: a doctored result with one escalation missing at the receiver, one
    counted twice, one answered but not stored and one outbox row still pending gives a problem for each."""
    from tests.bot.escalation.harness import ChaosResult, CrashOutcome, guarantee_problems

    stored = {"e1": {"inbox_visible_at": "t"}, "e2": {"inbox_visible_at": None}}
    accepted = [{"key": "e1/webhook/created", "escalation_id": "e1", "event": "escalation.created"}]
    arrivals = [{"key": "e1/webhook/created", "outcome": "accepted+lost"}]
    problems = guarantee_problems(CrashOutcome(
        url="", cycles=0, stored=stored, per_message=[("m1", 1, 1), ("m2", 1, 1), ("m3", 2, 0)], accepted=accepted,
        arrivals=arrivals, outbox={"pending": 1, "delivered": 3}))
    text = "\n".join(problems)
    for expected in ("1 stored escalations never reached the webhook receiver", "never reached the duty inbox",
                     "message m3: 2 turns", "1 outbox rows left pending", "response was lost were never sent again"):
        assert expected in text, problems
    doubled = accepted + [dict(accepted[0], key="e1/webhook/created#2")]
    assert any("created 2 times" in p for p in guarantee_problems(CrashOutcome(
        url="", cycles=0, stored={"e1": stored["e1"]}, per_message=[("m1", 1, 1)], accepted=doubled)))
    result = ChaosResult(url="", cycles=0, printed=[{"n": 1, "id": "e9"}, {"n": 1, "id": "e8"}])
    chaos_problems = check_chaos(result)
    assert any("answered escalations are not stored" in p for p in chaos_problems)
    assert any("turn 1 was answered with 2 different results" in p for p in chaos_problems)
