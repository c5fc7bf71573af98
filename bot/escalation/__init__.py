"""Durable escalation to the duty team (pure Python, no Rasa).

```python
from bot.escalation import EscalationStore, DeliveryWorker
store = EscalationStore.open()            # default database_url("earlyhelp"); creates/migrates tables
esc = store.record_turn(session_id, text_redacted, area="gloucestershire", categories=["physical_abuse"],
                        immediate_danger=False, escalate=True, message_id="m-123")   # committed when it returns
store.list(status="open"); store.get(esc["id"]); store.acknowledge(esc["id"], by="A. Duty")
store.add_note(esc["id"], by="A. Duty", text="called back"); store.close(esc["id"], by="A. Duty")
store.audit(esc["id"])                     # append-only history
worker = DeliveryWorker(store)             # channels from the environment (see bot.escalation.config)
await worker.run_forever(poll_interval=0.5, stop_event=stop)
```

The turn, the escalation, its outbox rows and the ``created`` audit row are written in one transaction;
the worker delivers from the outbox with leases, retries and idempotency keys (see worker.py), so an
escalation recorded is an escalation delivered, even across crashes of either side.
"""
from __future__ import annotations

from bot.escalation.channels import (
    DeliveryError,
    InboxChannel,
    NextTierChannel,
    Notification,
    SmtpChannel,
    WebhookChannel,
    build_channels,
    sign,
    verify,
)
from bot.escalation.config import ConfigError, EscalationConfig
from bot.escalation.store import EscalationStore, UnknownEscalation, excerpt
from bot.escalation.worker import DeliveryWorker

__all__ = [
    "ConfigError",
    "DeliveryError",
    "DeliveryWorker",
    "EscalationConfig",
    "EscalationStore",
    "InboxChannel",
    "NextTierChannel",
    "Notification",
    "SmtpChannel",
    "UnknownEscalation",
    "WebhookChannel",
    "build_channels",
    "excerpt",
    "sign",
    "verify",
]
