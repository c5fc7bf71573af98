"""HTML pages from the files in ``templates/``: ``{{name}}`` is replaced by the value, HTML-escaped.

There is no template language on purpose: pages hold no logic, and every value is escaped, except a
``Markup`` value: HTML the server built itself from escaped parts (the manager view's tables and charts).

One thing more: ``{{> _part.html}}`` puts another file of ``templates/`` in its place, so the chrome every
page shares (the head, the inbox's top bar and menu) is written once, in ``_*.html``. Parts are joined
when a template is first read, before any value is filled in, and the values are filled in one pass: a
value that looks like ``{{> ...}}`` or ``{{name}}`` is text, never read as a part or a field.
"""
from __future__ import annotations

import html
import re
from functools import lru_cache
from pathlib import Path

from aiohttp import web

TEMPLATES = Path(__file__).parent / "templates"
STATIC = Path(__file__).parent / "static"
_FIELD = re.compile(r"\{\{\s*([a-z_]+)\s*\}\}")
_PART = re.compile(r"\{\{>\s*([a-z_]+\.html)\s*\}\}\n?")
_DEPTH = 4  # parts may use parts, this deep at most (a loop is an error, not a hang)


class Markup(str):
    """HTML built by the server with every piece of data already escaped; put on the page as it is."""


def _joined(name: str, depth: int = 0) -> str:
    if depth > _DEPTH:
        raise ValueError(f"template parts nested deeper than {_DEPTH} at {name!r} (a part that includes itself?)")
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    return _PART.sub(lambda m: _joined(m.group(1), depth + 1), text)


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return _joined(name)


def render(name: str, **values: object) -> str:
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {name} needs {key!r}")
        found = values[key]
        return found if isinstance(found, Markup) else html.escape(str(found), quote=True)

    return _FIELD.sub(value, _template(name))


def page(name: str, status: int = 200, **values: object) -> web.Response:
    return web.Response(text=render(name, **values), status=status, content_type="text/html", charset="utf-8")
