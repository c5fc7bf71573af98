"""National helplines every area can signpost to, loaded from ``knowledge/national_services.yml``.

These are not taken from the councils' documents: they are widely published numbers kept with
``source: "national, unverified"`` and a ``last_verified`` date, to be re-checked before a council
deploys the assistant. The file is validated at load, and a mistake fails loudly naming the file, the
service and the field.
"""
from __future__ import annotations

import datetime as dt
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from bot.areas import NATIONAL_SOURCE
from bot.paths import knowledge_dir
from bot.phones import check_uk_phone

FILE_NAME = "national_services.yml"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NationalService(Strict):
    """One national helpline: who it is for, how to reach it and when, in plain words."""

    id: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    name: str
    for_whom: str = Field(description="who the service is for, in plain words")
    phone: str | None = None
    text: str | None = Field(default=None, description="how to reach it by text, e.g. 'text SHOUT to 85258'")
    email: str | None = None
    url: str | None = None
    hours: str = Field(description="when it answers, in plain words, e.g. '24 hours, every day'")
    source: Literal["national, unverified"] = Field(description=f"always {NATIONAL_SOURCE!r}: to be re-checked before use")
    last_verified: dt.date

    @field_validator("phone")
    @classmethod
    def _uk_phone(cls, phone: str | None) -> str | None:
        return check_uk_phone(phone, short_codes=True)  # 999, 111, 116 123

    @field_validator("name", "for_whom", "hours")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be empty")
        return value

    @model_validator(mode="after")
    def _reachable(self) -> "NationalService":
        if not (self.phone or self.text or self.email or self.url):
            raise ValueError("a service needs at least a phone, a text, an email or a url")
        return self

    def how_to_reach(self) -> str:
        """E.g. ``"call 0800 1111 or go to childline.org.uk"`` or ``"text SHOUT to 85258"``."""
        ways = []
        if self.phone:
            ways.append(f"call {self.phone}")
        if self.text:
            ways.append(self.text)
        if self.email:
            ways.append(f"email {self.email}")
        if self.url:
            ways.append(f"go to {self.url}")
        return " or ".join(ways)


class NationalServices(Strict):
    services: list[NationalService] = Field(min_length=1)

    @model_validator(mode="after")
    def _unique(self) -> "NationalServices":
        ids = [s.id for s in self.services]
        duplicates = sorted({i for i in ids if ids.count(i) > 1})
        if duplicates:
            raise ValueError(f"service ids must be unique; repeated: {', '.join(duplicates)}")
        return self


class NationalFileError(ValueError):
    """The national services file is wrong; the message names the file and the field."""


def _describe(err: ValidationError, raw: dict) -> str:
    services = raw.get("services") if isinstance(raw.get("services"), list) else []
    lines = []
    for problem in err.errors():
        parts = [str(part) for part in problem["loc"]]
        if len(parts) >= 2 and parts[0] == "services" and parts[1].isdigit():
            index = int(parts[1])
            entry = services[index] if index < len(services) else None
            name = f" ({entry['id']})" if isinstance(entry, dict) and entry.get("id") else ""
            parts = [f"services.{index}{name}", *parts[2:]]
        where = ".".join(parts) or "(file)"
        lines.append(f"{where}: {problem['msg']}")
    return "; ".join(lines)


def load_national_file(path: Path) -> dict[str, NationalService]:
    """The services in one file by id, validated; ``NationalFileError`` naming the file and field."""
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise NationalFileError(f"{path}: cannot be read: {err}") from err
    except yaml.YAMLError as err:
        raise NationalFileError(f"{path}: not valid YAML: {err}") from err
    if not isinstance(raw, dict):
        raise NationalFileError(f"{path}: expected a mapping with a 'services' list at the top level")
    try:
        table = NationalServices.model_validate(raw)
    except ValidationError as err:
        raise NationalFileError(f"{path}: {_describe(err, raw)}") from err
    return {service.id: service for service in table.services}


@lru_cache(maxsize=1)
def load_national_services() -> dict[str, NationalService]:
    """Every national service by id, validated; cached for the life of the process."""
    return load_national_file(knowledge_dir() / FILE_NAME)
