"""Tests that build settings, or start processes that do, see no `TASKFORCE_*` variable of the
developer's: only what the test gives them."""

from __future__ import annotations

import os

import pytest

_PREFIX = "TASKFORCE_"


def without_settings() -> dict[str, str]:
    """This process's environment minus every `TASKFORCE_*` variable, for a child process."""
    return {name: value for name, value in os.environ.items() if not name.upper().startswith(_PREFIX)}


def clear_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset every `TASKFORCE_*` variable for the rest of the test."""
    for name in list(os.environ):
        if name.upper().startswith(_PREFIX):
            monkeypatch.delenv(name)
