"""Turn a model setting into a chat model: any `init_chat_model` string, or `offline`.

Strings are built as `create_deep_agent` builds them, with deepagents' provider profiles
(OpenAI's Responses API, OpenRouter and NVIDIA headers), so a subagent on a worker talks to its
provider as it would in deepagents. One deliberate exception: with `OPENAI_BASE_URL` set,
`openai:<model>` uses chat completions, the API every OpenAI-compatible server (vLLM, Ollama,
llama.cpp) speaks.
"""

from __future__ import annotations

import os

from deepagents.profiles.provider.provider_profiles import apply_provider_profile
from langchain.chat_models import init_chat_model
from langchain_core.language_models import BaseChatModel

from shared.offline_model import OfflineChatModel

OFFLINE = "offline"


class ModelConfigError(ValueError):
    """The model setting names no model that can be built here."""


def make_model(model: str | BaseChatModel) -> BaseChatModel:
    if isinstance(model, BaseChatModel):
        return model
    if model.strip() == OFFLINE:
        return OfflineChatModel()
    try:
        options = apply_provider_profile(model)
        if os.environ.get("OPENAI_BASE_URL"):
            options.pop("use_responses_api", None)
        built: BaseChatModel = init_chat_model(model, **options)
        return built
    except (ValueError, ImportError) as error:
        raise ModelConfigError(
            f"cannot build model {model!r}: {error}. Use 'offline' or a 'provider:model' string "
            "such as 'openai:gpt-4.1-mini'"
        ) from error


def is_offline(model: str | BaseChatModel) -> bool:
    return isinstance(model, OfflineChatModel) or (isinstance(model, str) and model.strip() == OFFLINE)
