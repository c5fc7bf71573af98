"""One measured fix to Rasa 3.6's cost per custom-action call, applied when Rasa loads ``rasa_ext``.

``RemoteAction._validate_action_result`` validates each action server answer with
``jsonschema.validate(result, schema)``, and ``jsonschema.validate`` first checks the *schema itself*
against the JSON Schema meta-schema, every call. Rasa's schema never changes, so that self-check is
the same work each time: 140 ms per call on our shared 2-core machine (1.5 ms for the validation of
the answer), paid for every custom action in every turn (a form turn calls two or three).

The replacement validates every answer exactly as before (the same schema, the same validator class
``jsonschema.validators.validator_for`` picks, the same ``ValidationError`` with Rasa's message added),
with the validator built once. If Rasa's method is not what this was written against, nothing is
changed and a warning is logged.
"""
from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

_applied = False


def apply() -> bool:
    """Install the cached validation once; True when it is in place."""
    global _applied
    if _applied:
        return True
    try:
        from jsonschema import exceptions, validators
        from rasa.core.actions.action import RemoteAction
        from rasa.shared.constants import DOCS_BASE_URL
    except ImportError as err:  # a different Rasa: leave it alone
        logger.warning("rasa_ext.speedups not applied: %s", err)
        return False
    original = getattr(RemoteAction, "_validate_action_result", None)
    if original is None or getattr(original, "__module__", "") != "rasa.core.actions.action":
        logger.warning("rasa_ext.speedups not applied: RemoteAction._validate_action_result is not Rasa 3.6's")
        return False
    schema = RemoteAction.action_response_format_spec()
    validator_class = validators.validator_for(schema)
    validator_class.check_schema(schema)  # once, as jsonschema.validate would on every call
    validator = validator_class(schema)

    def _validate_action_result(self: Any, result: dict) -> bool:
        error = exceptions.best_match(validator.iter_errors(result))  # what jsonschema.validate raises
        if error is None:
            return True
        error.message += (
            ". Failed to validate Action server response from API, "
            "make sure your response from the Action endpoint is valid. "
            f"For more information about the format visit {DOCS_BASE_URL}/custom-actions"
        )
        raise error

    _validate_action_result.__doc__ = original.__doc__
    RemoteAction._validate_action_result = _validate_action_result  # type: ignore[method-assign]
    _applied = True
    return True
