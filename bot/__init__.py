"""The assistant's own package: knowledge of the areas, triage, safeguarding, escalation, web app and CLI.

Nothing in here imports Rasa: the action server in ``actions/`` adapts these modules to rasa-sdk, and the
same functions serve the CLI and the web app, so every fact and rule is written once.
"""
