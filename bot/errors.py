"""Errors that mean "the input was wrong", as opposed to a fault in the program.

Every entry point (CLI, actions, web app) turns a ``BadInput`` into a clear message for the person and
exit code 2 / HTTP 400; anything else is a bug and is logged without echoing the input back.
"""
from __future__ import annotations


class BadInput(ValueError):
    """The caller gave something we cannot use; ``str(err)`` is safe to show them."""


class UnknownArea(BadInput):
    """An area id or name that is not one of the configured areas."""

    def __init__(self, given: object, known: list[str]):
        self.given = given
        self.known = known
        super().__init__(f"unknown area {given!r}; known areas: {', '.join(known)}")
