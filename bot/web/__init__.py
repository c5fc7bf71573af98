"""The public web app: the chat widget, the chat API (the safeguarding gateway), and the duty inbox.

```python
from bot.web import create_app, Settings
app = create_app(Settings.from_env())      # aiohttp web.Application
```
Run it with ``python -m bot.web --host 0.0.0.0 --port 8080 --rasa-url http://127.0.0.1:5005``.
"""
from __future__ import annotations

from bot.web.app import create_app
from bot.web.settings import Settings

__all__ = ["Settings", "create_app"]
