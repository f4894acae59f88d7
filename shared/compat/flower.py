"""Flower internals taskforce relies on, written against Flower 2.2.

Covered by `tests/integration/test_monitoring.py`, which fails if a guarded view answers
without credentials."""

from __future__ import annotations

import tornado.web
from flower.views import monitor


def guard_open_views() -> None:
    """Put `/metrics` and `/healthcheck` behind the authentication Flower's other pages have.

    Flower leaves both open whatever `--basic-auth` says; `/metrics` lists every worker and task
    name with its counts, which `TASKFORCE_FLOWER_BASIC_AUTH` promises to keep behind the password.
    A probe or a Prometheus scrape passes the same credentials (both can send basic auth)."""
    for view in (monitor.Metrics, monitor.Healthcheck):
        if not getattr(view.get, "__wrapped__", None):
            view.get = tornado.web.authenticated(view.get)  # type: ignore[method-assign]
