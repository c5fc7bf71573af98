"""Privacy helpers: redaction of personal details before anything is stored or sent on."""
from __future__ import annotations

from bot.privacy.redact import PLACEHOLDERS, Found, contact_details, find_personal_details, redact

__all__ = ["PLACEHOLDERS", "Found", "contact_details", "find_personal_details", "redact"]
