"""A worker's Prometheus endpoint, subagent or main-run: the counts of this process
(`shared.metrics`), read from Redis at each scrape, so that a prefork worker's children, which
count into the same hash, show in its one endpoint. Pool-wide numbers (queues, running
delegations, dead letters) are `taskforce metrics`', which any one process can read for the
whole pool."""

from __future__ import annotations

import logging

from prometheus_client import start_http_server

from shared.ledger import Ledger
from shared.pool_metrics import PoolCollector, registry_for

logger = logging.getLogger(__name__)


def serve_process_metrics(ledger: Ledger, process: str, port: int) -> None:
    """Serve on all interfaces, as a scraper in another container or pod reaches it; a port
    already taken costs the endpoint, not the worker."""
    try:
        start_http_server(port, registry=registry_for(PoolCollector(ledger, process)))
    except OSError as error:
        logger.error("no metrics endpoint on port %d: %s", port, error)
        return
    logger.info("metrics of %s on http://0.0.0.0:%d/metrics", process, port)
