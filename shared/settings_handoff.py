"""The settings an orchestrator hands to the worker processes it starts itself, in one variable.

Local workers must run on exactly the orchestrator's settings, command-line options included.
Rebuilding a `TASKFORCE_*` variable per field needed an encoding per type (commas for lists,
JSON for dicts, unwrapped secrets) kept in step with the parsing on the other side by hand; one
JSON document that pydantic writes and reads back has no such seams.

While the hand-off is set, it is the configuration:

- every setting it carries comes from it; only values given in code (the CLI's options) beat it;
- `.env` and secrets files are not read: the hand-off is what the orchestrator made of them;
- the orchestrator-only settings it never carries come from their variables, as always;
- a variable for a setting it carries is an error rather than silently outvoted: whoever set it
  meant it to count, and would otherwise look for the mistake elsewhere.
"""

from __future__ import annotations

import json
import os
from typing import Any

from pydantic import SecretStr
from pydantic_settings import BaseSettings, InitSettingsSource, PydanticBaseSettingsSource

HANDOFF_VARIABLE = "TASKFORCE_SETTINGS_JSON"


class SettingsHandOffError(ValueError):
    """The hand-off cannot be read, or a variable contradicts it."""


def dump_for_handoff(settings: BaseSettings) -> str:
    """The hand-off's value. Secrets are unwrapped, since the worker is the one that uses them,
    so the value must never be logged or shown; the settings excluded from dumps, the
    orchestrator's own, stay out."""
    values: dict[str, Any] = settings.model_dump(mode="json")
    secrets = {
        name: secret.get_secret_value()
        for name in values
        if isinstance(secret := getattr(settings, name), SecretStr)
    }
    return json.dumps(values | secrets)


def handed_off(
    settings_cls: type[BaseSettings], variables: PydanticBaseSettingsSource
) -> PydanticBaseSettingsSource | None:
    """The hand-off as a settings source, joined by the settings it does not carry that
    `variables` give; None when this process was handed nothing."""
    document = os.environ.get(HANDOFF_VARIABLE)
    if document is None:
        return None
    values = _parse(document)
    from_variables = variables()
    contradicted = sorted(set(from_variables) & set(values))
    if contradicted:
        prefix = str(settings_cls.model_config.get("env_prefix", ""))
        names = ", ".join(f"{prefix}{name}".upper() for name in contradicted)
        raise SettingsHandOffError(
            f"{names} set beside {HANDOFF_VARIABLE}, the complete settings an orchestrator hands to "
            "its local workers: unset one or the other"
        )
    return InitSettingsSource(settings_cls, from_variables | values)


def _parse(document: str) -> dict[str, Any]:
    try:
        values = json.loads(document)
    except json.JSONDecodeError:
        values = None
    if not isinstance(values, dict):
        # Without the document: it holds secrets.
        raise SettingsHandOffError(f"{HANDOFF_VARIABLE} is not a JSON object")
    return values
