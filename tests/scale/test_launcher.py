"""The scaled launcher's watch loop (``Stack.serve``) carries on when one instance is lost and stops
once nginx, or every web app, is gone: ``ScaledStack.fatal_loss`` over real processes."""
from __future__ import annotations

import os
import signal

from bot.runner import Stack
from bot.scaled import ScaledStack


def lost(stack: Stack) -> list[str]:
    return [name for name, process in stack.processes if process.poll() is not None]


def kill(stack: Stack, name: str) -> None:
    process = stack.process(name)
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(10)


def test_one_instance_lost_carries_on_no_web_app_or_nginx_stops(tmp_path):
    stack = ScaledStack(state=tmp_path, web_apps=2)
    try:
        for name in ("rasa-1", "rasa-2", "web-1", "web-2", "nginx"):
            stack._spawn(name, ["sleep", "60"], {})
        assert stack.fatal_loss(lost(stack)) is None
        kill(stack, "rasa-1")
        kill(stack, "web-1")
        assert lost(stack) == ["rasa-1", "web-1"] and stack.fatal_loss(lost(stack)) is None  # the others carry on
        kill(stack, "web-2")
        assert stack.fatal_loss(lost(stack)) == "No web app left"
        assert stack.fatal_loss(["nginx"]) == "nginx stopped"
    finally:
        stack.stop()
    assert stack.processes == []


def test_the_single_stack_stops_when_any_part_is_lost(tmp_path):
    stack = Stack(state=tmp_path)
    try:
        for name in ("action-server", "rasa", "web"):
            stack._spawn(name, ["sleep", "60"], {})
        assert stack.fatal_loss(lost(stack)) is None
        kill(stack, "action-server")
        assert stack.fatal_loss(lost(stack))
    finally:
        stack.stop()
