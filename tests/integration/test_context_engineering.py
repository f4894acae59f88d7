"""Context engineering across machines: what deepagents does in one process, done by real
worker processes on the shared files, and seen by the main agent."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from shared.celery_app import queue_for
from shared.files import SharedFiles, read_text, shared_files
from shared.settings import Settings
from tests.integration.agents import (
    DATASET_ROWS,
    MARKER,
    NOTES,
    OFFLOADED_DATASET,
    PREFERENCES,
    PromptQuotingModel,
    dataset_row,
)
from tests.integration.conftest import Cluster, read_call, scripted, task_call, tool_messages
from tests.moto_s3 import create_bucket, moto_server, s3_client


def _run(cluster: Cluster | Settings, thread_id: str, *turns: Any) -> dict[str, Any]:
    settings = cluster if isinstance(cluster, Settings) else cluster.settings
    agent = create_orchestrator(scripted(*turns), settings=settings)
    state: dict[str, Any] = agent.invoke(
        {"messages": [HumanMessage(content="start")]}, {"configurable": {"thread_id": thread_id}}
    )
    return state


@pytest.fixture
def files(cluster: Cluster) -> SharedFiles:
    return shared_files(cluster.settings)


def _offload(settings: Settings, files: SharedFiles, thread_id: str) -> None:
    """The offloader's 1.2 MB tool result goes to the shared files on the worker; the subagent
    and then the main agent read it back by path, and only the report enters the main context."""
    last_rows = read_call("main-read", OFFLOADED_DATASET, offset=DATASET_ROWS - 2, limit=2)
    fetch = [task_call("off", "offloader", "fetch the sensor data")]
    state = _run(settings, thread_id, fetch, [last_rows], "done")
    messages = tool_messages(state)

    report = messages["off"]
    assert report.artifact["status"] == "ok"
    # The subagent read its own offloaded result back by path, and held only a preview.
    assert dataset_row(0).strip() in str(report.content)
    in_context = int(str(report.content).rsplit("was ", 1)[1].split(" chars")[0])
    assert in_context < 100_000
    # The main agent reads the same file, written on another process, by the same path.
    assert dataset_row(DATASET_ROWS - 1).strip() in str(messages["main-read"].content)
    full = read_text(files.for_run(thread_id), OFFLOADED_DATASET)
    assert full == "".join(dataset_row(n) for n in range(DATASET_ROWS))
    assert len(full) > 1_000_000
    # The main agent's context holds the report and a window of lines, never the megabyte.
    assert sum(len(str(m.content)) for m in state["messages"]) < 20_000
    assert files.for_run("another-run").read(OFFLOADED_DATASET).error is not None


def test_a_large_tool_result_is_offloaded_on_the_worker_and_read_back_by_the_main_agent(
    cluster: Cluster, files: SharedFiles
) -> None:
    _offload(cluster.settings, files, "offload-1")


@pytest.fixture
def s3_settings(cluster: Cluster, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Settings]:
    """A worker whose shared files are a bucket on a real moto S3 server, configured the way a
    deployment would be: `TASKFORCE_FILES_URL=s3://...` and the usual AWS variables."""
    with moto_server() as endpoint:
        create_bucket(s3_client(endpoint), "taskforce-files")
        for name, value in {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ENDPOINT_URL_S3": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        settings = cluster.settings.model_copy(
            update={
                "files_url": "s3://taskforce-files/tf",
                "queue_prefix": cluster.settings.queue_prefix + "-s3",
            }
        )
        with worker_pool(settings, tmp_path, 1, name="s3w"):
            yield settings


def test_offloading_works_the_same_with_the_files_on_s3(s3_settings: Settings) -> None:
    _offload(s3_settings, shared_files(s3_settings), "offload-s3")

    listed = s3_client(os.environ["AWS_ENDPOINT_URL_S3"]).list_objects_v2(
        Bucket="taskforce-files", Prefix="tf/runs/offload-s3/"
    )
    assert "tf/runs/offload-s3/large_tool_results/fetch-1" in {item["Key"] for item in listed["Contents"]}


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


def test_the_main_agent_loads_agents_md_and_skills_from_the_same_shared_files(
    cluster: Cluster, files: SharedFiles
) -> None:
    _put(files, "/memories/AGENTS.md", f"- {MARKER} main rule: delegate early.\n")
    _put(files, "/skills/plan/SKILL.md", f"---\nname: plan\ndescription: {MARKER} planning skill\n---\n")
    # Without general-purpose, which deepagents would give these skills too (orchestrator.parity).
    settings = cluster.settings.model_copy(update={"general_purpose": False})
    agent = create_orchestrator(
        PromptQuotingModel(), settings=settings, memory=["/memories/AGENTS.md"], skills=["/skills/"]
    )

    state = agent.invoke(
        {"messages": [HumanMessage(content="hi")]}, {"configurable": {"thread_id": "main-1"}}
    )

    answer = str(state["messages"][-1].content)
    assert f"{MARKER} main rule: delegate early." in answer
    assert f"{MARKER} planning skill" in answer


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
