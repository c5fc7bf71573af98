"""`make run` as a newcomer uses it: `python -m bot.runner run` starts everything, prints where it is, a
greeting gets an answer, and Ctrl-C stops every process it started."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request

import pytest

from bot.paths import REPO_ROOT
from bot.runner import free_port, train

pytestmark = pytest.mark.e2e


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
        request = urllib.request.Request(
            f"http://127.0.0.1:{ports['EARLYHELP_RASA_PORT']}/webhooks/rest/webhook",
            data=json.dumps({"sender": "run-test", "message": "hello"}).encode(), headers={"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            replies = json.loads(response.read())
        assert any("999" in (r.get("text") or "") for r in replies), replies
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
