"""`make run` as a newcomer uses it: `python -m bot.runner run` starts everything, prints where it is, a
greeting gets an answer, Rasa's tracker is in SQLite (and an erased conversation stays erased), and
Ctrl-C stops every process it started."""
from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request

import pytest

from bot.paths import REPO_ROOT
from bot.runner import free_port, train

pytestmark = pytest.mark.e2e


def say(port: int, message: str, sender: str = "run-test") -> list[dict]:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/webhooks/rest/webhook",
        data=json.dumps({"sender": sender, "message": message}).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())


def rows(tracker, sender: str = "run-test", data: bool = False) -> list[tuple]:
    """The conversation's rows in Rasa's tracker store, in order: (timestamp, type) or (type, data)."""
    with sqlite3.connect(tracker) as conn:
        columns = "type_name, data" if data else "timestamp, type_name"
        return conn.execute(f"SELECT {columns} FROM events WHERE sender_id = ? ORDER BY id", (sender,)).fetchall()


def test_run_starts_everything_answers_and_stops_cleanly(tmp_path):
    train()
    ports = {"EARLYHELP_RASA_PORT": free_port(), "EARLYHELP_ACTION_PORT": free_port(), "EARLYHELP_PORT": free_port()}
    env = {**os.environ, **{k: str(v) for k, v in ports.items()}, "EARLYHELP_HOME": str(tmp_path),
           "EARLYHELP_HOST": "127.0.0.1", "PYTHONUNBUFFERED": "1"}
    process = subprocess.Popen([sys.executable, "-m", "bot.runner", "run"], cwd=REPO_ROOT, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    printed = []
    try:
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line and process.poll() is not None:
                break
            printed.append(line)
            if line.startswith("Press Ctrl-C"):
                break
        output = "".join(printed)
        assert "is running" in output, output
        assert f"http://localhost:{ports['EARLYHELP_PORT']}/duty" in output, output
        replies = say(ports["EARLYHELP_RASA_PORT"], "hello")
        assert any("999" in (r.get("text") or "") for r in replies), replies
        # Rasa's tracker is in SQLite under the home (rasa_ext's store: an unknown store type would make
        # Rasa fall back to memory, silently), and a conversation erased from it stays erased: the next
        # turn starts afresh instead of the store writing back the events it remembered
        tracker = tmp_path / "rasa-tracker.db"
        first = rows(tracker)
        assert first and first[0][1] == "action", first  # action_session_start, then the session
        say(ports["EARLYHELP_RASA_PORT"], "/identify_parent")
        assert len(rows(tracker)) > len(first)
        erased_at = time.time()
        with sqlite3.connect(tracker) as conn:
            conn.execute("DELETE FROM events WHERE sender_id = 'run-test'")
        replies = say(ports["EARLYHELP_RASA_PORT"], "hello")
        assert any("999" in (r.get("text") or "") for r in replies), replies
        again = rows(tracker)
        assert again and all(stamp >= erased_at for stamp, _kind in again), again  # nothing written back
        assert not any(kind == "slot" and "parent" in data for kind, data in rows(tracker, data=True)), "slots came back"
        with urllib.request.urlopen(f"http://127.0.0.1:{ports['EARLYHELP_PORT']}/healthz", timeout=10) as response:
            assert response.status == 200
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            process.kill()
            raise
    assert process.returncode == 0
    for port in ports.values():  # nothing is left listening
        with pytest.raises(OSError):
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2)
