"""The one check that a phone number in a fact file is a UK number people can dial.

Area files and the national services file both carry phone numbers; a typo there sends a family to
the wrong line, so both schemas reject anything that is not digits and spaces (optionally +44).
National helplines may be short codes (999, 111, 116 123); area numbers never are.
"""

from __future__ import annotations

import re

_FULL = re.compile(r"^(?:\+44 ?)?[0-9][0-9 ]{2,14}[0-9]$")
_SHORT_CODES_ALLOWED = re.compile(r"^(?:\+44 ?)?[0-9][0-9 ]{1,14}[0-9]$")


def check_uk_phone(phone: str | None, *, short_codes: bool = False) -> str | None:
    """Return the number unchanged, or raise ValueError saying why it cannot be dialled."""
    pattern = _SHORT_CODES_ALLOWED if short_codes else _FULL
    if phone is not None and not pattern.match(phone):
        raise ValueError(f"{phone!r} is not a UK phone number written with digits and spaces")
    return phone
