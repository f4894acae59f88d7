"""The registry of the limits tests (`tests/provider/test_limits.py`): the provider tests'
writer, and writers whose models have limits of their own in the tests' settings, or in their
spec (`model_limits`)."""

from __future__ import annotations

from typing import Any

from tests.provider.agents import SUBAGENTS as PROVIDER_SUBAGENTS
from tests.provider.agents import lookup_fact

RPM_MODEL = "openai:fake-rpm"
TPM_MODEL = "openai:fake-tpm"
THRIFTY_MODEL = "openai:fake-thrifty"


def _writer(name: str, model: str, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"Writes a one-line note on a topic ({name}).",
        "system_prompt": "You write one short note. Call lookup_fact on the topic first.",
        "tools": [lookup_fact],
        "model": model,
        **extra,
    }


SUBAGENTS: list[dict[str, Any]] = [
    next(spec for spec in PROVIDER_SUBAGENTS if spec["name"] == "writer"),
    # Names that hold no other's: the offline main model delegates to the first type it finds
    # named in the request.
    _writer("rpm-limited", RPM_MODEL),
    _writer("tpm-limited", TPM_MODEL),
    # The pool allows this model 3 calls at once; the type holds itself to 1.
    _writer("thrifty", THRIFTY_MODEL, model_limits={"openai:*": {"max_concurrency": 1}}),
]
