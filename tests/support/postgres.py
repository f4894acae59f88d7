"""The PostgreSQL the test machines and CI run (trust auth, database `test`)."""

from __future__ import annotations

import os

import psycopg
import pytest

POSTGRES_URL = os.environ.get("TASKFORCE_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")


def require_postgres() -> None:
    """Skip without PostgreSQL on a laptop; fail in CI, where a skipped test would look green."""
    try:
        psycopg.connect(POSTGRES_URL, connect_timeout=3).close()
    except psycopg.OperationalError as error:
        if os.environ.get("CI") == "true":
            pytest.fail(f"no PostgreSQL at {POSTGRES_URL}: {error}")
        pytest.skip(f"no PostgreSQL at {POSTGRES_URL}")
