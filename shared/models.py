"""Turn a model setting into a chat model: any `init_chat_model` string, or `offline`.

Strings go through `init_chat_model` rather than deepagents' resolver so that
`openai:<model>` uses chat completions, which every OpenAI-compatible server (vLLM, Ollama,
llama.cpp via `OPENAI_BASE_URL`) speaks.
"""

from __future__ import annotations

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
        return init_chat_model(model)
    except (ValueError, ImportError) as error:
        raise ModelConfigError(
            f"cannot build model {model!r}: {error}. Use 'offline' or a 'provider:model' string "
            "such as 'openai:gpt-4.1-mini'"
        ) from error


def is_offline(model: str | BaseChatModel) -> bool:
    return isinstance(model, OfflineChatModel) or (isinstance(model, str) and model.strip() == OFFLINE)
