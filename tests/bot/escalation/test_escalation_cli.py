"""``earlyhelp escalations ...`` as a person runs it: real processes, a temporary EARLYHELP_HOME."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from bot.escalation import EscalationStore
from tests.bot.escalation.support import turn
from tests.conftest import EARLYHELP


@pytest.fixture
def home(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("EARLYHELP_", "DATABASE_URL"))}
    env["EARLYHELP_HOME"] = str(tmp_path)
    return tmp_path, env


def cli(env, *args, check=True):
    done = subprocess.run([str(EARLYHELP), "escalations", *args], env=env, capture_output=True, text=True, timeout=60)
    if check:
        assert done.returncode == 0, done.stderr
    return done


def test_list_ack_and_show_from_the_command_line(home):
    path, env = home
    store = EscalationStore.open(f"sqlite:///{path / 'earlyhelp.db'}", channels=["inbox"])
    urgent = turn(store, 1)["id"]
    immediate = turn(store, 2, immediate_danger=True, area="gloucestershire")["id"]
    store.dispose()

    doc = json.loads(cli(env, "list", "--json").stdout)
    assert doc["count"] == 2 and [e["id"] for e in doc["escalations"]] == [immediate, urgent]
    assert doc["escalations"][0]["urgency"] == "immediate" and doc["escalations"][0]["status"] == "open"

    acked = json.loads(cli(env, "ack", urgent, "--by", "A. Duty", "--json").stdout)["escalation"]
    assert acked["status"] == "acknowledged" and acked["acknowledged_by"] == "A. Duty"
    assert [e["id"] for e in json.loads(cli(env, "list", "--status", "open", "--json").stdout)["escalations"]] == [immediate]
    shown = json.loads(cli(env, "show", urgent, "--json").stdout)
    assert [a["action"] for a in shown["audit"]] == ["created", "acknowledged"]
    assert "urgent" in cli(env, "list").stdout  # the plain-text view

    missing = cli(env, "ack", "no-such-id", "--by", "A. Duty", "--json", check=False)
    assert missing.returncode == 2 and "no escalation" in json.loads(missing.stdout)["error"]


def test_the_worker_command_delivers_and_stops_on_sigterm(home):
    path, env = home
    store = EscalationStore.open(f"sqlite:///{path / 'earlyhelp.db'}", channels=["inbox"])
    esc = turn(store, 1)
    worker = subprocess.Popen([str(EARLYHELP), "escalations", "worker", "--poll", "0.1"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while store.get(esc["id"])["inbox_visible_at"] is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert store.get(esc["id"])["inbox_visible_at"] is not None
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(10) == 0
        assert "escalation worker stopped" in worker.stderr.read()
    finally:
        if worker.poll() is None:
            worker.kill()
            worker.wait()
        store.dispose()
