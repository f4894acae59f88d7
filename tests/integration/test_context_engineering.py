"""Context engineering across machines: what deepagents does in one process, done by real
worker processes on the shared files, and seen by the main agent."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from shared.celery_app import queue_for
from shared.files import SharedFiles, read_text, shared_files
from tests.integration.agents import DATASET_ROWS, MARKER, NOTES, OFFLOADED_DATASET, PREFERENCES, dataset_row
from tests.integration.conftest import Cluster, read_call, scripted, task_call, tool_messages


def _run(cluster: Cluster, thread_id: str, *turns: Any) -> dict[str, Any]:
    agent = create_orchestrator(scripted(*turns), settings=cluster.settings)
    state: dict[str, Any] = agent.invoke(
        {"messages": [HumanMessage(content="start")]}, {"configurable": {"thread_id": thread_id}}
    )
    return state


@pytest.fixture
def files(cluster: Cluster) -> SharedFiles:
    return shared_files(cluster.settings)


def test_a_large_tool_result_is_offloaded_on_the_worker_and_read_back_by_the_main_agent(
    cluster: Cluster, files: SharedFiles
) -> None:
    last_rows = read_call("main-read", OFFLOADED_DATASET, offset=DATASET_ROWS - 2, limit=2)
    state = _run(
        cluster, "offload-1", [task_call("off", "offloader", "fetch the sensor data")], [last_rows], "done"
    )
    messages = tool_messages(state)

    report = messages["off"]
    assert report.artifact["status"] == "ok"
    # The subagent read its own offloaded result back by path, and held only a preview.
    assert dataset_row(0).strip() in str(report.content)
    in_context = int(str(report.content).rsplit("was ", 1)[1].split(" chars")[0])
    assert in_context < 100_000
    # The main agent reads the same file, written on another process, by the same path.
    assert dataset_row(DATASET_ROWS - 1).strip() in str(messages["main-read"].content)
    full = read_text(files.for_run("offload-1"), OFFLOADED_DATASET)
    assert full == "".join(dataset_row(n) for n in range(DATASET_ROWS))
    assert len(full) > 1_000_000
    # The main agent's context holds the report and a window of lines, never the megabyte.
    assert sum(len(str(m.content)) for m in state["messages"]) < 20_000
    assert files.for_run("another-run").read(OFFLOADED_DATASET).error is not None


def test_summarization_fires_inside_a_worker_and_keeps_the_full_history_in_the_shared_files(
    cluster: Cluster, files: SharedFiles
) -> None:
    state = _run(cluster, "summary-1", [task_call("notes", "note-taker", "investigate")], "done")

    report = tool_messages(state)["notes"]
    assert report.artifact["status"] == "ok"
    assert f"took {NOTES} notes; summarized=True" in str(report.content)
    workspace = files.for_run("summary-1")
    histories = workspace.glob("/conversation_history/*.md").matches or []
    assert histories, "the evicted history was not offloaded to the shared files"
    history = "".join(read_text(workspace, info["path"]) for info in histories)
    assert "note 1 of the investigation" in history
    assert "note 2 of the investigation" in history


def _put(files: SharedFiles, path: str, text: str) -> None:
    (response,) = files.for_run("setup").upload_files([(path, text.encode())])
    assert response.error is None


def test_workers_load_agents_md_and_skills_from_the_shared_files_on_every_delegation(
    cluster: Cluster, files: SharedFiles
) -> None:
    _put(files, "/memories/AGENTS.md", f"# House rules\n- {MARKER} house rule: cite the log line.\n")
    skill = "---\nname: triage\ndescription: {} triage playbook {}\n---\n# Triage\nSteps.\n"
    _put(files, "/skills/triage/SKILL.md", skill.format(MARKER, "v1"))

    first = tool_messages(
        _run(cluster, "skills-1", [task_call("lib", "librarian", "what do you know?")], "done")
    )
    _put(files, "/skills/triage/SKILL.md", skill.format(MARKER, "v2"))
    second = tool_messages(
        _run(cluster, "skills-2", [task_call("lib", "librarian", "what do you know?")], "done")
    )

    for seen in (first["lib"], second["lib"]):
        assert f"{MARKER} house rule: cite the log line." in str(seen.content)
    assert "triage playbook v1" in str(first["lib"].content)
    # Same worker process, no restart: the edited skill is what the next delegation loads.
    assert "triage playbook v2" in str(second["lib"].content)
    assert first["lib"].artifact["worker"] == second["lib"].artifact["worker"]


@pytest.fixture
def memo_workers(cluster: Cluster, tmp_path: Path) -> Iterator[None]:
    """One worker for the writer's queue and another for the reader's."""
    settings = cluster.settings
    with (
        worker_pool(settings, tmp_path, 1, "-Q", queue_for(settings, "memo-writer"), name="writer"),
        worker_pool(settings, tmp_path, 1, "-Q", queue_for(settings, "memo-reader"), name="reader"),
    ):
        yield


@pytest.mark.usefixtures("memo_workers")
def test_long_term_memory_written_in_one_run_is_read_by_a_later_run_on_another_worker(
    cluster: Cluster, files: SharedFiles
) -> None:
    wrote = tool_messages(
        _run(
            cluster,
            "memory-run-1",
            [task_call("w", "memo-writer", "The user prefers tabs over spaces.")],
            "done",
        )
    )["w"]
    read = tool_messages(
        _run(cluster, "memory-run-2", [task_call("r", "memo-reader", "What does the user prefer?")], "done")
    )["r"]

    assert wrote.artifact["status"] == read.artifact["status"] == "ok"
    assert wrote.artifact["worker"].startswith("writer0.")
    assert read.artifact["worker"].startswith("reader0.")
    assert "The user prefers tabs over spaces." in str(read.content)
    assert read_text(files.memories, "/prefs.md") == "The user prefers tabs over spaces."
    # /memories/ outlives the run; the run's own workspace does not hold it.
    assert files.workspace("memory-run-1").read(PREFERENCES).error is not None
