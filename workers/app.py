"""The worker entry point: `celery -A workers.app worker` (which `taskforce worker` runs).

Everything a worker needs is built once per process from the same `TASKFORCE_*` settings as the
orchestrator: the registry, the shared files and, lazily, the compiled subagents.
"""

from __future__ import annotations

import warnings
from functools import cache
from typing import Any

from celery import Task

from shared.celery_app import RUN_DELEGATION, create_celery_app, delegation_queue
from shared.files import SharedFiles, shared_files
from shared.registry import effective_specs, load_registry
from shared.settings import Settings
from workers.runner import Attempt, parse_delegation, run_delegation
from workers.subagents import SubagentCache

# langchain-core warns about serialising a tool's injected runtime, and the warning text
# contains the runtime context, secrets included, which would land in worker logs.
warnings.filterwarnings("ignore", message="Pydantic serializer warnings", category=UserWarning)

settings = Settings()
app = create_celery_app(settings)
# Loaded at import, so a bad registry stops the worker at start-up instead of failing every job.
specs = effective_specs(load_registry(settings.subagents), general_purpose=settings.general_purpose)
# By default a worker serves every subagent type; `-Q` narrows a pool to some of them.
app.conf.task_queues = [delegation_queue(settings, spec["name"]) for spec in specs]


@cache
def files() -> SharedFiles:
    return shared_files(settings)


@cache
def subagents() -> SubagentCache:
    return SubagentCache(specs, settings.model, files().backend())


@app.task(name=RUN_DELEGATION, bind=True)  # type: ignore[untyped-decorator]
def run_delegation_task(self: Task[Any, Any], payload: dict[str, Any]) -> dict[str, Any]:
    delegation = parse_delegation(payload)
    attempt = Attempt(worker=self.request.hostname or "", number=self.request.retries + 1)
    return run_delegation(delegation, subagents(), files().backend(), attempt).model_dump(mode="json")
