"""Dead letters: delegations parked after their workers died on every attempt.

A delegation that kills its worker (a tool that crashes the process, a model call that eats
all memory) would otherwise come back forever and take a worker down each time. After
`TASKFORCE_MAX_ATTEMPTS` attempts lost that way it is parked here, with its message, until
someone decides: requeue it (its attempts start over) or drop it.
"""

from __future__ import annotations

from shared.celery_app import create_celery_app, publish
from shared.ledger import DeadLetter, open_ledger
from shared.settings import Settings
from shared.timing import timing


class UnknownDeadLetterError(LookupError):
    """No dead letter has this id."""


def list_dead_letters(settings: Settings) -> list[DeadLetter]:
    return open_ledger(settings).dead_letters()


def requeue_dead_letter(settings: Settings, delegation_id: str) -> None:
    """Send the delegation again, as if new. Its report is kept in its record for
    `TASKFORCE_RESULT_EXPIRES` seconds; the files it writes land in its run's workspace."""
    ledger = open_ledger(settings)
    ttl_s = int(timing(settings.limits(recursion_limit=1)).outstanding_s + settings.result_expires)
    if not ledger.requeue_dead(delegation_id, ttl_s):
        raise UnknownDeadLetterError(f"no dead letter {delegation_id!r}; `taskforce dead-letters` lists them")
    publication = ledger.publication(delegation_id)
    if publication is not None:
        publish(create_celery_app(settings), [publication])


def drop_dead_letter(settings: Settings, delegation_id: str) -> None:
    if not open_ledger(settings).drop_dead(delegation_id):
        raise UnknownDeadLetterError(f"no dead letter {delegation_id!r}; `taskforce dead-letters` lists them")
