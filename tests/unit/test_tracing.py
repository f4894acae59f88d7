"""The two halves of one trace across machines: what of the caller's config travels
(`shared.tracing`), and how a worker refiles the runs it held back (`workers.tracing`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, cast

from langsmith import RunTree

from shared.tracing import caller_run
from workers.tracing import HeldRuns


class RecordingClient:
    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    def create_run(self, **fields: Any) -> None:
        self.calls.append(("create", fields))

    def update_run(self, **fields: Any) -> None:
        self.calls.append(("update", fields))


def _run(name: str, parent: RunTree | None = None) -> RunTree:
    if parent is not None:
        return parent.create_child(name=name, run_type="chain")
    return RunTree(
        id=uuid.uuid4(), name=name, run_type="tool", start_time=datetime.now(UTC), project_name="worker"
    )


def _posted(run: RunTree) -> dict[str, Any]:
    """What `RunTree.post` hands its client, as far as refiling is concerned."""
    fields = ("id", "name", "run_type", "parent_run_id", "trace_id", "dotted_order", "session_name")
    return {field: getattr(run, field) for field in fields}


def _held(stand_in: RunTree) -> tuple[HeldRuns, RecordingClient, RunTree, RunTree]:
    client = RecordingClient()
    runs = HeldRuns(client, stand_in)  # type: ignore[arg-type]
    child = _run("writer", stand_in)
    grandchild = _run("model", child)
    for run in (child, grandchild):
        runs.create_run(**_posted(run))
    runs.update_run(
        run_id=child.id, dotted_order=child.dotted_order, trace_id=child.trace_id, parent_run_id=stand_in.id
    )
    return runs, client, child, grandchild


def test_held_runs_go_under_the_callers_task_run_once_it_is_known() -> None:
    stand_in = _run("task")
    runs, client, child, grandchild = _held(stand_in)
    assert client.calls == []  # nothing leaves before the real parent is known

    caller_root = RunTree(name="main", run_type="chain", project_name="caller")
    task = caller_root.create_child(name="task", run_type="tool")
    headers = cast("Mapping[str | bytes, str | bytes]", task.to_headers())
    runs.release(RunTree.from_headers(headers))

    created = [fields for kind, fields in client.calls if kind == "create"]
    assert [fields["parent_run_id"] for fields in created] == [task.id, child.id]
    assert {str(fields["trace_id"]) for fields in created} == {str(caller_root.id)}
    own = grandchild.dotted_order.removeprefix(f"{stand_in.dotted_order}.")
    assert created[1]["dotted_order"] == f"{task.dotted_order}.{own}"
    assert {fields["session_name"] for fields in created} == {"caller"}
    (kind, update) = client.calls[-1]
    assert (kind, update["parent_run_id"], update["trace_id"]) == ("update", task.id, caller_root.id)

    later = _run("tools", child)
    runs.create_run(**_posted(later))  # after the release: straight through, refiled
    assert client.calls[-1][1]["dotted_order"].startswith(f"{task.dotted_order}.")


def test_held_runs_whose_caller_never_shows_go_out_as_a_trace_of_their_own() -> None:
    stand_in = _run("task")
    runs, client, child, _ = _held(stand_in)

    runs.release(None)

    created = [fields for kind, fields in client.calls if kind == "create"]
    assert created[0]["parent_run_id"] is None
    assert created[0]["dotted_order"] == child.dotted_order.split(".", 1)[1]
    assert {str(fields["trace_id"]) for fields in created} == {str(child.id)}


def test_tags_and_json_metadata_travel_and_the_frameworks_own_keys_do_not() -> None:
    caller = caller_run(
        {
            "tags": ["nightly", "seq:step:1", "nightly"],
            "metadata": {
                "team": "search",
                "nested": {"a": [1, 2]},
                "opaque": object(),
                "langgraph_node": "tools",
                "ls_provider": "openai",
                "thread_id": "t",
            },
        }
    )
    assert caller.tags == ("nightly",)
    assert caller.metadata == {"team": "search", "nested": {"a": [1, 2]}}
    assert caller.traced is False  # no run tree here: the caller does not trace
