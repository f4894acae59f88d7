"""langgraph's `PostgresStore` as the main agent's `store=`: workers open the same database from
`TASKFORCE_STORE_URL`, so what a subagent's tool puts there on a worker, the main process reads,
and what was put there before the run through the store's own API, subagents read."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from langchain_core.messages import HumanMessage, ToolMessage
from langgraph.store.postgres import PostgresStore
from pydantic import SecretStr

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from shared.settings import Settings
from shared.stores import open_deployment_store
from tests.integration.conftest import task_call
from tests.parity.agents import ARCHIVIST, Reader
from tests.parity.harness import ParityEnv, answer_part, recording
from tests.support.postgres import POSTGRES_URL, require_postgres

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def postgres_workers(parity: ParityEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Settings]:
    """One worker on a queue prefix of its own whose store is the PostgresStore."""
    require_postgres()
    settings = parity.settings.model_copy(
        update={"store_url": SecretStr(POSTGRES_URL), "queue_prefix": f"{parity.settings.queue_prefix}pg"}
    )
    with worker_pool(settings, tmp_path_factory.mktemp("pg-worker-logs"), 1, name="pgstore"):
        yield settings


@pytest.fixture
def store(postgres_workers: Settings) -> Iterator[PostgresStore]:
    opened = open_deployment_store(postgres_workers)
    assert isinstance(opened, PostgresStore)
    for namespace in [("library", "books"), ("library", "visits")]:
        for item in opened.search(namespace, limit=1000):
            opened.delete(item.namespace, item.key)
    yield opened
    opened.conn.close()  # type: ignore[union-attr]


def test_subagents_on_workers_read_and_write_the_postgres_store(
    postgres_workers: Settings, store: PostgresStore
) -> None:
    store.put(("library", "books"), "celery", {"title": "Celery in depth", "shelf": "b2"})
    agent = create_orchestrator(
        recording([task_call("c", "archivist", "Celery")], "found"),
        subagents=[ARCHIVIST],
        store=store,
        context_schema=Reader,
        settings=postgres_workers,
    )

    result = agent.invoke({"messages": [HumanMessage("look it up")]}, context={"name": "ada"})

    (report,) = [m for m in result["messages"] if isinstance(m, ToolMessage)]
    assert str(report.artifact["worker"]).startswith("pgstore")
    answer = json.loads(answer_part(report).removeprefix("archivist: "))
    assert answer["store"] == "PostgresStore"
    assert answer["book"] == {"title": "Celery in depth", "shelf": "b2"}
    visit = store.get(("library", "visits"), "celery")
    assert visit is not None
    assert visit.value == {"topic": "Celery", "reader": "ada"}
