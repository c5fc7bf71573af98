"""Extensions loaded by Rasa itself (Python 3.10, ``.venv-rasa``), named by type in the generated endpoints.

Only Rasa's process imports this package (``rasa run`` puts the working folder on its path); the project's
own packages (``bot``, ``directory``) never import Rasa.
"""
