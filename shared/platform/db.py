"""asyncpg pools with JSON codecs, and the unit of work every write goes through."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TypeAlias

import asyncpg

if TYPE_CHECKING:
    from asyncpg.pool import PoolConnectionProxy

    DbConnection: TypeAlias = asyncpg.Connection[Any] | PoolConnectionProxy[Any]
else:
    DbConnection: TypeAlias = Any

from shared.envelope import dumps, loads


async def _init_connection(conn: asyncpg.Connection) -> None:
    for type_name in ("json", "jsonb"):
        await conn.set_type_codec(
            type_name,
            encoder=lambda v: dumps(v).decode(),
            decoder=loads,
            schema="pg_catalog",
        )


async def _keep_session(conn: asyncpg.Connection) -> None:
    """Return a connection to the pool as it is. The pool still rolls back a transaction left
    open; the default reset (`CLOSE ALL; UNLISTEN *; RESET ALL; pg_advisory_unlock_all()`) would
    cost a round trip per acquire, and pooled connections here never keep session state: locks
    are transaction-scoped, LISTEN runs on the relay's own connection, settings are per pool."""


async def create_pool(
    dsn: str, schema: str, *, min_size: int = 1, max_size: int = 4
) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_init_connection,
        reset=_keep_session,
        server_settings={"search_path": schema, "application_name": schema},
    )
    assert pool is not None
    return pool


async def connect(dsn: str, schema: str) -> asyncpg.Connection:
    conn: asyncpg.Connection = await asyncpg.connect(
        dsn, server_settings={"search_path": schema, "application_name": f"{schema}-relay"}
    )
    await _init_connection(conn)
    return conn


TRANSIENT_SQLSTATES = frozenset(
    {
        "40001",  # serialization_failure
        "40P01",  # deadlock_detected
        "55P03",  # lock_not_available
        "57P01",  # admin_shutdown
        "57P02",  # crash_shutdown
        "57P03",  # cannot_connect_now
        "53300",  # too_many_connections
    }
)


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying without limit: the infrastructure, not the message, is at fault."""
    if isinstance(exc, (ConnectionError, OSError, TimeoutError)):
        return True
    if isinstance(
        exc, asyncpg.exceptions.InterfaceError | asyncpg.exceptions.ConnectionDoesNotExistError
    ):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        return getattr(exc, "sqlstate", None) in TRANSIENT_SQLSTATES
    return False


def columns(rows: Sequence[Any], *fields: str) -> list[list[Any]]:
    """The rows' attributes as one list per field, in the order given: the arrays that an
    `unnest($1::text[], $2::bigint[], ...)` turns back into rows, to write a batch in one
    statement."""
    return [[getattr(row, name) for row in rows] for name in fields]


def record_to_dict(record: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(record) if record is not None else None


class Filters:
    """The WHERE clause of a listing built from optional filters, and its arguments.

    `equal` adds `column = $n` for a value that is set; `param` numbers any other argument
    (add them in the order they appear in the statement)."""

    def __init__(self) -> None:
        self.args: list[Any] = []
        self._conditions: list[str] = []

    def param(self, value: Any) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def equal(self, column: str, value: Any) -> None:
        if value:
            self._conditions.append(f"{column} = {self.param(value)}")

    def condition(self, sql: str) -> None:
        """A condition of its own (its placeholders from `param`)."""
        self._conditions.append(sql)

    @property
    def where(self) -> str:
        return f"WHERE {' AND '.join(self._conditions)}" if self._conditions else ""
