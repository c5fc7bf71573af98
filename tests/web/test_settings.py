"""Settings from the environment: safe defaults, and a clear message naming the variable when one is wrong."""
from __future__ import annotations

import pytest

from bot.web.settings import Rate, Settings, SettingsError

SECRET = {"EARLYHELP_SECRET_KEY": "s" * 40}


def test_defaults_are_safe():
    settings = Settings.from_env(SECRET)
    assert settings.host == "127.0.0.1" and settings.port == 8080
    assert settings.duty_token is None and settings.trust_proxy is False
    assert settings.answer_seconds < 3 and settings.rasa_timeout < settings.answer_seconds
    assert settings.rate_login == Rate(20, 60) and settings.tracker_url is None


def test_values_are_read():
    settings = Settings.from_env({**SECRET, "EARLYHELP_RATE_LOGIN": "5/30", "EARLYHELP_ANSWER_SECONDS": "2.5",
                                  "EARLYHELP_PORT": "9000", "EARLYHELP_TRUST_PROXY": "yes"})
    assert settings.rate_login == Rate(5, 30) and settings.answer_seconds == 2.5
    assert settings.port == 9000 and settings.trust_proxy is True


@pytest.mark.parametrize("name, value", [
    ("EARLYHELP_RATE_LOGIN", "lots"), ("EARLYHELP_RATE_SESSION", "0/60"), ("EARLYHELP_ANSWER_SECONDS", "-1"),
    ("EARLYHELP_PORT", "http"), ("EARLYHELP_TRUST_PROXY", "maybe"), ("EARLYHELP_SECURE_COOKIES", "sometimes"),
    ("EARLYHELP_EXIT_URL", "javascript:alert(1)"), ("EARLYHELP_DUTY_TOKEN", "short"),
])
def test_a_wrong_value_names_its_variable(name, value):
    with pytest.raises(SettingsError) as err:
        Settings.from_env({**SECRET, name: value})
    assert name in str(err.value)
