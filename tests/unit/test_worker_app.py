"""`workers.app`, the module `celery -A workers.app worker` loads, without a worker process: what
it configures at import, what its task does with the messages the orchestrator publishes, and
what it does when the worker becomes ready and when it stops.

Each test imports the module afresh under `TASKFORCE_*` variables of its own, as a worker
process would, and takes the orchestrator's messages off the test Redis the way a worker's
consumer would before handing them to the task."""

from __future__ import annotations

import importlib
import os
import signal
import socket
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from types import ModuleType
from typing import Any, cast

import pytest
from celery import signals
from kombu.transport import redis as kombu_redis
from langchain_core.tools import tool
from pydantic import BaseModel, SecretStr

from orchestrator.delegation.client import DelegationClient
from shared.celery_app import RUN_DELEGATION, BrokerConfigError, create_celery_app, queue_for
from shared.compat import kombu as kombu_compat
from shared.context import REDACTED
from shared.progress import ProgressReader, progress_key
from shared.registry import RegistryError, queue_name
from shared.schemas import Delegation, Inherited, Report
from shared.secrets import new_key
from shared.settings import Settings
from shared.spec_digest import spec_digests
from shared.timing import timing
from tests.support.waiting import eventually
from workers import stopping

RUNS: list[str] = []
"""What `count_run` was called with, in this process: each entry is one run of a subagent."""
SECRET = "sk-worker-app-SECRET"


@tool
def count_run(note: str) -> str:
    """Count one run of the subagent."""
    RUNS.append(note)
    return f"counted {note}"


def _spec(name: str, **fields: Any) -> dict[str, Any]:
    # The offline model calls each tool its system prompt names, once.
    return {
        "name": name,
        "description": f"{name} things",
        "system_prompt": "Use count_run once.",
        "tools": [count_run],
        "model": "offline",
        **fields,
    }


SUBAGENTS = [
    _spec("counter"),
    _spec("gatekeeper", interrupt_on={"count_run": True}),
    _spec("gpu-a", queue="gpu"),
    _spec("gpu-b", queue="gpu"),
]
REGISTRY = f"{__name__}:SUBAGENTS"
WORKER_APP = "workers.app"

LoadWorker = Callable[..., ModuleType]


@pytest.fixture
def load_worker(unit_redis: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[LoadWorker]:
    """Imports `workers.app` afresh with these settings; `None` leaves a variable unset."""
    loaded: list[ModuleType] = []
    RUNS.clear()

    def load(**variables: str | None) -> ModuleType:
        for name in list(os.environ):
            if name.startswith("TASKFORCE_") and name != "TASKFORCE_TEST_REDIS":
                monkeypatch.delenv(name)
        defaults = {
            "TASKFORCE_REDIS_URL": unit_redis,
            "TASKFORCE_FILES_URL": f"memory://worker-app-{uuid.uuid4().hex[:8]}",
            "TASKFORCE_SUBAGENTS": REGISTRY,
            "TASKFORCE_SECRETS_KEY": new_key(),
            "TASKFORCE_QUEUE_PREFIX": "unitw",
        }
        for name, value in {**defaults, **variables}.items():
            if value is not None:
                monkeypatch.setenv(name, value)
        # The import patches kombu for good, as it should in a worker: not in this process.
        monkeypatch.setattr(kombu_redis.Channel, "_connparams", kombu_redis.Channel._connparams)
        sys.modules.pop(WORKER_APP, None)
        module = importlib.import_module(WORKER_APP)
        loaded.append(module)
        return module

    # A task run here starts a child's keeper, which takes over SIGTERM as in a prefork child.
    handlers = {signum: signal.getsignal(signum) for signum in (signal.SIGTERM, stopping.HAND_BACK_SIGNAL)}
    yield load
    for signum, handler in handlers.items():
        signal.signal(signum, handler)
    for module in loaded:
        signals.worker_ready.disconnect(module._serve)
        signals.worker_shutting_down.disconnect(module._stop_serving)
        for keeper in module._keepers.values():
            keeper._stop.set()  # LeaseKeeper has no stop of its own: a worker's lasts as long as it
    sys.modules.pop(WORKER_APP, None)


def _delegation(settings: Settings, subagent_type: str = "counter", **fields: Any) -> Delegation:
    """A delegation as the orchestrator builds one for a `task` call of run `run-w`."""
    spec = next(spec for spec in SUBAGENTS if spec["name"] == subagent_type)
    return Delegation(
        id=f"run-w:call-{uuid.uuid4().hex[:8]}:d",
        subagent_type=subagent_type,
        description="tally the logs",
        secrets={"api_key": SecretStr(SECRET)},
        limits=settings.limits(recursion_limit=50),
        thread_id="run-w",
        queue=queue_name(cast(Any, spec)),
        spec=spec_digests(cast(Any, spec)),
        **fields,
    )


def _client(settings: Settings) -> DelegationClient:
    return DelegationClient(create_celery_app(settings), settings)


def _take_message(worker: ModuleType, queue: str) -> tuple[list[Any], dict[str, Any]]:
    """The next message on `queue`, as the worker's consumer receives it: the task's args and
    kwargs. Read through the worker app's own declaration of the queue, so a message that lands
    anywhere but where the worker listens is not found."""
    (declared,) = [q for q in worker.app.conf.task_queues if q.name == queue]
    with worker.app.connection_for_read() as connection:
        consumer = connection.SimpleQueue(declared)
        message = consumer.get(timeout=5)
        assert message.headers["task"] == RUN_DELEGATION
        args, kwargs, _ = message.decode()
        message.ack()
        consumer.close()
    return args, kwargs


def _run(worker: ModuleType, args: list[Any], kwargs: dict[str, Any]) -> None:
    """The task, run as Celery runs it, in this process."""
    worker.run_delegation_task.apply(args=args, kwargs=kwargs).get(propagate=True)


def _state(worker: ModuleType, delegation_id: str) -> str:
    _, records = worker.ledger().snapshot([delegation_id])
    return str(records[delegation_id].state)


@pytest.mark.parametrize("general_purpose", [True, False])
def test_a_worker_consumes_one_queue_per_queue_its_subagent_types_name(
    load_worker: LoadWorker, general_purpose: bool
) -> None:
    worker = load_worker(TASKFORCE_GENERAL_PURPOSE=str(general_purpose).lower())

    served = [queue.name for queue in worker.app.conf.task_queues]

    # Types whose specs name one queue share it (and the workers that consume it).
    expected = ["counter", "gatekeeper", "gpu"]
    expected = ["general-purpose", *expected] if general_purpose else expected
    assert served == [queue_for(worker.settings, name) for name in expected]
    # The name the orchestrator sends by is this module's task (behind Celery's proxy).
    assert worker.app.tasks[RUN_DELEGATION] is worker.run_delegation_task._get_current_object()
    # A Redis restart under running jobs must not stop the worker (shared.compat.kombu).
    assert kombu_redis.Channel._connparams is kombu_compat._connparams


@pytest.mark.parametrize(
    ("variables", "error", "message"),
    [
        ({"TASKFORCE_REDIS_URL": None}, BrokerConfigError, "set TASKFORCE_REDIS_URL"),
        (
            {"TASKFORCE_SUBAGENTS": "tests.unit.no_such_module:SUBAGENTS"},
            RegistryError,
            "cannot import module 'tests.unit.no_such_module'",
        ),
        (
            {"TASKFORCE_SUBAGENTS": "tests.unit.registry_fixture:NO_DESCRIPTION"},
            RegistryError,
            "registry entry 0 needs a non-empty string 'description'",
        ),
    ],
)
def test_a_worker_that_could_run_nothing_stops_at_start_up(
    load_worker: LoadWorker, variables: dict[str, str | None], error: type[Exception], message: str
) -> None:
    with pytest.raises(error, match=message):
        load_worker(**variables)


def test_a_delegation_runs_once_and_its_report_reaches_the_caller(load_worker: LoadWorker) -> None:
    worker = load_worker()
    client = _client(worker.settings)
    delegation = _delegation(worker.settings)
    future = client.send(delegation)
    message = _take_message(worker, queue_for(worker.settings, "counter"))

    _run(worker, *message)
    report = future.result(timeout=10)

    assert (report.status, report.subagent_type, report.attempts) == ("ok", "counter", 1)
    assert report.worker == socket.gethostname()
    assert "counted tally the logs" in report.summary
    assert RUNS == ["tally the logs"]

    _run(worker, *message)  # the same message delivered again: it is dropped, not run

    assert RUNS == ["tally the logs"]
    assert _state(worker, delegation.id) == "reported"
    client.close()


def test_a_failure_around_the_run_itself_still_reports_to_the_caller(
    load_worker: LoadWorker, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    worker = load_worker()

    def failing(delegation: Delegation, *_: Any, **__: Any) -> None:
        raise OSError(f"shared files unreachable for key {SECRET}")

    monkeypatch.setattr(worker, "run_delegation", failing)
    client = _client(worker.settings)
    delegation = _delegation(worker.settings)
    future = client.send(delegation)

    _run(worker, *_take_message(worker, queue_for(worker.settings, "counter")))
    report = future.result(timeout=10)

    assert report.status == "error"
    assert report.summary == f"OSError: shared files unreachable for key {REDACTED}"
    assert _state(worker, delegation.id) == "reported"
    assert "Traceback (most recent call last)" in caplog.text
    assert SECRET not in caplog.text
    client.close()


def test_a_message_the_worker_cannot_open_is_answered_with_the_problem(load_worker: LoadWorker) -> None:
    """Rather than leave the caller waiting for its queue timeout. Here the orchestrator seals
    secrets with another key than the worker's."""
    worker = load_worker()
    settings = worker.settings.model_copy(update={"secrets_key": SecretStr(new_key())})
    client = _client(settings)
    future = client.send(_delegation(settings))

    _run(worker, *_take_message(worker, queue_for(settings, "counter")))
    report = future.result(timeout=10)

    assert (report.status, report.subagent_type) == ("error", "counter")
    assert f"worker {socket.gethostname()} could not read the delegation" in report.summary
    assert "sealed with another key" in report.summary
    assert SECRET not in report.summary
    assert RUNS == []
    client.close()


def test_a_message_naming_no_delegation_is_dropped_with_a_log_line(
    load_worker: LoadWorker, caplog: pytest.LogCaptureFixture
) -> None:
    worker = load_worker()

    _run(worker, [{"version": 99, "description": "no id"}], {})

    assert "dropped an unreadable message: rejected a malformed delegation" in caplog.text
    assert RUNS == []


def test_a_subagent_that_asks_first_waits_paused_and_its_answer_resumes_it(load_worker: LoadWorker) -> None:
    """The worker keeps paused subagents where any worker finds them (the broker's Redis)."""
    worker = load_worker()
    client = _client(worker.settings)
    queue = queue_for(worker.settings, "gatekeeper")
    paused = _delegation(worker.settings, "gatekeeper")
    asked = client.send(paused)
    _run(worker, *_take_message(worker, queue))

    report = asked.result(timeout=10)
    assert report.status == "interrupted"
    (question,) = report.interrupts
    assert [request["name"] for request in cast(Any, question.value)["action_requests"]] == ["count_run"]
    assert RUNS == []

    approved = {question.id: {"decisions": [{"type": "approve"}]}}
    follow_up = Delegation.model_validate(
        {**paused.model_dump(), "id": f"{paused.id}:r0", "resumes": paused.id, "resume": approved}
    )
    answered = client.send(follow_up)
    _run(worker, *_take_message(worker, queue))

    assert answered.result(timeout=10).status == "ok"
    assert RUNS == ["tally the logs"]
    client.close()


def test_a_subagent_whose_main_agent_has_the_shared_store_gets_it(load_worker: LoadWorker) -> None:
    worker = load_worker()
    client = _client(worker.settings)
    future = client.send(_delegation(worker.settings, inherited=Inherited(store=True)))

    _run(worker, *_take_message(worker, queue_for(worker.settings, "counter")))

    assert future.result(timeout=10).status == "ok"
    assert RUNS == ["tally the logs"]
    client.close()


def test_progress_asked_for_is_published_and_outlives_the_report(load_worker: LoadWorker) -> None:
    worker = load_worker()
    settings = worker.settings
    client = _client(settings)
    delegation = _delegation(settings, progress=True)
    future = client.send(delegation)

    _run(worker, *_take_message(worker, queue_for(settings, "counter")))
    future.result(timeout=10)

    steps = ProgressReader(worker.ledger().client, settings.queue_prefix, delegation.id).read(block=False)
    assert [step.node for step in steps] == ["model", "tools", "model"]
    assert steps[1].messages[-1].text == "counted tally the logs"
    # A caller reads the steps up to the report, which is kept `result_expires` once it is in.
    ttl = worker.ledger().client.ttl(progress_key(settings.queue_prefix, delegation.id))
    outstanding = timing(delegation.limits).outstanding_s
    assert settings.result_expires < ttl <= outstanding + settings.result_expires
    client.close()


class _Consumer:
    """What Celery's worker_ready signal is sent by: the worker's consumer."""

    def __init__(self, app: Any, hostname: str) -> None:
        self.app = app
        self.hostname = hostname


def test_a_ready_worker_announces_its_queues_and_a_stopping_one_retires_them_and_hands_work_back(
    load_worker: LoadWorker,
) -> None:
    worker = load_worker(TASKFORCE_WORKER_SHUTDOWN_GRACE="0")
    settings = worker.settings
    ledger = worker.ledger()
    silence = timing(settings.limits(recursion_limit=1)).worker_silence_s
    queues = [queue.name for queue in worker.app.conf.task_queues]

    signals.worker_ready.send(sender=_Consumer(worker.app, "w1@unit"))

    assert [ledger.serving(queue, silence) for queue in queues] == [1] * len(queues)
    assert ledger.serving(queue_for(settings, "nobody"), silence) == 0
    # The task's lease keeper is the one that announced the queues, named after the node.
    leases = worker.keeper("ignored@host")
    assert leases.worker == "w1@unit"
    client = _client(settings)
    delegation = _delegation(settings)
    waiting = client.send(delegation)
    run = leases.claim(delegation)
    assert run is not None

    signals.worker_shutting_down.send(sender="w1@unit", sig="SIGTERM", how="warm", exitcode=0)

    assert eventually(lambda: not any(ledger.serving(queue, silence) for queue in queues))
    assert eventually(lambda: run.stopped == "handed back")
    leases.finish(run, Report(delegation_id=delegation.id, subagent_type="counter", status="ok", summary="x"))
    # Back in the queue for another worker; the caller still waits, for its real report.
    assert _state(worker, delegation.id) == "queued"
    assert worker.ledger().client.llen(queue_for(settings, "counter")) == 2
    assert not waiting.done()
    client.close()


class _Typed(BaseModel):
    count: int


def test_pydantic_serializer_warnings_which_can_hold_secrets_stay_out_of_worker_logs(
    load_worker: LoadWorker,
) -> None:
    load_worker()
    with warnings.catch_warnings(record=True) as caught:
        # Shown, not raised as the test run's rule would; no match for the serializer warning.
        warnings.filterwarnings("always", message="another warning")
        # What langchain-core does when it serialises a tool's injected runtime.
        _Typed.model_construct(count=SECRET).model_dump()  # type: ignore[arg-type]
        warnings.warn("another warning", UserWarning, stacklevel=1)

    assert [str(warning.message) for warning in caught] == ["another warning"]


@pytest.mark.parametrize("events", [True, False])
def test_task_events_are_sent_only_when_asked_for(events: bool) -> None:
    settings = Settings(redis_url="redis://127.0.0.1:1/0", task_events=events, _env_file=None)  # type: ignore[call-arg]
    conf = create_celery_app(settings).conf
    assert conf.worker_send_task_events is events
    assert conf.task_send_sent_event is events
