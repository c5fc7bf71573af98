"""HTML pages from the files in ``templates/``: ``{{name}}`` is replaced by the value, HTML-escaped.

There is no template language on purpose: pages hold no logic, and every value is escaped.
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


@lru_cache(maxsize=None)
def _template(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")


def render(name: str, **values: object) -> str:
    def value(match: re.Match) -> str:
        key = match.group(1)
        if key not in values:
            raise KeyError(f"template {name} needs {key!r}")
        return html.escape(str(values[key]), quote=True)

    return _FIELD.sub(value, _template(name))


def page(name: str, status: int = 200, **values: object) -> web.Response:
    return web.Response(text=render(name, **values), status=status, content_type="text/html", charset="utf-8")
