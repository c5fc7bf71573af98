"""Keep what people typed out of Rasa's logs.

Rasa 3.6 logs structured events with the user's words in them, some at ERROR, so at every log level: when a
REST request is cancelled (``rest.message.received.timeout``, e.g. nginx gave up on a slow turn) or fails
(``rest.message.received.failure``), with ``text=`` the whole message; at DEBUG, parse data, slot values and
events. Rasa has an anonymisation hook for exactly these keys, but only in its commercial edition (and
registering a pipeline there also makes every turn read the tracker again).

``install()`` puts one processor at the front of structlog's processor list, replacing the value of every key
Rasa itself treats as personal (the list of ``rasa.utils.log_utils._anonymizer``) with ``[withheld]``. The
list is changed in place, so loggers Rasa has already used (structlog caches them on first use) get it too.
Rasa configures structlog before it reads the endpoints, and this module is installed when Rasa loads our
tracker or lock store from them, so it is in place before the first turn. The event name, level and the
other keys (action names, counts) are kept.
"""
from __future__ import annotations

from typing import Any

WITHHELD = "[withheld]"

# rasa.utils.log_utils._anonymizer's keys (Rasa 3.6): the values that may hold what a person typed
PERSONAL_KEYS = frozenset({
    "text", "response_text", "user_text", "slot_values", "parse_data_text", "parse_data_entities",
    "prediction_events", "tracker_latest_message", "prefilled_slots", "message", "response",
    "slot_candidates", "rasa_event", "rasa_events", "tracker_states", "current_states", "old_states",
    "successes", "current_entity", "next_entity", "states", "entity", "token_text", "user_message",
    "json_message",
})


def withhold_personal_values(_logger: Any, _method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
    """structlog processor: personal values replaced, everything else as it was."""
    for key in PERSONAL_KEYS.intersection(event_dict):
        event_dict[key] = WITHHELD
    return event_dict


def install() -> bool:
    """Put the processor first in structlog's configured list (once); True when it is there."""
    try:
        import structlog
    except ImportError:
        return False
    processors = structlog.get_config()["processors"]  # the list itself, shared by every logger
    if withhold_personal_values not in processors:
        processors.insert(0, withhold_personal_values)
    return True
