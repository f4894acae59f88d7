"""Turn a model setting into a chat model: any `init_chat_model` string, or `offline`.

Strings are built as `create_deep_agent` builds them, with deepagents' provider profiles
(OpenAI's Responses API, OpenRouter and NVIDIA headers), so a subagent on a worker talks to its
provider as it would in deepagents. One deliberate exception: with a base URL (`OPENAI_BASE_URL`,
or `base_url` among the model's arguments), `openai:<model>` uses chat completions, the API every
OpenAI-compatible server (vLLM, Ollama, llama.cpp) speaks; `"use_responses_api": true` in the
model's arguments keeps the Responses API.

A model's client arguments (`max_retries`, `timeout`, `base_url`, ...) come from the
`TASKFORCE_MODEL_OPTIONS` setting, by model string, and from a subagent spec's own
`model_options`: the same settings build the same client on every machine. A client's own
retries are off unless `max_retries` is given: taskforce retries 429s and overloaded answers
itself (`shared.guarded_model`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from deepagents.profiles.provider.provider_profiles import apply_provider_profile
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel
from pydantic import ValidationError

from shared.offline_model import OfflineChatModel

OFFLINE = "offline"


class ModelConfigError(ValueError):
    """The model setting names no model that can be built here."""


def make_model(model: str | BaseChatModel, arguments: Mapping[str, Any] | None = None) -> BaseChatModel:
    """`arguments`: a model string's client arguments (`Settings.model_arguments`); a model
    object is used as given."""
    if isinstance(model, BaseChatModel):
        return model
    if model.strip() == OFFLINE:
        return OfflineChatModel()
    arguments = dict(arguments or {})
    try:
        options = apply_provider_profile(model)
        if os.environ.get("OPENAI_BASE_URL") or "base_url" in arguments:
            options.pop("use_responses_api", None)
        built: BaseChatModel = init_chat_model(model, **{**options, **arguments})
        if "max_retries" not in arguments and "max_retries" in type(built).model_fields:
            # The guard tries again itself, pool-wide and within the deadline
            # (`shared.guarded_model`); the client's own retries would hide 429s from it.
            built = init_chat_model(model, **{**options, **arguments, "max_retries": 0})
        return built
    except (ValueError, ImportError, TypeError) as error:
        raise ModelConfigError(
            f"cannot build model {model!r}: {_one_line(error)}. Use 'offline' or a 'provider:model' "
            "string such as 'openai:gpt-4.1-mini', with arguments from TASKFORCE_MODEL_OPTIONS"
        ) from error


def _one_line(error: Exception) -> str:
    """pydantic's own text would echo the arguments' values, an `api_key` among them."""
    if isinstance(error, ValidationError):
        return "; ".join(
            f"{'.'.join(map(str, problem['loc'])) or 'arguments'}: {problem['msg']}"
            for problem in error.errors(include_url=False, include_input=False)
        )
    return " ".join(str(error).split()) or type(error).__name__


def is_offline(model: str | BaseChatModel) -> bool:
    return isinstance(model, OfflineChatModel) or (isinstance(model, str) and model.strip() == OFFLINE)


def model_name(model: str | BaseChatModel) -> str:
    """How a model is named to a user: its string, or the class and model name of an object."""
    if isinstance(model, str):
        return model.strip()
    if isinstance(model, OfflineChatModel):
        return OFFLINE
    named = getattr(model, "model_name", None) or getattr(model, "model", None)
    return f"{type(model).__name__}({named})" if isinstance(named, str) else type(model).__name__
