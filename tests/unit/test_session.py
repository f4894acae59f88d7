"""`run_prompt`, one CLI run: its answer, its reports, the questions it stops at, and resuming it
by run id from a later process (every run is checkpointed in the data directory)."""

from __future__ import annotations

import contextlib
import io
import re
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, cast

import pytest
import redis
from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.tools import tool
from langgraph.types import interrupt
from rich.console import Console

from orchestrator import create_orchestrator
from orchestrator import session as session_module
from orchestrator.checkpoints import UnknownRunError, open_checkpointer
from orchestrator.delegation import listener as listener_module
from orchestrator.delegation.client import DelegationClient
from orchestrator.session import reports_in, run_prompt
from shared.celery_app import create_celery_app, queue_for
from shared.offline_model import OFFLINE_MARK
from shared.schemas import Report
from shared.settings import Settings
from tests.support.models import ScriptedModel, scripted, tool_call

RESEARCHER = {"name": "researcher", "description": "researches", "tools": [], "model": "offline"}


@tool
def ask(question: str) -> str:
    """Ask the person running the agent."""
    return str(interrupt(question))


def _settings(redis_url: str, data_dir: Path, **changes: Any) -> Settings:
    """No general-purpose subagent unless asked: deepagents would run it on the main agent's
    model, and a scripted one is no model workers can load (`orchestrator.parity`)."""
    files_url = f"memory://session-{uuid.uuid4().hex[:8]}"
    return Settings(  # type: ignore[call-arg]
        redis_url=redis_url,
        files_url=files_url,
        data_dir=data_dir,
        _env_file=None,
        **{"general_purpose": False, **changes},
    )


def _console() -> Console:
    return Console(file=io.StringIO())


MainModel = Callable[[ScriptedModel], None]


@pytest.fixture
def main_model(monkeypatch: pytest.MonkeyPatch) -> MainModel:
    """Runs the CLI's agent on a scripted model, which the model setting (a string) cannot name;
    everything else is what `run_prompt` gives `create_orchestrator`. One model serves every
    `run_prompt` of a test, as one conversation: a resumed run goes on with the next turn."""

    def use(model: ScriptedModel) -> None:
        def build(**options: Any) -> Any:
            return create_orchestrator(model, [ask], subagents=cast(Any, [RESEARCHER]), **options)

        monkeypatch.setattr(session_module, "create_orchestrator", build)

    return use


def _checkpointed_messages(settings: Settings, run_id: str) -> list[BaseMessage]:
    """The run's messages as a later process finds them in the checkpoints."""
    client = DelegationClient(create_celery_app(settings), settings)
    with open_checkpointer(settings) as saver, contextlib.closing(client):
        agent = create_orchestrator(
            scripted(),
            [ask],
            subagents=cast(Any, [RESEARCHER]),
            settings=settings,
            client=client,
            checkpointer=saver,
        )
        state = agent.get_state({"configurable": {"thread_id": run_id}})
    return cast(list[BaseMessage], state.values["messages"])


def _report(delegation_id: str, status: Any = "ok") -> Report:
    return Report(delegation_id=delegation_id, subagent_type="researcher", status=status, summary="s")


def test_reports_are_those_of_the_task_calls_in_the_runs_messages() -> None:
    first, second = _report("d1"), _report("d2", status="error")
    messages: list[BaseMessage] = [
        HumanMessage(content="go"),
        ToolMessage(content="s", tool_call_id="a", name="task", artifact=first.model_dump(mode="json")),
        # Other tools' artifacts, and `task` answers that never became a delegation, are no reports.
        ToolMessage(content="x", tool_call_id="b", name="read_file", artifact={"path": "/a"}),
        ToolMessage(content="We cannot invoke subagent nobody", tool_call_id="c", name="task"),
        ToolMessage(content="s", tool_call_id="d", name="task", artifact=second.model_dump(mode="json")),
    ]

    assert reports_in(messages) == [first, second]


def test_a_new_run_answers_under_a_run_id_of_its_own(unit_redis: str, tmp_path: Path) -> None:
    settings = _settings(unit_redis, tmp_path, general_purpose=True)

    first = run_prompt(settings, "What changed?", _console())
    second = run_prompt(settings, "What changed?", _console())

    assert first.answer == f"{OFFLINE_MARK}\nNothing to do with tools for: What changed?"
    assert (first.reports, first.waiting) == ([], [])
    assert re.fullmatch(r"run-[0-9a-f]{12}", first.run_id)
    assert second.run_id != first.run_id
    assert first.elapsed_s > 0


def test_a_finished_run_resumed_by_its_id_gives_its_answer_again_without_running_again(
    unit_redis: str, tmp_path: Path, main_model: MainModel
) -> None:
    settings = _settings(unit_redis, tmp_path)
    main_model(scripted("the answer"))  # one turn: a second model call would fail
    done = run_prompt(settings, "question", _console())

    again = run_prompt(settings, None, _console(), run_id=done.run_id)

    assert (again.run_id, again.answer) == (done.run_id, "the answer")


def test_resuming_a_run_the_checkpoints_do_not_hold_names_it_and_where_they_are(
    unit_redis: str, tmp_path: Path
) -> None:
    settings = _settings(unit_redis, tmp_path, general_purpose=True)

    with pytest.raises(UnknownRunError) as unknown:
        run_prompt(settings, None, _console(), run_id="run-nosuchrun")

    assert "'run-nosuchrun'" in str(unknown.value)
    assert str(tmp_path / "checkpoints.sqlite") in str(unknown.value)


def _asking_model() -> ScriptedModel:
    """Asks two questions in one turn, then finishes."""
    return scripted(
        [tool_call("ask", "q1", question="colour?"), tool_call("ask", "q2", question="size?")], "done"
    )


def _answers(settings: Settings, run_id: str) -> dict[str, str]:
    return {
        str(m.tool_call_id): str(m.content)
        for m in _checkpointed_messages(settings, run_id)
        if isinstance(m, ToolMessage)
    }


def test_every_question_a_run_stops_at_goes_to_the_answerer_until_it_finishes(
    unit_redis: str, tmp_path: Path, main_model: MainModel
) -> None:
    settings = _settings(unit_redis, tmp_path)
    main_model(_asking_model())
    asked: list[str] = []

    def answer(question: Any) -> str:
        asked.append(question)
        return f"{question} blue"

    outcome = run_prompt(settings, "choose", _console(), answer=answer)

    assert (outcome.answer, outcome.waiting) == ("done", [])
    assert sorted(asked) == ["colour?", "size?"]
    # Each answer went to the question it answers.
    assert _answers(settings, outcome.run_id) == {"q1": "colour? blue", "q2": "size? blue"}


def test_without_an_answerer_the_run_waits_and_a_later_run_prompt_answers_it(
    unit_redis: str, tmp_path: Path, main_model: MainModel
) -> None:
    settings = _settings(unit_redis, tmp_path)
    main_model(_asking_model())

    paused = run_prompt(settings, "choose", _console())
    assert sorted(question.value for question in paused.waiting) == ["colour?", "size?"]
    assert paused.answer == ""

    resumed = run_prompt(settings, None, _console(), run_id=paused.run_id, answer=lambda q: f"{q} red")

    assert (resumed.run_id, resumed.answer, resumed.waiting) == (paused.run_id, "done", [])
    assert _answers(settings, paused.run_id) == {"q1": "colour? red", "q2": "size? red"}


def test_a_delegation_no_worker_takes_is_reported_and_left_nowhere_in_redis(
    unit_redis: str, tmp_path: Path, main_model: MainModel, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No worker runs here: the delegation waits out its queue timeout, and the run reports that
    instead of hanging, with nothing left behind for a worker started later to pick up."""
    monkeypatch.setattr(listener_module, "CHECK_EVERY_S", 0.05)
    settings = _settings(unit_redis, tmp_path, queue_timeout=0.2)
    main_model(scripted([tool_call("task", "t", description="dig", subagent_type="researcher")], "gave up"))

    outcome = run_prompt(settings, "dig", _console())

    assert outcome.answer == "gave up"
    (report,) = outcome.reports
    queue = queue_for(settings, "researcher")
    assert (report.subagent_type, report.status) == ("researcher", "timeout")
    assert f"no worker took the job within 0.2 s; are workers consuming queue {queue!r}?" == report.summary
    left = redis.Redis.from_url(unit_redis)
    assert left.llen(queue) == 0
    assert list(left.scan_iter(f"{settings.queue_prefix}:dlg:*")) == []
    left.close()
