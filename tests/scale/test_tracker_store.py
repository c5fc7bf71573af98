"""``rasa_ext.tracker_store.CachedSQLTrackerStore`` gives exactly what Rasa's own ``SQLTrackerStore`` gives,
turn after turn, while reading only new rows: with another Rasa instance writing to the same conversation,
rows deleted by an erasure or the retention purge, and a new session. Run in Rasa's own environment
(``.venv-rasa``) against a real SQLite file, comparing the two stores' trackers event by event."""
from __future__ import annotations

import json
import subprocess
import textwrap

import pytest

from bot.paths import REPO_ROOT
from bot.runner import RASA

RASA_PYTHON = RASA.parent / "python"

SCRIPT = textwrap.dedent("""
    import asyncio, json, sys, time
    from rasa.core.tracker_store import SQLTrackerStore
    from rasa.shared.core.domain import Domain
    from rasa.shared.core.events import (ActionExecuted, BotUttered, SessionStarted, SlotSet, UserUttered)
    from rasa_ext.tracker_store import CachedSQLTrackerStore

    domain = Domain.from_yaml('''
    version: "3.1"
    intents: [greet]
    slots:
      area: {type: text, mappings: [{type: custom}]}
      shown: {type: list, mappings: [{type: custom}]}
    ''')
    db = sys.argv[1]
    cached = CachedSQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    other = CachedSQLTrackerStore(domain=domain, dialect="sqlite", db=db)  # a second Rasa instance
    plain = SQLTrackerStore(domain=domain, dialect="sqlite", db=db)
    checks = []

    def dump(tracker):
        return None if tracker is None else [e.as_dict() for e in tracker.events]

    async def same(what):
        mine, rasas = await cached.retrieve("c"), await plain.retrieve("c")
        checks.append([what, dump(mine) == dump(rasas), len(dump(rasas) or []),
                       None if mine is None else mine.get_slot("area")])
        return mine

    async def turn(store, n, extra=()):
        tracker = await store.retrieve("c")
        if tracker is None:
            tracker = store.init_tracker("c")
            for e in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
                tracker.update(e)
        for e in (UserUttered(f"message {n}", {"name": "greet", "confidence": 1.0}), *extra,
                  BotUttered(f"answer {n}"), ActionExecuted("action_listen")):
            e.timestamp = time.time()  # as Rasa's update_with_events does: after everything before
            tracker.update(e)
        await store.save(tracker)

    async def main():
        await same("empty")
        for n in range(5):
            await turn(cached, n, [SlotSet("area", f"area {n}"), SlotSet("shown", [f"s{n}"])])
            await same(f"turn {n}")
        await turn(other, 5, [SlotSet("area", "from the other instance")])
        await same("written by another instance")
        await turn(cached, 6)
        await same("and back")
        with plain.session_scope() as session:  # the retention purge / an erasure deletes some rows
            first = session.query(plain.SQLEvent).filter(plain.SQLEvent.sender_id == "c").order_by(plain.SQLEvent.id).first()
            session.delete(first); session.commit()
        await same("a row deleted")
        with plain.session_scope() as session:
            session.query(plain.SQLEvent).filter(plain.SQLEvent.sender_id == "c").delete(); session.commit()
        await same("erased")
        await turn(cached, 7, [SlotSet("area", "after erasure")])
        await same("after erasure")
        time.sleep(0.01)
        tracker = await cached.retrieve("c")  # a new session: Rasa's own query decides where it starts
        for e in (ActionExecuted("action_session_start"), SessionStarted(), ActionExecuted("action_listen")):
            tracker.update(e)
        await cached.save(tracker)
        await same("new session")
        await turn(cached, 8)
        await same("new session, next turn")
        print("RESULT " + json.dumps({"checks": checks, "full": cached.full_reads, "partial": cached.partial_reads}))

    asyncio.run(main())
""")


def test_the_cached_store_gives_what_rasas_store_gives(tmp_path):
    if not RASA_PYTHON.exists():
        pytest.skip("Rasa's environment (.venv-rasa) is not installed")
    done = subprocess.run([str(RASA_PYTHON), "-c", SCRIPT, str(tmp_path / "tracker.db")], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=300,
                          env={"PATH": "/usr/bin:/bin", "TF_CPP_MIN_LOG_LEVEL": "3", "RASA_TELEMETRY_ENABLED": "false"})
    line = next((x for x in done.stdout.splitlines() if x.startswith("RESULT ")), None)
    assert line, done.stderr[-3000:]
    result = json.loads(line[len("RESULT "):])
    checks = {what: (equal, events, area) for what, equal, events, area in result["checks"]}
    assert all(equal for equal, _events, _area in checks.values()), result["checks"]
    assert checks["empty"][1] == 0 and checks["turn 4"][2] == "area 4"
    assert checks["written by another instance"][2] == "from the other instance"  # the other instance's rows read
    assert checks["erased"][1] == 0 and checks["after erasure"][2] == "after erasure"
    assert checks["new session"][1] < checks["after erasure"][1] + 3  # the new session only, as Rasa's query gives
    assert checks["new session"][2] is None  # slots are not carried over into the new session
    # and it did read only new rows most of the time: a full read per conversation start, deletion and session
    assert result["partial"] >= 8 and result["full"] <= 6, result
