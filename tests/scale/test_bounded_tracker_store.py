"""``rasa_ext.tracker_store.CachedSQLTrackerStore`` with a bounded history (``max_event_history``): a
conversation three times longer than the bound keeps the same slots, active form and state as with no bound
and as with Rasa's own ``SQLTrackerStore``, its trackers never hold more than the bound, and it writes the
same rows as Rasa's store, row for row: with a second instance (another Rasa) taking turns, a tracker saved
twice, a new session, and the project's erasure (bot/privacy/erase.py) in the middle, which removes every row.

Three systems take the same turns in lock-step, each on its own real SQLite file (same events, same
timestamps): the bounded store, the unbounded one, and Rasa's own store; each has two instances, like two
Rasa processes behind the load balancer. The turns run in Rasa's environment (.venv-rasa); the erasure
runs here, in the project's, while that process waits."""
from __future__ import annotations

import json
import sqlite3
import subprocess
import textwrap

import pytest

from bot.paths import REPO_ROOT
from bot.privacy.erase import erase_conversation
from bot.runner import RASA

RASA_PYTHON = RASA.parent / "python"
BOUND = 100

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (ActionExecuted, ActiveLoop, BotUttered, SessionStarted, SlotSet, UserUttered)
    from rasa.shared.core.trackers import DialogueStateTracker
    from rasa_ext.tracker_store import CachedSQLTrackerStore

    domain = Domain.from_yaml('''
    version: "3.1"
    intents: [greet, inform]
    slots:
      area: {type: text, mappings: [{type: custom}]}
      age: {type: float, mappings: [{type: custom}]}
      shown: {type: list, mappings: [{type: custom}]}
      requested_slot: {type: any, mappings: [{type: custom}]}
    forms:
      triage_form: {required_slots: [area, age]}
    ''')
    BOUND = int(sys.argv[4])
    systems = {  # name: (first instance, second instance: another Rasa on the same database)
        "bounded": tuple(CachedSQLTrackerStore(domain=domain, dialect="sqlite", db=sys.argv[1], max_event_history=BOUND) for _ in "ab"),
        "unbounded": tuple(CachedSQLTrackerStore(domain=domain, dialect="sqlite", db=sys.argv[2]) for _ in "ab"),
        "rasa": tuple(SQLTrackerStore(domain=domain, dialect="sqlite", db=sys.argv[3]) for _ in "ab"),
    }
    checks = []

    def turn_events(n, extra):
        t = 1000.0 + n * 100  # the same timestamps in every system, increasing
        events = [UserUttered(f"message {n}", {"name": "inform", "confidence": 1.0}), ActionExecuted("action_extract_slots"),
                  *extra, BotUttered(f"answer {n}", {"elements": None}), BotUttered(f"and {n}"), ActionExecuted("action_listen")]
        for i, e in enumerate(events):
            e.timestamp = t + i
        return events

    def session_start(n):
        events = [ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")]
        for i, e in enumerate(events):
            e.timestamp = 1000.0 + n * 100 + 50 + i
        return events

    def state(tracker):
        if tracker is None:
            return None
        return {"slots": tracker.current_slot_values(), "loop": tracker.active_loop_name,
                "latest": tracker.latest_message.text, "followup": tracker.followup_action,
                "action": tracker.latest_action_name, "paused": tracker.is_paused()}

    async def turn(n, extra=lambda: [], instance=0, new_session=False, save_twice=False):
        # one turn in every system; extra() makes the turn's own events (fresh ones for each system)
        for name, stores in systems.items():
            store = stores[instance]
            tracker = await store.retrieve("c")
            if tracker is None:
                tracker = store.init_tracker("c")
                for e in session_start(n - 1):
                    tracker.update(e)
            if new_session:  # as Rasa's processor does: appended to the old session's tracker
                for e in session_start(n - 1):
                    tracker.update(e)
            for e in turn_events(n, extra()):
                tracker.update(e)
            await store.save(tracker)
            if save_twice:
                await store.save(tracker)
        got = {}
        for name, stores in systems.items():
            tracker = await stores[(instance + 1) % 2].retrieve("c")  # read by the other instance too
            mine = await stores[instance].retrieve("c")
            got[name] = (state(mine), None if mine is None else [e.as_dict() for e in mine.events],
                         state(tracker) == state(mine))
        full = got["rasa"][1] or []
        bounded = got["bounded"][1] or []
        same_tail = next((m for m in range(len(bounded), -1, -1) if m == 0 or bounded[-m:] == full[-m:]), 0)
        start = bounded[:len(bounded) - same_tail]  # the state the window starts from
        # Rasa rebuilds trackers from their events (the form's validation, tracker.copy()): same state
        mine = await systems["bounded"][instance].retrieve("c")
        replayed = None if mine is None else DialogueStateTracker.from_events(
            "c", mine.events_after_latest_restart(), domain.slots)
        checks.append({"turn": n, "instance": instance,
                       "bounded_state_equal": got["bounded"][0] == got["rasa"][0],
                       "unbounded_state_equal": got["unbounded"][0] == got["rasa"][0],
                       "instances_agree": all(g[2] for g in got.values()),
                       "bounded_events": len(got["bounded"][1] or []), "session_events": len(full),
                       "window": same_tail, "start": [e["event"] for e in start],
                       "replayed_state_equal": state(replayed) == state(mine),
                       "copy_state_equal": mine is None or state(mine.copy()) == state(mine),
                       "unbounded_events_equal": got["unbounded"][1] == got["rasa"][1],
                       "state": got["bounded"][0]})

    async def main():
        await turn(0, lambda: [SlotSet("area", "Stroud")])
        await turn(1, lambda: [ActionExecuted("triage_form"), ActiveLoop("triage_form"), SlotSet("requested_slot", "age")])
        for n in range(2, 60):  # the form stays active, its SlotSet and ActiveLoop far out of the bound
            await turn(n, (lambda n=n: [SlotSet("shown", [f"s{n}"])]) if n % 5 == 0 else (lambda: []), instance=1 if n in (7, 8, 41) else 0,
                       save_twice=(n == 9))
        await turn(60, lambda: [ActionExecuted("triage_form"), SlotSet("age", 7.0), SlotSet("requested_slot", None),
                                ActiveLoop(None)])
        for n in range(61, 64):
            await turn(n)
        full = {name: len((await s[0].retrieve_full_tracker("c")).events) for name, s in systems.items()}
        checks.append({"full_tracker": full})  # Rasa's HTTP tracker endpoint reads every event, not the bound's
        print("ERASE", flush=True)  # the test erases the bounded system's conversation, then says go on
        sys.stdin.readline()
        for name in ("unbounded", "rasa"):  # the same erasure in the other systems
            store = systems[name][0]
            with store.session_scope() as session:
                session.query(store.SQLEvent).filter(store.SQLEvent.sender_id == "c").delete(); session.commit()
        checks.append({"erased": {name: None if (t := await s[0].retrieve("c")) is None else len(t.events)
                                  for name, s in systems.items()}})
        for n in range(64, 85):
            await turn(n, (lambda: [SlotSet("area", "Bath")]) if n == 64 else (lambda: []))
        await turn(85, new_session=True)
        await turn(86)
        checks.append({"slots": len(domain.slots)})  # Rasa adds its own (session_started_metadata)
        print("RESULT " + json.dumps(checks), flush=True)

    asyncio.run(main())
""")

COLUMNS = "sender_id, type_name, timestamp, intent_name, action_name, data"


def _rows(db) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(f"SELECT {COLUMNS} FROM events ORDER BY id").fetchall()


def test_a_bounded_history_keeps_the_state_and_writes_rasas_rows(tmp_path):
    if not RASA_PYTHON.exists():
        pytest.skip("Rasa's environment (.venv-rasa) is not installed")
    dbs = [tmp_path / f"{name}.db" for name in ("bounded", "unbounded", "rasa")]
    process = subprocess.Popen([str(RASA_PYTHON), "-c", SCRIPT, *map(str, dbs), str(BOUND)], cwd=REPO_ROOT,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"})
    try:
        line = process.stdout.readline()
        assert line.startswith("ERASE"), line + process.stderr.read()[-3000:]
        before = _rows(dbs[0])
        assert before == _rows(dbs[2])  # written row for row as Rasa's own store writes them
        assert len(before) > 3 * BOUND
        erased = erase_conversation("c", actor="test", db_url=f"sqlite:///{tmp_path / 'earlyhelp.db'}",
                                    tracker=f"sqlite:///{dbs[0]}")
        assert erased.tracker_events == len(before) and _rows(dbs[0]) == []  # every row, not the bound's
        stdout, stderr = process.communicate("go\n", timeout=300)
    finally:
        if process.poll() is None:
            process.kill()
    line = next((x for x in stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, stderr[-3000:]
    checks = json.loads(line[len("RESULT "):])
    erasure = next(c["erased"] for c in checks if "erased" in c)
    slots = next(c["slots"] for c in checks if "slots" in c)
    full = next(c["full_tracker"] for c in checks if "full_tracker" in c)
    assert full["bounded"] == full["unbounded"] == full["rasa"] == len(before)
    turns = [c for c in checks if "turn" in c]
    assert erasure == {"bounded": None, "unbounded": None, "rasa": None}  # nothing served from memory
    for check in turns:
        assert check["bounded_state_equal"] and check["unbounded_state_equal"], check
        assert check["instances_agree"] and check["unbounded_events_equal"], check
        assert check["bounded_events"] <= BOUND and check["replayed_state_equal"] and check["copy_state_equal"], check
        if check["session_events"] <= BOUND:
            assert check["window"] == check["session_events"] == check["bounded_events"], check
        else:  # the last events of the session, after the state they start from
            assert check["window"] == BOUND - slots - 2 and set(check["start"]) <= {"slot", "active_loop", "pause"}, check
    by_turn = {c["turn"]: c for c in turns}
    # the form started at turn 1 and its ActiveLoop event left the tracker long ago: still active, still asking
    assert by_turn[59]["session_events"] > 2 * BOUND and by_turn[59]["bounded_events"] > BOUND - 6
    assert by_turn[59]["start"] == ["slot"] * 3 + ["active_loop"]  # area, requested_slot, shown; the form
    assert by_turn[59]["state"]["loop"] == "triage_form" and by_turn[59]["state"]["slots"]["requested_slot"] == "age"
    assert by_turn[59]["state"]["slots"]["area"] == "Stroud" and by_turn[59]["state"]["slots"]["shown"] == ["s55"]
    assert by_turn[63]["state"]["loop"] is None and by_turn[63]["state"]["slots"]["age"] == 7.0
    assert by_turn[84]["state"]["slots"]["area"] == "Bath"  # after the erasure: only what came after
    assert by_turn[85]["session_events"] < 15 and by_turn[85]["state"]["slots"]["area"] is None  # a new session
    assert by_turn[86]["state"]["latest"] == "message 86"
    # and every row written after the erasure, the new session included, is Rasa's row
    assert _rows(dbs[0]) == _rows(dbs[2]) == _rows(dbs[1]) and len(_rows(dbs[0])) > BOUND
