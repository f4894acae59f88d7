"""One way to give a context variable a value for the length of a block.

Per-delegation and per-run values (the run's workspace, its store namespaces, the files it
writes, its model calls' scope, a batch item's client) travel in context variables, so that one
compiled agent serves many runs at once."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, TypeVar

_T = TypeVar("_T")


@contextlib.contextmanager
def bound(variable: ContextVar[Any], value: _T) -> Iterator[_T]:
    """`variable` is `value` inside the block and what it was before after it, however it ends.
    (`Any`: most such variables default to None, and a `ContextVar[X | None]` takes an `X`.)"""
    token = variable.set(value)
    try:
        yield value
    finally:
        variable.reset(token)
