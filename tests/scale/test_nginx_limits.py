"""nginx's request-body limits in the scaled stack's generated configuration, through a real nginx.

Rasa sends every custom action call the conversation's whole tracker, which grows by about 6 kB a turn.
With one 256 kB limit for every server block, a long conversation's action calls were refused by nginx
(413) from about turn 42 (263 kB), Rasa answered nothing and the person got the web app's fallback
answer (bench/load.py's long phase: 14 of 200 turns, all 413s in nginx's action pool). The loopback pools
now let through what the action servers themselves take; the public port keeps its small limit.
"""
from __future__ import annotations

import http.server
import json
import subprocess
import threading
import time
import urllib.error
import urllib.request

import pytest

from bot.runner import free_port
from bot.scaled import nginx_binary, nginx_conf


class Upstream(http.server.ThreadingHTTPServer):
    """Stands in for every pool's instance: answers each POST with the number of body bytes it received."""

    daemon_threads = True


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        answer = json.dumps({"received": len(body)}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def do_GET(self) -> None:  # noqa: N802
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args) -> None:
        pass


def tracker_body(turns: int) -> bytes:
    """A body shaped like Rasa's action call: the tracker's events, about 6 kB of them per turn."""
    events = []
    for turn in range(turns):
        events.append({"event": "user", "text": "what services are there near me", "timestamp": 1.0 * turn,
                       "parse_data": {"intent": {"name": "ask_services", "confidence": 0.99},
                                      "intent_ranking": [{"name": f"intent_{n}", "confidence": 0.01} for n in range(10)],
                                      "entities": [], "text": "what services are there near me"}})
        events += [{"event": "slot", "name": f"slot_{n}", "value": "x" * 200, "timestamp": 1.0 * turn} for n in range(12)]
        events.append({"event": "bot", "text": "Here are some services near you. " * 40, "timestamp": 1.0 * turn})
    return json.dumps({"next_action": "action_show_more_services", "tracker": {"events": events}}).encode()


def post(url: str, body: bytes) -> tuple[int, dict]:
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"}, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=20) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, {}


@pytest.fixture
def nginx(tmp_path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed")
    upstream = Upstream(("127.0.0.1", 0), Handler)
    threading.Thread(target=upstream.serve_forever, daemon=True).start()
    port = upstream.server_address[1]
    public, rasa_lb, action_lb = free_port(), free_port(), free_port()
    conf = tmp_path / "nginx.conf"
    conf.write_text(nginx_conf(tmp_path, ("127.0.0.1", public), [port], rasa_lb, [port], action_lb, [port]))
    (tmp_path / "nginx-tmp").mkdir()
    process = subprocess.Popen([binary, "-c", str(conf), "-p", str(tmp_path), "-e", str(tmp_path / "nginx-error.log"),
                                "-g", "daemon off;"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        for _ in range(100):
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{action_lb}/health", timeout=1).close()
                break
            except OSError:
                if process.poll() is not None:
                    pytest.fail("nginx did not start: " + process.stderr.read().decode()[-2000:])
                time.sleep(0.05)
        yield {"public": f"http://127.0.0.1:{public}", "rasa": f"http://127.0.0.1:{rasa_lb}",
               "actions": f"http://127.0.0.1:{action_lb}"}
    finally:
        process.terminate()
        process.wait(10)
        upstream.shutdown()
        upstream.server_close()


def test_a_long_conversations_action_call_reaches_the_action_server(nginx):
    for turns in (60, 400):  # a 60-turn conversation (over 256 kB), and one far longer (2 MB)
        body = tracker_body(turns)
        assert len(body) > 256 * 1024
        status, answer = post(f"{nginx['actions']}/webhook?token=t", body)
        assert (status, answer.get("received")) == (200, len(body)), turns
    status, answer = post(f"{nginx['rasa']}/webhooks/rest/webhook", tracker_body(60))
    assert status == 200 and answer["received"] == len(tracker_body(60))


def test_the_public_port_keeps_its_small_limit(nginx):
    assert post(f"{nginx['public']}/api/chat", b"x" * (200 * 1024))[0] == 200
    assert post(f"{nginx['public']}/api/chat", b"x" * (300 * 1024))[0] == 413
