"""Find delegations whose worker went silent and hand them on.

Every worker process sweeps, and so does every waiting orchestrator, so a lapsed lease is
noticed within one refresh period however many machines died. The scripts in `shared.ledger`
make each lapse a single decision, whoever sweeps first.
"""

from __future__ import annotations

import logging

from celery import Celery

from shared.celery_app import publish
from shared.ledger import Lapse, Ledger, State
from shared.metrics import ProcessCounts
from shared.schemas import Report
from shared.settings import Settings

logger = logging.getLogger(__name__)


def dead_letter_report(lapse: Lapse) -> Report:
    return Report(
        delegation_id=lapse.delegation_id,
        subagent_type=lapse.subagent_type,
        status="dead_letter",
        summary=(
            f"the worker running it died {lapse.attempts} times (last: {lapse.last_worker or 'unknown'}); "
            "it is parked as a dead letter and will not run again unless requeued "
            "(`taskforce dead-letters`)"
        ),
        attempts=lapse.attempts,
        worker=lapse.last_worker,
    )


def sweep(ledger: Ledger, app: Celery, settings: Settings, counter: ProcessCounts) -> list[Lapse]:
    """Requeue each lapsed delegation that has attempts left; dead-letter the others; count
    both in `counter`, the sweeping process's."""
    handled = []
    for delegation_id in ledger.lapsed():
        lapse = ledger.lapse(delegation_id)
        if lapse is None:
            continue
        if lapse.action == "requeue":
            publication = ledger.publication(delegation_id)
            if publication is not None:
                publish(app, [publication])
            counter.handed_over(lapse.subagent_type)
            logger.warning(
                "delegation %s lost its worker %s after %d attempt(s); handed to another worker",
                delegation_id,
                lapse.last_worker,
                lapse.attempts,
            )
        else:
            report = dead_letter_report(lapse)
            ledger.finish(
                delegation_id,
                State.DEAD_LETTER,
                report.model_dump_json(),
                ttl_s=settings.result_expires,
            )
            counter.dead_lettered(lapse.subagent_type)
            logger.error("delegation %s dead-lettered: %s", delegation_id, report.summary)
        handled.append(lapse)
    return handled
