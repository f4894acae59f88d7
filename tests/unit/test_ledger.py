"""The lifecycle scripts, one transition at a time (fakeredis with Lua; the fault tests run them
on the real server)."""

from __future__ import annotations

import json
import time

import fakeredis
import pytest

from shared.ledger import RECORD_SLICE, Claim, Ledger, Publication, Recording, State
from shared.metrics import STARTED, WAIT, ProcessCounts, field_name, metrics_key
from shared.schemas import Report

INBOX = "tf:inbox:waiter"


@pytest.fixture
def ledger() -> Ledger:
    return Ledger(fakeredis.FakeRedis(), "tf")


def _taken(claim: Claim) -> tuple[str, int]:
    """A claim's outcome and attempt; how long it waited depends on the clock."""
    return claim.outcome, claim.attempt


def _recording(delegation_id: str, max_attempts: int = 2) -> Recording:
    publication = Publication(delegation_id, json.dumps({"id": delegation_id}), "[shown]", "tf.sleeper")
    return Recording(publication, "sleeper", INBOX, max_attempts, guard_s=60, ttl_s=600)


def _record(ledger: Ledger, delegation_id: str = "d1", max_attempts: int = 2) -> str | None:
    (state,) = ledger.record([_recording(delegation_id, max_attempts)])
    return state


def _lapse_now(ledger: Ledger, delegation_id: str = "d1") -> None:
    ledger.client.zadd("tf:leases", {delegation_id: 0})


def test_recording_twice_reattaches_instead_of_sending_again(ledger: Ledger) -> None:
    assert _record(ledger) is None
    assert _record(ledger) == "queued"


def test_recording_several_at_once_answers_each_ones_state(ledger: Ledger) -> None:
    _record(ledger, "d1")
    ledger.claim("d1", "t1", "w1", lease_s=10)
    recordings = [_recording(key) for key in ("d0", "d1", "d2")]

    assert ledger.record(recordings) == [None, "running", None]
    assert ledger.publication("d2") == recordings[2].publication
    assert ledger.client.ttl(ledger.key("d2")) == 600


def test_a_turn_larger_than_a_slice_is_recorded_whole(ledger: Ledger) -> None:
    count = RECORD_SLICE * 2 + 1
    _record(ledger, f"d{RECORD_SLICE + 3}")
    recordings = [
        Recording(
            Publication(f"d{n}", "{}", "[shown]", "tf.sleeper"), "sleeper", INBOX, 2, guard_s=60, ttl_s=600
        )
        for n in range(count)
    ]

    states = ledger.record(recordings)

    assert [n for n, state in enumerate(states) if state is not None] == [RECORD_SLICE + 3]
    assert all(ledger.client.exists(ledger.key(f"d{n}")) for n in range(count))


def test_only_a_queued_delegation_can_be_claimed(ledger: Ledger) -> None:
    _record(ledger)
    assert _taken(ledger.claim("d1", "t1", "w1", lease_s=10)) == ("run", 1)
    assert ledger.claim("d1", "t2", "w2", lease_s=10).outcome == "running"
    assert ledger.claim("unknown", "t3", "w3", lease_s=10).outcome == "gone"


def test_the_report_is_stored_once_and_pushed_to_the_waiter(ledger: Ledger) -> None:
    _record(ledger)
    ledger.claim("d1", "t1", "w1", lease_s=10)

    assert not ledger.finish("d1", State.REPORTED, '{"n": 0}', token="someone-else", ttl_s=60)
    assert ledger.finish("d1", State.REPORTED, '{"n": 1}', token="t1", ttl_s=60)
    assert not ledger.finish("d1", State.REPORTED, '{"n": 2}', token="t1", ttl_s=60)

    assert ledger.client.lrange(INBOX, 0, -1) == [b'{"n": 1}']
    _, records = ledger.snapshot(["d1"])
    assert records["d1"].state == "reported"
    assert records["d1"].report == '{"n": 1}'
    assert ledger.client.zcard("tf:leases") == 0
    assert 0 < ledger.client.ttl(ledger.key("d1")) <= 60


def _counts(ledger: Ledger) -> dict[str, float]:
    counted = ledger.client.hgetall(metrics_key("tf", "w1"))
    return {json.dumps(json.loads(field)): float(value) for field, value in counted.items()}


def test_a_claim_counts_its_start_and_its_wait_in_the_same_step_and_only_if_it_runs(ledger: Ledger) -> None:
    counter = ProcessCounts(ledger.client, "tf", "w1")
    _record(ledger)
    ledger.client.hset(ledger.key("d1"), "queued_at", int(time.time() * 1000) - 2000)

    ledger.claim("d1", "t1", "w1", lease_s=10, counting=counter.started("sleeper"))
    ledger.claim("d1", "t2", "w1", lease_s=10, counting=counter.started("sleeper"))  # running: not counted

    counts = _counts(ledger)
    assert counts.pop(field_name(STARTED, ["sleeper"])) == 1
    assert counts.pop(field_name(WAIT, ["sleeper"], "count")) == 1
    assert 1.9 < counts.pop(field_name(WAIT, ["sleeper"], "sum")) < 4
    assert counts == {field_name(WAIT, ["sleeper"], "5.0"): 1}  # 1 s < waited <= 5 s: one bucket
    assert ledger.client.ttl(metrics_key("tf", "w1")) > 0


def test_a_report_is_counted_in_the_step_that_stores_it_and_a_refused_one_not_at_all(ledger: Ledger) -> None:
    counter = ProcessCounts(ledger.client, "tf", "w1")
    _record(ledger)
    ledger.claim("d1", "t1", "w1", lease_s=10)
    report = Report(delegation_id="d1", subagent_type="sleeper", status="ok", summary="done", duration_s=0.2)

    assert not ledger.finish(
        "d1", State.REPORTED, "{}", token="other", ttl_s=60, counting=counter.finished(report)
    )
    assert _counts(ledger) == {}
    assert ledger.finish("d1", State.REPORTED, "{}", token="t1", ttl_s=60, counting=counter.finished(report))

    assert _counts(ledger)[json.dumps(["taskforce_delegations", "sleeper", "ok"])] == 1
    assert _counts(ledger)[json.dumps(["taskforce_delegation_duration_seconds", "sleeper", "0.5"])] == 1


def test_a_reports_other_fields_and_its_counts_are_written_together(ledger: Ledger) -> None:
    counter = ProcessCounts(ledger.client, "tf", "w1")
    _record(ledger)
    ledger.claim("d1", "t1", "w1", lease_s=10)
    report = Report(delegation_id="d1", subagent_type="sleeper", status="ok", summary="done")
    also = [("tf:batch:b1", "d1", "result"), ("tf:batch:b2", "d1", "other")]

    assert ledger.finish(
        "d1", State.REPORTED, "{}", token="t1", ttl_s=60, also=also, counting=counter.finished(report)
    )

    assert ledger.client.hget("tf:batch:b1", "d1") == b"result"
    assert ledger.client.hget("tf:batch:b2", "d1") == b"other"
    assert _counts(ledger)[json.dumps(["taskforce_delegations", "sleeper", "ok"])] == 1


def test_refresh_keeps_a_lease_and_names_the_ones_lost(ledger: Ledger) -> None:
    _record(ledger, "d1")
    _record(ledger, "d2")
    ledger.claim("d1", "t1", "w1", lease_s=1)
    ledger.claim("d2", "t2", "w1", lease_s=1)
    ledger.forget(["d2"])  # cancelled by its orchestrator

    assert ledger.refresh([("d1", "t1"), ("d2", "t2")], lease_s=30) == ["d2"]
    assert (ledger.client.zscore("tf:leases", "d1") or 0) > time.time() * 1000 + 20_000


def test_a_lapsed_lease_is_requeued_then_dead_lettered_on_the_last_attempt(ledger: Ledger) -> None:
    _record(ledger, max_attempts=2)
    ledger.claim("d1", "t1", "w1", lease_s=10)
    assert ledger.lapsed() == []

    _lapse_now(ledger)
    assert ledger.lapsed() == ["d1"]
    first = ledger.lapse("d1")
    assert first is not None
    assert (first.action, first.attempts, first.last_worker) == ("requeue", 1, "w1")
    assert ledger.lapse("d1") is None  # a second sweeper finds it handled
    assert ledger.publication("d1") == Publication("d1", '{"id": "d1"}', "[shown]", "tf.sleeper")
    assert ledger.refresh([("d1", "t1")], lease_s=10) == ["d1"]  # the dead worker's token is void

    assert _taken(ledger.claim("d1", "t2", "w2", lease_s=10)) == ("run", 2)
    _lapse_now(ledger)
    second = ledger.lapse("d1")
    assert second is not None
    assert (second.action, second.attempts, second.last_worker) == ("dead", 2, "w2")

    assert ledger.finish("d1", State.DEAD_LETTER, '{"summary": "died twice"}', ttl_s=60)
    (letter,) = ledger.dead_letters()
    assert (letter.delegation_id, letter.subagent_type, letter.attempts, letter.reason) == (
        "d1",
        "sleeper",
        2,
        "died twice",
    )
    assert ledger.client.ttl(ledger.key("d1")) == -1  # parked until someone decides
    ledger.forget(["d1"])  # collecting a dead letter's report keeps the letter
    assert ledger.dead_letters()


def test_a_dead_letter_can_be_requeued_with_fresh_attempts_or_dropped(ledger: Ledger) -> None:
    _record(ledger, "d1", max_attempts=1)
    _record(ledger, "d2", max_attempts=1)
    for delegation_id in ("d1", "d2"):
        ledger.claim(delegation_id, "t", "w", lease_s=10)
        _lapse_now(ledger, delegation_id)
        ledger.lapse(delegation_id)
        ledger.finish(delegation_id, State.DEAD_LETTER, "{}", ttl_s=60)

    assert ledger.requeue_dead("d1", ttl_s=600)
    assert _taken(ledger.claim("d1", "t", "w", lease_s=10)) == ("run", 1)
    assert ledger.drop_dead("d2")
    assert not ledger.drop_dead("d2")
    assert ledger.dead_letters() == []
    assert not ledger.client.exists(ledger.key("d2"))


def test_a_stopping_worker_hands_back_without_spending_an_attempt(ledger: Ledger) -> None:
    _record(ledger)
    ledger.claim("d1", "t1", "w1", lease_s=10)

    assert not ledger.release("d1", "not-the-owner")
    assert ledger.release("d1", "t1")
    assert _taken(ledger.claim("d1", "t2", "w2", lease_s=10)) == ("run", 1)


def test_forgetting_cancels_and_purges_waiting_messages(ledger: Ledger) -> None:
    _record(ledger)
    for task_id in ("d1", "other"):
        ledger.client.rpush("tf.sleeper", json.dumps({"headers": {"id": task_id}, "body": "..."}))
    ledger.client.rpush("tf.sleeper", "not json")

    ledger.forget(["d1"])

    assert ledger.purge_queued("tf.sleeper", ["d1"]) == 1
    assert ledger.claim("d1", "t", "w", lease_s=10).outcome == "gone"
    assert [json.loads(raw)["headers"]["id"] for raw in ledger.client.lrange("tf.sleeper", 0, 0)] == ["other"]


def test_a_queue_is_served_while_its_workers_keep_announcing(ledger: Ledger) -> None:
    ledger.announce("w1", ["tf.sleeper", "tf.writer"], silence_s=5)
    assert ledger.serving("tf.sleeper", silence_s=5) == 1
    assert ledger.serving("tf.other", silence_s=5) == 0
    ledger.retire("w1", ["tf.sleeper"])
    assert ledger.serving("tf.sleeper", silence_s=5) == 0
    assert ledger.serving("tf.writer", silence_s=5) == 1


def test_a_lapse_takes_the_dead_workers_copy_out_of_the_unacknowledged_messages(ledger: Ledger) -> None:
    _record(ledger)
    ledger.claim("d1", "t1", "w1", lease_s=10)
    for tag, task_id in (("tag-1", "d1"), ("tag-2", "someone-else")):
        stored = json.dumps([{"headers": {"id": task_id}, "body": "..."}, "tf.sleeper", "tf.sleeper"])
        ledger.client.hset("unacked", tag, stored)
        ledger.client.zadd("unacked_index", {tag: 1})
    _lapse_now(ledger)

    assert ledger.lapse("d1") is not None

    assert ledger.client.hkeys("unacked") == [b"tag-2"]
    assert ledger.client.zrange("unacked_index", 0, -1) == [b"tag-2"]


def test_the_reasons_of_dead_letters_are_read_for_the_ids_asked_only(ledger: Ledger) -> None:
    for delegation_id in ("d1", "d2", "d3"):
        _record(ledger, delegation_id, max_attempts=1)
    ledger.finish("d1", State.DEAD_LETTER, '{"summary": "its worker died twice"}', ttl_s=60)
    ledger.finish("d3", State.DEAD_LETTER, '{"summary": "another"}', ttl_s=60)

    assert ledger.dead_letter_reasons(["d1", "d2", "gone"]) == {"d1": "its worker died twice"}
    assert [letter.reason for letter in ledger.dead_letters()] == ["its worker died twice", "another"]
