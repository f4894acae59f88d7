"""langchain and langchain-core internals taskforce relies on, written against langchain 1.4
and langchain-core 1.7.

- The state key under which langchain's human-in-the-loop middleware keeps the tool calls a
  person edited, which the `task` middleware reads so that an edited delegation is sent as edited.
- A chat model's LangSmith parameters (`_get_ls_params`): the provider and model name LangSmith
  shows, which is how the pool's model limits name a model."""

from __future__ import annotations

from typing import Any

from langchain.agents.middleware.human_in_the_loop import _EDITED_TOOL_CALLS_KEY as EDITED_TOOL_CALLS_KEY
from langchain_core.language_models import BaseChatModel, LangSmithParams

__all__ = ["EDITED_TOOL_CALLS_KEY", "ls_params"]


def ls_params(model: BaseChatModel, **kwargs: Any) -> LangSmithParams:
    return model._get_ls_params(**kwargs)
