"""The budgets of a main agent's runs: which accounts a run spends from, and the main agent's
own model calls charged to them.

A run spends from `run:<thread>`, or, run as a batch item (its config's metadata names the
batch and the item, as `orchestrator.batch.run` sets it), from `item:<batch>:<item>`, which all the
item's attempts share, and from `batch:<batch>`. Every delegation carries these accounts to its
worker; the main agent's own calls are charged here, and go on when the budget is spent, so that
the run answers with what its subagents reported (new delegations end `budget_exhausted` on
the worker without running, running ones at their next model call).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from langchain.agents.middleware.types import AgentMiddleware, ModelRequest, ModelResponse
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config

from orchestrator.delegation.building import STAND_IN_THREAD_ID_KEY, thread_id_of
from shared.budgets import Accounts, Budget, Spent
from shared.guarded_model import CallScope, call_scope
from shared.ledger import open_ledger
from shared.schemas import BudgetRef
from shared.settings import Settings

BATCH_ID_KEY = "taskforce_batch_id"
ITEM_ID_KEY = "taskforce_item_id"


def run_account(thread_id: str) -> str:
    return f"run:{thread_id}"


def item_account(batch_id: str, item_id: str) -> str:
    return f"item:{batch_id}:{item_id}"


def batch_account(batch_id: str) -> str:
    return f"batch:{batch_id}"


@dataclass(frozen=True)
class RunBudgets:
    """`run`: each run's (a batch item's, in a batch); `batch`: the whole batch's."""

    run: Budget | None = None
    batch: Budget | None = None

    def refs(self, config: RunnableConfig, state: Mapping[str, Any]) -> tuple[BudgetRef, ...]:
        metadata = config.get("metadata") or {}
        batch_id, item_id = metadata.get(BATCH_ID_KEY), metadata.get(ITEM_ID_KEY)
        refs: list[BudgetRef] = []
        if self.run is not None:
            if batch_id is not None and item_id is not None:
                refs.append(self.run.ref(item_account(str(batch_id), str(item_id))))
            else:
                thread = thread_id_of(config) or state.get(STAND_IN_THREAD_ID_KEY) or "unthreaded"
                refs.append(self.run.ref(run_account(str(thread))))
        if self.batch is not None and batch_id is not None:
            refs.append(self.batch.ref(batch_account(str(batch_id))))
        return tuple(refs)

    def __bool__(self) -> bool:
        return self.run is not None or self.batch is not None


NO_BUDGETS = RunBudgets()


def budgets_to_json(budgets: RunBudgets) -> dict[str, Any]:
    """As a submitted item's message carries them to its main-run worker."""
    return {name: None if cap is None else cap.model_dump() for name, cap in vars(budgets).items()}


def budgets_from_json(found: Mapping[str, Any] | None) -> RunBudgets:
    given = found or {}
    return RunBudgets(
        **{
            name: None if given.get(name) is None else Budget.model_validate(given[name])
            for name in ("run", "batch")
        }
    )


def batch_spent(settings: Settings, batch_id: str) -> Spent:
    """What the batch has spent so far, its items' main agents and subagents together."""
    return Accounts.of(open_ledger(settings).client, settings).spent(batch_account(batch_id))


class BudgetMiddleware(AgentMiddleware[Any, Any, Any]):
    """Charges the main agent's model calls to its run's budgets."""

    def __init__(self, budgets: RunBudgets, accounts: Accounts) -> None:
        super().__init__()
        self._budgets = budgets
        self._accounts = accounts

    def _scope(self, request: ModelRequest[Any]) -> CallScope:
        refs = self._budgets.refs(get_config(), request.state)
        return CallScope(budgets=refs, accounts=self._accounts, enforce_budgets=False)

    def wrap_model_call(
        self, request: ModelRequest[Any], handler: Callable[[ModelRequest[Any]], ModelResponse[Any]]
    ) -> ModelResponse[Any]:
        with call_scope(self._scope(request)):
            return handler(request)

    async def awrap_model_call(
        self,
        request: ModelRequest[Any],
        handler: Callable[[ModelRequest[Any]], Awaitable[ModelResponse[Any]]],
    ) -> ModelResponse[Any]:
        with call_scope(self._scope(request)):
            return await handler(request)
