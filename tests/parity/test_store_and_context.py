"""What deepagents hands subagents' tools from the main agent at run time: its `store` as
`runtime.store`, and its runtime context, typed by a dataclass or pydantic `context_schema`, as
`runtime.context`. The same in one process and on workers."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import SecretStr

from tests.integration.conftest import task_call
from tests.parity.agents import ARCHIVIST, Reader, ReaderProfile
from tests.parity.harness import Both, ParityEnv, Scenario, assert_parity, run_both, stored, task_answers

LIBRARY: dict[tuple[str, ...], dict[str, dict[str, Any]]] = {
    ("library", "books"): {"celery": {"title": "Celery in depth", "shelf": "b2"}}
}


# deepagents' in-process run has langchain-core serialise a typed context inside the tool's
# injected runtime, and warn about it (secrets included); workers silence it (workers/app.py).
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")


def _answers(both: Both) -> dict[str, dict[str, Any]]:
    answers = task_answers(both.deepagents)
    return {call: json.loads(answer.removeprefix("archivist: ")) for call, answer in answers.items()}


@pytest.mark.parametrize("asynchronous", [False, True], ids=["invoke", "ainvoke"])
def test_subagents_read_and_write_the_main_agents_store_with_its_typed_context(
    parity: ParityEnv, asynchronous: bool
) -> None:
    both = run_both(
        Scenario(
            name="store",
            turns=[[task_call("c", "archivist", "Celery"), task_call("r", "archivist", "Redis")], "found"],
            subagents=[ARCHIVIST],
            agent={"context_schema": Reader},
            context={"name": "ada", "shelf": "b2", "token": "tok-parity-1"},  # LangGraph makes it a Reader
            store=LIBRARY,
            asynchronous=asynchronous,
        ),
        parity,
    )
    assert_parity(both)  # includes every item of both stores
    answers = _answers(both)
    assert answers["c"] == {
        "context_type": "Reader",
        "context": {"name": "ada", "shelf": "b2", "token": "<secret str>"},
        "store": "SharedStore",
        "book": {"title": "Celery in depth", "shelf": "b2"},
    }
    assert answers["r"]["book"] is None
    assert both.taskforce.store is not None
    assert stored(both.taskforce.store)[(("library", "visits"), "redis")] == {
        "topic": "Redis",
        "reader": "ada",
    }


@pytest.mark.parametrize(
    ("schema", "context"),
    [
        (ReaderProfile, ReaderProfile(name="bo", level=3, card=SecretStr("card-parity-2"))),
        (None, Reader(name="cy", shelf="a1")),
    ],
    ids=["pydantic context_schema", "dataclass context without a schema"],
)
def test_a_typed_context_reaches_subagents_as_its_type_and_without_a_store_none(
    parity: ParityEnv, schema: type | None, context: object
) -> None:
    both = run_both(
        Scenario(
            name="typed-context",
            turns=[[task_call("t", "archivist", "Celery")], "done"],
            subagents=[ARCHIVIST],
            agent={"context_schema": schema} if schema else {},
            context=context,
        ),
        parity,
    )
    assert_parity(both)
    answer = _answers(both)["t"]
    assert answer["context_type"] == type(context).__name__
    assert answer["store"] is None
    assert answer["book"] is None
