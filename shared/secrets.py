"""Secret context values at rest: sealed with Fernet before they enter a broker message.

Broker messages sit in Redis (and its append-only file) while they wait, and again in the
delegation's record so that a lapsed delegation can be handed to another worker. Only a
process holding the key, the orchestrator and the workers, can open them.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken
from pydantic import SecretStr

SEALED_PREFIX = "fernet:"


class SecretsKeyError(ValueError):
    """Secrets cannot be sealed or opened with the key at hand."""


def new_key() -> str:
    return Fernet.generate_key().decode()


class SecretBox:
    """Seals and opens secret values with the key from `TASKFORCE_SECRETS_KEY`."""

    def __init__(self, key: SecretStr | None) -> None:
        self._fernet: Fernet | None = None
        if key is not None:
            try:
                self._fernet = Fernet(key.get_secret_value().encode())
            except ValueError:
                raise SecretsKeyError(
                    "TASKFORCE_SECRETS_KEY is not a Fernet key (32 url-safe base64-encoded bytes); "
                    "make one with `taskforce secrets-key`"
                ) from None

    def require_key(self) -> None:
        """Fail before the first model call, not at the first delegation."""
        self._require()

    def _require(self) -> Fernet:
        if self._fernet is None:
            raise SecretsKeyError(
                "secret context values need TASKFORCE_SECRETS_KEY, the same on the orchestrator and "
                "the workers, so that they are encrypted in broker messages; make one with "
                "`taskforce secrets-key`"
            )
        return self._fernet

    def seal(self, value: SecretStr) -> str:
        return SEALED_PREFIX + self._require().encrypt(value.get_secret_value().encode()).decode()

    def open(self, sealed: str) -> SecretStr:
        if not sealed.startswith(SEALED_PREFIX):
            raise SecretsKeyError("a secret arrived unsealed; the sender must set TASKFORCE_SECRETS_KEY")
        try:
            return SecretStr(self._require().decrypt(sealed[len(SEALED_PREFIX) :].encode()).decode())
        except InvalidToken:
            raise SecretsKeyError(
                "a secret was sealed with another key: give the orchestrator and the workers the same "
                "TASKFORCE_SECRETS_KEY"
            ) from None
