"""How an exception is told: type, message, cause, never a secret."""

from __future__ import annotations

from shared.errors import error_text, scrubbed_traceback

SECRET = "sk-live-123"


def _raised(error: BaseException) -> BaseException:
    try:
        raise error
    except BaseException as caught:
        return caught


def test_type_and_message_and_a_cause_worth_naming() -> None:
    error = RuntimeError("Connection error.")
    error.__cause__ = ConnectionRefusedError(111, "Connection refused")

    assert error_text(error) == (
        "RuntimeError: Connection error. (caused by ConnectionRefusedError: [Errno 111] Connection refused)"
    )


def test_an_exception_without_a_message_is_named_by_its_type() -> None:
    assert error_text(_raised(RuntimeError())) == "RuntimeError"


def test_secrets_are_scrubbed_from_the_text_and_the_traceback() -> None:
    error = _raised(PermissionError(f"key {SECRET} refused"))

    assert SECRET not in error_text(error, [SECRET])
    logged = scrubbed_traceback(error, [SECRET])
    assert logged.startswith("Traceback (most recent call last)")
    assert "PermissionError: key" in logged
    assert SECRET not in logged
