"""The orchestrator's client on fakeredis: sending, re-attaching, pushed reports, and the checks
that no push can make (an unserved queue, a stuck attempt, a vanished record)."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import Iterator
from typing import Any

import fakeredis
import pytest
from pydantic import SecretStr

from orchestrator.delegation import client as client_module
from orchestrator.delegation import listener as listener_module
from orchestrator.delegation.checks import NO_WORKER_GRACE_S
from orchestrator.delegation.client import DelegationClient, DetachedError
from shared.ledger import Ledger, State
from shared.schemas import Delegation, Report
from shared.secrets import new_key
from shared.settings import Settings

SECRET = "sk-client-SECRET"


class _Publisher:
    """Stands in for the Celery app and its producer: records what would have been published,
    and in which batch."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.batches: list[list[str]] = []

    def producer_or_acquire(self) -> contextlib.AbstractContextManager[_Publisher]:
        return contextlib.nullcontext(self)

    @contextlib.contextmanager
    def batch(self) -> Iterator[None]:
        self.batches.append([])
        yield

    def send_task(self, name: str, **options: Any) -> None:
        self.sent.append({"name": name, **options})
        self.batches[-1].append(options["task_id"])


@pytest.fixture
def server(monkeypatch: pytest.MonkeyPatch) -> fakeredis.FakeServer:
    server = fakeredis.FakeServer()
    for module in (client_module, listener_module):
        monkeypatch.setattr(
            module, "open_ledger", lambda settings, **_: Ledger(fakeredis.FakeRedis(server=server), "tf")
        )
    return server


def _settings() -> Settings:
    key = SecretStr(new_key())
    return Settings(redis_url="redis://stub:6379/0", queue_prefix="tf", secrets_key=key, _env_file=None)  # type: ignore[call-arg]


def _client(publisher: _Publisher | None = None) -> DelegationClient:
    return DelegationClient(publisher or _Publisher(), _settings())  # type: ignore[arg-type]


@pytest.fixture
def client(server: fakeredis.FakeServer) -> Iterator[DelegationClient]:
    made = _client()
    yield made
    made.close()


def _delegation(delegation_id: str = "run-1:call-1:abcd", **fields: Any) -> Delegation:
    return Delegation(
        id=delegation_id,
        subagent_type="sleeper",
        description="nap",
        secrets={"api_key": SecretStr(SECRET)},
        limits=_settings().limits(recursion_limit=5),
        **fields,
    )


def _ledger(server: fakeredis.FakeServer) -> Ledger:
    return Ledger(fakeredis.FakeRedis(server=server), "tf")


def _report_as_worker(server: fakeredis.FakeServer, delegation_id: str, summary: str = "done") -> None:
    ledger = _ledger(server)
    assert ledger.claim(delegation_id, "token", "w1", lease_s=10).outcome == "run"
    report = Report(delegation_id=delegation_id, subagent_type="sleeper", status="ok", summary=summary)
    assert ledger.finish(delegation_id, State.REPORTED, report.model_dump_json(), token="token", ttl_s=60)


def test_a_send_publishes_one_message_with_its_secret_sealed(server: fakeredis.FakeServer) -> None:
    publisher = _Publisher()
    client = _client(publisher)
    client.send(_delegation())
    client.send(_delegation())  # the tool call after `after_model`: the same job

    (message,) = publisher.sent
    assert message["task_id"] == "run-1:call-1:abcd"
    assert message["expires"] == client.settings.queue_timeout
    assert SECRET not in json.dumps(message["args"])
    assert SECRET not in message["argsrepr"]
    assert SECRET not in str(server.dbs)  # nothing in Redis holds it in plain text
    client.close()


def test_the_pushed_report_wakes_the_waiting_call(
    server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checks, which would find the report too, are put off past the wait: only the push can
    answer in time."""
    monkeypatch.setattr(listener_module, "CHECK_EVERY_S", 60.0)
    client = _client()
    future = client.send(_delegation())
    _report_as_worker(server, "run-1:call-1:abcd", summary="pushed")

    assert future.result(timeout=5).summary == "pushed"
    client.close()


def test_a_resumed_run_reattaches_instead_of_sending_again(server: fakeredis.FakeServer) -> None:
    first = _client()
    first.send(_delegation())
    first._listener.stopping()  # the process died: nothing was cancelled
    _report_as_worker(server, "run-1:call-1:abcd", summary="finished while we were away")

    publisher = _Publisher()
    resumed = _client(publisher)
    report = resumed.wait(_delegation())

    assert report.summary == "finished while we were away"
    assert publisher.sent == []
    resumed.close()


def test_a_resumed_run_publishes_again_a_delegation_still_queued(server: fakeredis.FakeServer) -> None:
    publisher = _Publisher()
    first = _client(publisher)
    first.ledger.record([first._publisher._recording(_delegation(), first.inbox)])  # killed before publishing
    first._listener.stopping()

    resumed_publisher = _Publisher()
    resumed = _client(resumed_publisher)
    future = resumed.send(_delegation())

    assert [message["task_id"] for message in resumed_publisher.sent] == ["run-1:call-1:abcd"]
    _report_as_worker(server, "run-1:call-1:abcd", summary="ran once")
    assert future.result(timeout=5).summary == "ran once"
    resumed.close()


def _age(server: fakeredis.FakeServer, delegation_id: str, field: str, seconds: float) -> None:
    ledger = _ledger(server)
    now_ms, _ = ledger.snapshot([])
    ledger.client.hset(ledger.key(delegation_id), field, now_ms - int(seconds * 1000))


def _check(client: DelegationClient) -> None:
    client._check(list(client._waits.values()))


def test_a_check_while_a_delegation_is_being_recorded_leaves_it_waiting(
    server: fakeredis.FakeServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = _client()
    record = client.ledger.record

    def checked_first(recordings: Any) -> list[str | None]:
        _check(client)  # the listener's periodic check, before the record exists
        return record(recordings)

    monkeypatch.setattr(client.ledger, "record", checked_first)
    future = client.send(_delegation("d-1"))

    assert not future.done()
    _report_as_worker(server, "d-1", "on time")
    assert future.result(timeout=5).summary == "on time"
    client.close()


def test_a_queue_no_live_worker_serves_fails_fast_naming_it(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    future = client.send(_delegation())
    _check(client)
    assert not future.done()  # a worker may still be starting

    _age(server, "run-1:call-1:abcd", "queued_at", NO_WORKER_GRACE_S + 1)
    _check(client)

    report = future.result(timeout=1)
    assert report.status == "error"
    assert "no live worker consumes queue 'tf.sleeper'" in report.summary
    assert "taskforce worker -Q tf.sleeper" in report.summary
    assert not _ledger(server).client.exists("tf:dlg:run-1:call-1:abcd")


def test_a_served_queue_is_waited_on_until_the_queue_timeout(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    _ledger(server).announce("w1", ["tf.sleeper"], silence_s=30)
    future = client.send(_delegation())
    _age(server, "run-1:call-1:abcd", "queued_at", NO_WORKER_GRACE_S + 1)
    _check(client)
    assert not future.done()

    _age(server, "run-1:call-1:abcd", "queued_at", client.settings.queue_timeout + 1)
    _check(client)
    assert future.result(timeout=1).status == "timeout"


def test_an_attempt_past_its_budget_is_given_up_and_cancelled(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    future = client.send(_delegation())
    _ledger(server).claim("run-1:call-1:abcd", "token", "w7", lease_s=1000)
    _age(server, "run-1:call-1:abcd", "claimed_at", 10_000)
    _check(client)

    report = future.result(timeout=1)
    assert report.status == "timeout"
    assert "worker w7 sent no report" in report.summary
    assert _ledger(server).refresh([("run-1:call-1:abcd", "token")], lease_s=10) == ["run-1:call-1:abcd"]


def test_a_record_cancelled_elsewhere_ends_the_wait(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    future = client.send(_delegation())
    _ledger(server).forget(["run-1:call-1:abcd"])
    _check(client)
    assert future.result(timeout=1).status == "cancelled"


def test_close_cancels_every_delegation_still_out(server: fakeredis.FakeServer) -> None:
    client = _client()
    futures = [client.send(_delegation(f"run-1:call-{n}:abcd")) for n in range(3)]
    client.close()

    assert [f.result(timeout=1).status for f in futures] == ["cancelled"] * 3
    assert _ledger(server).client.keys("tf:dlg:*") == []


def test_a_closed_client_serves_the_next_run(server: fakeredis.FakeServer) -> None:
    client = _client()
    client.send(_delegation("run-1:call-1:abcd"))
    client.close()

    future = client.send(_delegation("run-2:call-1:abcd"))
    _report_as_worker(server, "run-2:call-1:abcd", summary="after a close")
    assert future.result(timeout=5).summary == "after a close"
    client.close()


def test_closing_wakes_the_listener_with_a_word_never_taken_for_a_report(
    server: fakeredis.FakeServer, caplog: pytest.LogCaptureFixture
) -> None:
    client = _client()
    future = client.send(_delegation())
    _ledger(server).client.lpush(client.inbox, listener_module.WAKE)  # as a close would push it
    _report_as_worker(server, "run-1:call-1:abcd", summary="after the word")
    assert future.result(timeout=5).summary == "after the word"

    client.close()

    assert client._listener.thread is not None
    assert not client._listener.thread.is_alive()
    assert not _ledger(server).client.exists(client.inbox), "the inbox goes with its listener"
    assert "cannot read" not in caplog.text


def test_a_turns_delegations_are_recorded_and_published_together(server: fakeredis.FakeServer) -> None:
    publisher = _Publisher()
    client = _client(publisher)
    client.send(_delegation("d-0"))

    futures = client.send_all(
        [_delegation("d-1"), _delegation("d-0"), _delegation("d-2"), _delegation("d-1")]
    )

    assert publisher.batches == [["d-0"], ["d-1", "d-2"]]
    assert futures[0] is futures[3]
    _report_as_worker(server, "d-0", "zero")
    assert futures[1].result(timeout=5).summary == "zero"
    client.close()


def test_a_report_in_before_its_call_asks_is_handed_over_without_asking_redis(
    server: fakeredis.FakeServer,
) -> None:
    publisher = _Publisher()
    client = _client(publisher)
    sent = client.send(_delegation("d-1"))
    _report_as_worker(server, "d-1", "early")
    sent.result(timeout=5)
    server.connected = False  # any round trip would now fail

    assert client.wait(_delegation("d-1")).summary == "early"
    server.connected = True
    client.close()


def test_max_in_flight_sends_what_has_slots_together_and_the_rest_as_slots_free(
    server: fakeredis.FakeServer,
) -> None:
    publisher = _Publisher()
    client = DelegationClient(publisher, _settings(), max_in_flight=2)  # type: ignore[arg-type]
    sending = threading.Thread(target=client.send_all, args=([_delegation(f"d-{n}") for n in range(3)],))
    sending.start()
    sending.join(timeout=1)
    assert sending.is_alive()
    assert publisher.batches == [["d-0", "d-1"]]

    _report_as_worker(server, "d-0")
    sending.join(timeout=5)

    assert not sending.is_alive()
    assert publisher.batches == [["d-0", "d-1"], ["d-2"]]
    client.close()


def test_max_in_flight_holds_a_send_until_a_report_frees_a_slot(server: fakeredis.FakeServer) -> None:
    publisher = _Publisher()
    client = DelegationClient(publisher, _settings(), max_in_flight=1)  # type: ignore[arg-type]
    client.send(_delegation("d-1"))
    client.send(_delegation("d-1"))  # re-attaching takes no second slot
    second = threading.Thread(target=client.send, args=(_delegation("d-2"),))
    second.start()
    second.join(timeout=1)
    assert second.is_alive()
    assert [message["task_id"] for message in publisher.sent] == ["d-1"]

    _report_as_worker(server, "d-1")
    second.join(timeout=5)

    assert not second.is_alive()
    assert [message["task_id"] for message in publisher.sent] == ["d-1", "d-2"]
    assert client.outstanding == 1
    client.close()


def test_detach_stops_waiting_but_cancels_nothing(server: fakeredis.FakeServer) -> None:
    client = _client()
    future = client.send(_delegation())

    client.detach()

    with pytest.raises(DetachedError):
        future.result(timeout=1)
    with pytest.raises(DetachedError):
        client.send(_delegation("d-other"))
    assert _ledger(server).client.exists(_ledger(server).key("run-1:call-1:abcd"))  # still out
    client.close()  # the atexit path: still nothing cancelled
    assert _ledger(server).client.exists(_ledger(server).key("run-1:call-1:abcd"))


def test_a_detached_client_starts_no_listener_again(server: fakeredis.FakeServer) -> None:
    """A batch's clients are detached by the hundred: a collect after it must not leave a thread
    behind, blocked on an inbox nobody pushes to."""
    client = _client()
    client.send(_delegation())
    client.detach()

    client.collect(["run-1:call-1:abcd"])

    assert client._listener.thread is not None
    assert not client._listener.thread.is_alive()
    assert _ledger(server).client.exists(_ledger(server).key("run-1:call-1:abcd"))  # it runs on


def test_a_started_delegation_is_published_once_and_peeked_at_without_waiting(
    server: fakeredis.FakeServer,
) -> None:
    publisher = _Publisher()
    client = _client(publisher)
    client.start(_delegation())
    client.start(_delegation())  # a replayed tool call: the same job

    assert [message["task_id"] for message in publisher.sent] == ["run-1:call-1:abcd"]
    assert client.outstanding == 0  # nobody waits for it
    assert client.peek(["run-1:call-1:abcd", "never-sent"]) == {"run-1:call-1:abcd": None}

    client.close()  # a background task outlives the client that started it
    _report_as_worker(server, "run-1:call-1:abcd", summary="in the background")

    report = _client().peek(["run-1:call-1:abcd"])["run-1:call-1:abcd"]
    assert report is not None
    assert report.summary == "in the background"
    assert _ledger(server).client.keys("tf:inbox:*") == []  # no process was pushed to


def test_cancelling_a_started_delegation_deletes_its_record_and_takes_its_lease(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    client.start(_delegation())
    _ledger(server).claim("run-1:call-1:abcd", "token", "w1", lease_s=10)

    _client().cancel(["run-1:call-1:abcd"])  # from another process, which never waited for it

    assert client.peek(["run-1:call-1:abcd"]) == {}
    assert _ledger(server).refresh([("run-1:call-1:abcd", "token")], lease_s=10) == ["run-1:call-1:abcd"]


def test_a_started_delegation_no_worker_will_take_is_finished_with_the_reason(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    client.start(_delegation())
    assert client.peek(["run-1:call-1:abcd"]) == {"run-1:call-1:abcd": None}  # a worker may be starting

    _age(server, "run-1:call-1:abcd", "queued_at", NO_WORKER_GRACE_S + 1)
    report = client.peek(["run-1:call-1:abcd"])["run-1:call-1:abcd"]

    assert report is not None
    assert report.status == "error"
    assert "no live worker consumes queue 'tf.sleeper'" in report.summary
    # Kept in the record: every later look, from any process, finds the same answer.
    assert _client().peek(["run-1:call-1:abcd"])["run-1:call-1:abcd"] == report


def test_a_started_delegation_past_its_queue_timeout_is_finished_as_timed_out(
    server: fakeredis.FakeServer, client: DelegationClient
) -> None:
    _ledger(server).announce("w1", ["tf.sleeper"], silence_s=30)
    client.start(_delegation())
    _age(server, "run-1:call-1:abcd", "queued_at", client.settings.queue_timeout + 1)

    report = client.peek(["run-1:call-1:abcd"])["run-1:call-1:abcd"]

    assert report is not None
    assert report.status == "timeout"
    assert _ledger(server).claim("run-1:call-1:abcd", "token", "w1", lease_s=10).outcome == "reported"
