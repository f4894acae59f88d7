"""Putting delegations out: each is recorded in the ledger (`shared.ledger`), then the messages
of the new ones are published, a turn's worth at once. An id the ledger already holds is
re-attached to, not sent again, so a resumed run never runs a delegation twice."""

from __future__ import annotations

import json
from collections.abc import Sequence

from celery import Celery

from shared.celery_app import publish, queue_for
from shared.ledger import Ledger, Publication, Recording, State
from shared.schemas import Delegation
from shared.secrets import SecretBox
from shared.settings import Settings
from shared.timing import timing


class Publisher:
    """Records and publishes for one client; the secrets in each message are sealed here."""

    def __init__(self, app: Celery, settings: Settings, ledger: Ledger) -> None:
        self.app = app
        self.settings = settings
        self.ledger = ledger
        self._box = SecretBox(settings.secrets_key)

    def queue(self, delegation: Delegation) -> str:
        return queue_for(self.settings, delegation.queue or delegation.subagent_type)

    def record_and_publish(self, delegations: Sequence[Delegation], *, reply_to: str) -> list[str | None]:
        """Publish each new delegation; returns each one's recorded state, None for a new one.
        `reply_to` is the inbox their reports are pushed to ("" for none: started, not waited
        for). A waited-for delegation found still queued is published again: the process that
        recorded it may have died before its message left, and a second copy runs once."""
        recordings = [self._recording(delegation, reply_to) for delegation in delegations]
        states = self.ledger.record(recordings)
        due_states = (None, State.QUEUED) if reply_to else (None,)
        due = [r.publication for r, state in zip(recordings, states, strict=True) if state in due_states]
        publish(self.app, due)
        return states

    def _recording(self, delegation: Delegation, reply_to: str) -> Recording:
        limits = timing(delegation.limits)
        message = delegation.to_wire(self._box)
        publication = Publication(
            delegation.id,
            json.dumps(message),
            repr([delegation.redacted()]),
            self.queue(delegation),
            message=message,
            limits=delegation.limits,
        )
        return Recording(
            publication,
            subagent_type=delegation.subagent_type,
            reply_to=reply_to,
            max_attempts=delegation.limits.max_attempts,
            guard_s=limits.queue_timeout_s,
            ttl_s=int(limits.outstanding_s + self.settings.result_expires),
        )
