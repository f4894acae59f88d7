"""Tests that build settings, or start processes that do, see no `TASKFORCE_*` variable of the
developer's: only what the test gives them."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

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


@contextmanager
def exported(variables: Mapping[str, str]) -> Iterator[None]:
    """These variables in this process's environment, as a user exports them, for as long as
    the block lasts (processes started meanwhile keep them); then each as it was before."""
    given = {key: os.environ.get(key) for key in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for key, value in given.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
