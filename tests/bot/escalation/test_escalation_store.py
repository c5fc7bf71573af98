"""The store: one transaction per turn, idempotent message ids, the duty queue's order, audited changes."""
from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import DBAPIError

from bot.errors import BadInput
from bot.escalation import EscalationStore, UnknownEscalation, excerpt
from bot.escalation.schema import LATEST
from tests.bot.escalation.support import turn


def counts(store: EscalationStore) -> dict[str, int]:
    with store.engine.connect() as conn:
        return {t: conn.exec_driver_sql(f"SELECT count(*) FROM {t}").scalar()
                for t in ("esc_messages", "esc_escalations", "esc_outbox", "esc_audit")}


def test_an_escalating_turn_is_recorded_with_its_outbox_and_audit(db_url, clock):
    store = EscalationStore.open(db_url, channels=["inbox", "email", "webhook"], clock=clock)
    long_text = "my stepdad [redacted] hits me when mum is at work and says I must not tell anyone " * 6
    esc = store.record_turn("s1", long_text, area="gloucestershire", categories=["physical_abuse", "secrecy"],
                            immediate_danger=False, escalate=True, contact={"phone": "[redacted]"},
                            speaker="young_person", message_id="m1")
    assert esc["status"] == "open" and esc["urgency"] == "urgent" and esc["area"] == "gloucestershire"
    assert esc["categories"] == ["physical_abuse", "secrecy"]
    assert esc["created_at"] == clock.now.isoformat()
    assert esc["contact"] == {"phone": "[redacted]"}
    assert len(esc["excerpt"]) <= 280 and esc["excerpt"].endswith("…")
    assert long_text.startswith(esc["excerpt"][:-1].rstrip())
    assert sorted((d["channel"], d["kind"], d["status"]) for d in esc["deliveries"]) == [
        ("email", "created", "pending"), ("inbox", "created", "pending"), ("webhook", "created", "pending")]
    assert len({d["key"] for d in esc["deliveries"]}) == 3
    assert store.get(esc["id"]) == esc
    [created] = store.audit(esc["id"])
    assert created["action"] == "created" and created["actor"] == "system"
    assert "hits" not in str(created)  # the audit log never holds what the person said
    assert store.messages("s1")[0]["text_redacted"] == long_text
    store.dispose()


def test_an_ordinary_turn_is_stored_without_an_escalation(store):
    assert turn(store, 1, escalate=False, categories=[]) is None
    assert counts(store) == {"esc_messages": 1, "esc_escalations": 0, "esc_outbox": 0, "esc_audit": 0}


def test_immediate_danger_always_escalates_as_immediate(store):
    esc = turn(store, 1, escalate=False, immediate_danger=True)
    assert esc is not None and esc["urgency"] == "immediate"


def test_contact_is_stored_only_when_given(store):
    assert turn(store, 1)["contact"] is None
    assert turn(store, 2, contact={"email": "[redacted]"})["contact"] == {"email": "[redacted]"}


@pytest.mark.parametrize("failing_table", ["esc_escalations", "esc_outbox", "esc_audit"])
def test_a_failure_mid_transaction_leaves_nothing(store, failing_table):
    turn(store, 0)
    before = counts(store)

    def explode(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith(f"INSERT INTO {failing_table.upper()}"):
            raise RuntimeError(f"injected failure writing {failing_table}")

    event.listen(store.engine, "before_cursor_execute", explode)
    try:
        with pytest.raises(RuntimeError, match="injected failure"):
            turn(store, 1)
    finally:
        event.remove(store.engine, "before_cursor_execute", explode)
    assert counts(store) == before  # not the message, not the escalation, no outbox row, no audit row
    assert [m["message_id"] for m in store.messages("s1")] == ["m0"]
    # and nothing half-written blocks the retry of the same message
    again = turn(store, 1)
    assert again is not None and counts(store)["esc_escalations"] == 2


def test_the_same_message_id_returns_the_same_escalation(store):
    first = turn(store, 1)
    second = turn(store, 1, text="a different retry body", immediate_danger=True)
    assert second["id"] == first["id"] and second["urgency"] == "urgent"
    assert counts(store) == {"esc_messages": 1, "esc_escalations": 1, "esc_outbox": 1, "esc_audit": 1}
    assert turn(store, 2, escalate=False) is None and turn(store, 2, escalate=False) is None
    assert counts(store)["esc_messages"] == 2
    other_session = turn(store, 1, session_id="s2")
    assert other_session["id"] != first["id"]
    assert turn(store, 3, message_id=None)["id"] != turn(store, 3, message_id=None)["id"]  # no id: no dedupe


def test_concurrent_resends_of_one_message_from_two_processes_make_one_escalation(db_url, clock):
    stores = [EscalationStore.open(db_url, channels=["inbox"], clock=clock) for _ in range(4)]
    barrier = threading.Barrier(len(stores))
    results: list = []

    def send(s: EscalationStore) -> None:
        barrier.wait()
        results.append(turn(s, 7)["id"])

    threads = [threading.Thread(target=send, args=(s,)) for s in stores]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 4 and len(set(results)) == 1
    assert counts(stores[0])["esc_escalations"] == 1 and counts(stores[0])["esc_messages"] == 1
    for s in stores:
        s.dispose()


def test_list_orders_by_urgency_then_age_and_filters(store, clock):
    made = {}
    for n, (urgency, area) in enumerate([("urgent", "gloucestershire"), ("immediate", "buckinghamshire"),
                                         ("urgent", "buckinghamshire"), ("immediate", "gloucestershire")]):
        made[n] = turn(store, n, immediate_danger=urgency == "immediate", area=area)["id"]
        clock.advance(minutes=1)
    assert [e["id"] for e in store.list()] == [made[1], made[3], made[0], made[2]]
    assert [e["id"] for e in store.list(areas=["gloucestershire"])] == [made[3], made[0]]
    store.acknowledge(made[1], by="Duty SW")
    assert [e["id"] for e in store.list(status="open")] == [made[3], made[0], made[2]]
    assert [e["id"] for e in store.list(status="acknowledged")] == [made[1]]
    assert store.list(status="closed") == []
    with pytest.raises(BadInput):
        store.list(status="everything")


def test_acknowledge_note_and_close_are_each_audited(store, clock):
    esc = turn(store, 1)
    clock.advance(minutes=3)
    acked = store.acknowledge(esc["id"], by="A. Duty")
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "A. Duty"
    assert acked["acknowledged_at"] == clock.now.isoformat()
    again = store.acknowledge(esc["id"], by="B. Other")  # a second acknowledgement changes nothing
    assert again["acknowledged_by"] == "A. Duty"
    clock.advance(minutes=1)
    note = store.add_note(esc["id"], by="A. Duty", text="Phoned the school; DSL aware.")
    assert note["action"] == "note" and note["detail"] == {"text": "Phoned the school; DSL aware."}
    clock.advance(minutes=1)
    closed = store.close(esc["id"], by="A. Duty")
    assert closed["status"] == "closed" and closed["closed_by"] == "A. Duty"
    assert store.close(esc["id"], by="A. Duty")["closed_at"] == closed["closed_at"]
    trail = store.audit(esc["id"])
    assert [(a["action"], a["actor"]) for a in trail] == [
        ("created", "system"), ("acknowledged", "A. Duty"), ("note", "A. Duty"), ("closed", "A. Duty")]
    assert trail[1]["detail"] == {"after_seconds": 180.0}
    assert [a["at"] for a in trail] == sorted(a["at"] for a in trail)


def test_contact_given_later_and_views_are_audited_without_the_details(store):
    esc = turn(store, 1, contact={"phone": "[redacted phone]"})
    updated = store.add_contact(esc["id"], {"email": "[redacted email]"}, by="the person, in the chat")
    assert updated["contact"] == {"phone": "[redacted phone]", "email": "[redacted email]"}
    store.record_view(esc["id"], by="A. Duty")
    trail = store.audit(esc["id"])
    assert [(a["action"], a["actor"]) for a in trail[1:]] == [
        ("contact_added", "the person, in the chat"), ("viewed", "A. Duty")]
    assert trail[1]["detail"] == {"fields": ["email"]} and "redacted email" not in str(trail)


def test_duty_actions_refuse_unknown_ids_and_anonymous_staff(store):
    esc = turn(store, 1)
    with pytest.raises(UnknownEscalation):
        store.acknowledge("no-such-id", by="A. Duty")
    for action in (store.acknowledge, store.close):
        with pytest.raises(BadInput):
            action(esc["id"], by="  ")
    with pytest.raises(BadInput):
        store.add_note(esc["id"], by="A. Duty", text="")
    assert [a["action"] for a in store.audit(esc["id"])] == ["created"]


def test_the_audit_log_is_append_only_in_the_database(store):
    esc = turn(store, 1)
    store.acknowledge(esc["id"], by="A. Duty")
    trail = store.audit(esc["id"])
    for statement in ("UPDATE esc_audit SET actor = 'someone else'", "DELETE FROM esc_audit",
                      f"UPDATE esc_audit SET detail = NULL WHERE escalation_id = '{esc['id']}'"):
        with pytest.raises(DBAPIError, match="append-only"):
            with store.engine.begin() as conn:
                conn.exec_driver_sql(statement)
    assert store.audit(esc["id"]) == trail


def test_bad_input_is_refused_before_anything_is_written(store):
    for bad in (dict(session_id=""), dict(categories="physical_abuse"), dict(contact="07700 900000"),
                dict(message_id="")):
        with pytest.raises(BadInput):
            turn(store, 1, **bad)
    assert counts(store)["esc_messages"] == 0


def test_opening_again_migrates_nothing_and_keeps_the_data(db_url, clock):
    first = EscalationStore.open(db_url, channels=["inbox"], clock=clock)
    esc = turn(first, 1)
    first.dispose()
    second = EscalationStore.open(db_url, channels=["inbox"], clock=clock)
    assert second.schema_version == LATEST
    assert second.get(esc["id"])["id"] == esc["id"]
    with second.engine.connect() as conn:
        assert conn.execute(sa.text("SELECT count(*) FROM esc_schema")).scalar() == LATEST
    second.dispose()


def test_excerpt_cuts_at_a_word_near_the_limit():
    assert excerpt("short   text\nhere") == "short text here"
    cut = excerpt("word " * 100)
    assert len(cut) <= 280 and cut.endswith("word…")
    assert excerpt("x" * 500) == "x" * 279 + "…"
