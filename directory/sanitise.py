"""Turn whatever a feed sends into plain text that cannot run anywhere it is shown.

Descriptions arrive as HTML (or as text with HTML in it). ``nh3`` (the ammonia sanitiser) removes every
tag, and drops the content of ``script``/``style`` entirely; entities are then decoded and any angle
bracket left over is removed, so even ``&lt;script&gt;`` in a feed can never become markup in the widget,
and no entity is left that a page could decode into a bracket.
Paragraph and line breaks survive as newlines so the text stays readable.
"""
from __future__ import annotations

import html
import re
import unicodedata

import nh3

_BLOCK_BREAK = re.compile(r"<\s*(br|/p|/li|/div|/h[1-6]|/tr|p|li|div|h[1-6])\b[^>]*>", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")
_SPACES = re.compile(r"[ \t\r\f\v\u00a0]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_EMAIL = re.compile(r"^[A-Za-z0-9._%+'-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$")
_PHONE = re.compile(r"^\+?[0-9][0-9 ()-]{1,38}$")


def clean_control(text: str) -> str:
    """Remove control and invisible direction characters; keep newlines and tabs as spaces."""
    text = unicodedata.normalize("NFC", text)
    return _CONTROL.sub("", text)


def plain_text(value: str, multiline: bool = True) -> str:
    """Plain, safe text from HTML or text: tags and scripts gone, words kept, whitespace tidied."""
    text = clean_control(value)
    if "<" in text or ">" in text or "&" in text:
        text = _BLOCK_BREAK.sub("\n", text)
        # Two passes: decoding entities can reveal markup (``&lt;b&gt;``) that the second pass removes.
        for _ in range(2):
            text = nh3.clean(text, tags=set(), attributes={}, strip_comments=True)
            text = html.unescape(text)
        text = text.replace("<", "").replace(">", "")
        # Until nothing changes: an entity escaped many times over (``&amp;amp;lt;``) must not survive as
        # ``&lt;``, which a page that sets HTML would turn back into markup. Each change makes the text
        # shorter, so this ends.
        while True:
            settled = clean_control(html.unescape(text)).replace("<", "").replace(">", "")
            if settled == text:
                break
            text = settled
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\t", " ")
    text = _SPACES.sub(" ", text)
    if multiline:
        text = "\n".join(line.strip() for line in text.split("\n"))
        text = _BLANK_LINES.sub("\n\n", text)
    else:
        text = " ".join(text.split())
    return text.strip()


def safe_url(value: str) -> str | None:
    """The URL if it is plain http(s) (a bare domain gets https://), else None."""
    text = clean_control(value).strip()
    if not text or any(c.isspace() for c in text) or "<" in text or ">" in text or '"' in text:
        return None
    lower = text.lower()
    if lower.startswith(("http://", "https://")):
        return text
    if ":" in lower.split("/")[0]:  # javascript:, data:, mailto: ... never a link we show
        return None
    if re.match(r"^[a-z0-9-]+(\.[a-z0-9-]+)+(/.*)?$", lower):
        return "https://" + text
    return None


def is_email(value: str) -> bool:
    return bool(_EMAIL.match(value))


def is_phone(value: str) -> bool:
    return bool(_PHONE.match(value)) and sum(c.isdigit() for c in value) >= 3
