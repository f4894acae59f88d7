"""How an exception is told to whoever did not see it happen: the caller of a delegation, the
result of a batch item, a worker's log.

A provider client's exceptions often say little by themselves ("Connection error.", or nothing
at all) and keep the reason in their cause, so the text names both; secret values the run
carries are scrubbed from either."""

from __future__ import annotations

import traceback
from collections.abc import Iterable

from shared.context import redact


def _one(error: BaseException) -> str:
    message = str(error).strip()
    return f"{type(error).__name__}: {message}" if message else type(error).__name__


def error_text(error: BaseException, secret_values: Iterable[str] = ()) -> str:
    """`Type: message`, and the exception that caused it when there is one."""
    text = _one(error)
    cause = error.__cause__ or (None if error.__suppress_context__ else error.__context__)
    if cause is not None and _one(cause) not in text:
        text += f" (caused by {_one(cause)})"
    return redact(text, secret_values)


def scrubbed_traceback(error: BaseException, secret_values: Iterable[str]) -> str:
    """The whole traceback, chained exceptions included, for a log that only operators read;
    still without the run's secrets, which a frame's message may hold."""
    return redact("".join(traceback.format_exception(error)).rstrip(), secret_values)
