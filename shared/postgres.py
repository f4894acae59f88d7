"""PostgreSQL connections for langgraph's savers and stores: the main agent's checkpoints
(`TASKFORCE_DATABASE_URL`) and the store every worker shares (`TASKFORCE_STORE_URL`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, TypeVar

from shared.urls import mask_url

if TYPE_CHECKING:
    from langgraph.store.postgres import PostgresStore
    from psycopg_pool import ConnectionPool


class DatabaseError(RuntimeError):
    """A database that cannot be opened, in one line that names it (password masked)."""


def open_pool(url: str, what: str) -> ConnectionPool:
    """An open pool, not one connection: a batch's runs and a worker's delegations use it from
    several threads at once. `what` names the database in errors ("the checkpoint database")."""
    import psycopg
    from psycopg.rows import dict_row
    from psycopg_pool import ConnectionPool, PoolTimeout

    pool: ConnectionPool = ConnectionPool(
        url,
        min_size=1,
        max_size=8,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
        open=False,
    )
    try:
        pool.open(wait=True, timeout=10)
    except (psycopg.Error, PoolTimeout) as error:
        pool.close()
        raise DatabaseError(f"cannot open {what} {mask_url(url)}: {str(error).splitlines()[0]}") from error
    return pool


class _HasTables(Protocol):
    def setup(self) -> None: ...


Made = TypeVar("Made", bound=_HasTables)


def open_with_tables(
    url: str, what: str, make: Callable[[ConnectionPool], Made]
) -> tuple[ConnectionPool, Made]:
    """A langgraph saver or store (`make`) on a pool of `url`, its tables created if missing;
    the pool closed again if that fails."""
    import psycopg

    pool = open_pool(url, what)
    made = make(pool)
    try:
        made.setup()
    except psycopg.Error as error:
        pool.close()
        raise DatabaseError(f"cannot set up {what} {mask_url(url)}: {str(error).splitlines()[0]}") from error
    return pool, made


def open_postgres_store(url: str) -> PostgresStore:
    """langgraph's `PostgresStore` on `url`, kept open for the life of the process."""
    from langgraph.store.postgres import PostgresStore

    return open_with_tables(url, "the store database", PostgresStore)[1]  # type: ignore[arg-type]


def database_of(conninfo: str) -> tuple[str, str, str, str]:
    """Which database a connection string reaches: host, port, name and user (defaults filled
    in as libpq would), so two spellings of one database compare equal."""
    from psycopg.conninfo import conninfo_to_dict

    fields = conninfo_to_dict(conninfo)
    return (
        str(fields.get("host") or "localhost"),
        str(fields.get("port") or "5432"),
        str(fields.get("dbname") or fields.get("user") or ""),
        str(fields.get("user") or ""),
    )
