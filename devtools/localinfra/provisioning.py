"""Service roles on any PostgreSQL: one database, and per service a role and a schema of its own.

Database ``oms``; per service a LOGIN role named like the service with the deterministic
password ``<service>-dev-password`` (dev only, loopback only; makes DSNs computable by any
process and keeps provisioning idempotent against any server; override with ``passwords=``), a
schema of the same name owned by it, ``ALTER ROLE x SET search_path = x``, ``GRANT CONNECT ON
DATABASE``; ``PUBLIC`` loses all database privileges and all rights on schema ``public``.  Roles
are cluster-wide in PostgreSQL, so several databases provisioned in one server share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from devtools.processes import run_coro
from shared.topics import SERVICES

DEFAULT_DATABASE = "oms"
_IDENT = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_PROVISION_LOCK_KEY = 0x6F6D73_0001  # pg_advisory_lock key ("oms" 1)


def service_password(service: str) -> str:
    """Deterministic dev password of a service role (see module docstring)."""
    return f"{service}-dev-password"


def _normalise_url(url: str) -> str:
    """postgres:// / postgresql+driver:// -> postgresql:// (what asyncpg accepts)."""
    parts = urlsplit(url)
    scheme = parts.scheme.split("+", 1)[0]
    if scheme not in ("postgres", "postgresql"):
        raise ValueError(f"not a PostgreSQL URL: {url!r}")
    return urlunsplit(("postgresql", parts.netloc, parts.path, parts.query, parts.fragment))


def with_database(url: str, database: str) -> str:
    """The same server URL (TCP or Unix socket), another database."""
    parts = urlsplit(_normalise_url(url))
    return urlunsplit((parts.scheme, parts.netloc, "/" + quote(database, safe=""), parts.query, ""))


def _dsn(admin_url: str, user: str, password: str, database: str) -> str:
    parts = urlsplit(_normalise_url(admin_url))
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{host}"
    if parts.port:
        netloc += f":{parts.port}"
    return urlunsplit(("postgresql", netloc, "/" + quote(database, safe=""), parts.query, ""))


async def _sql(conn: Any, template: str, *args: str) -> None:
    """Run a utility statement built server-side with format() (%I identifiers, %L literals)."""
    placeholders = ", ".join(f"${i + 1}::text" for i in range(len(args)))
    statement = await conn.fetchval(f"SELECT format('{template}', {placeholders})", *args)
    await conn.execute(statement)


async def _connect(url: str, wait: float = 30.0) -> Any:
    """asyncpg.connect, waiting while the server says it is starting up / recovering."""
    import asyncpg

    deadline = time.monotonic() + wait
    while True:
        try:
            return await asyncpg.connect(url, timeout=30)
        except asyncpg.CannotConnectNowError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.5)


async def provision_database_async(
    admin_url: str,
    database: str = DEFAULT_DATABASE,
    services: Iterable[str] = SERVICES,
    *,
    passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Create ``database`` and one role+schema per service on any PostgreSQL (idempotent).

    ``admin_url`` must be a role that can create databases and roles (superuser in
    practice); any database in it works (if it does not exist, ``postgres`` is used).
    Returns ``{service: "postgresql://<service>:<pw>@<admin host>:<admin port>/<database>"}``.
    """
    import asyncpg

    services = list(dict.fromkeys(services))
    for name in (database, *services):
        if not _IDENT.fullmatch(name):
            raise ValueError(f"invalid name {name!r}: use lowercase letters, digits and _")
    pw_of = {s: (passwords or {}).get(s) or service_password(s) for s in services}
    admin_url = _normalise_url(admin_url)

    try:
        conn = await _connect(admin_url)
    except asyncpg.InvalidCatalogNameError:
        conn = await _connect(with_database(admin_url, "postgres"))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK_KEY)
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", database):
            with contextlib.suppress(asyncpg.DuplicateDatabaseError):  # concurrent creator
                await _sql(conn, "CREATE DATABASE %I", database)
        for svc in services:
            exists = await conn.fetchval("SELECT 1 FROM pg_roles WHERE rolname = $1", svc)
            verb = "ALTER" if exists else "CREATE"
            try:
                await _sql(
                    conn,
                    verb
                    + " ROLE %I WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD %L",
                    svc,
                    pw_of[svc],
                )
            except asyncpg.DuplicateObjectError:  # created concurrently by another server user
                await _sql(conn, "ALTER ROLE %I WITH LOGIN PASSWORD %L", svc, pw_of[svc])
            await _sql(conn, "ALTER ROLE %I SET search_path = %I", svc, svc)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", _PROVISION_LOCK_KEY)
        await conn.close()

    conn = await _connect(with_database(admin_url, database))
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _PROVISION_LOCK_KEY)
        await _sql(conn, "REVOKE ALL ON DATABASE %I FROM PUBLIC", database)
        await conn.execute("REVOKE ALL ON SCHEMA public FROM PUBLIC")
        for svc in services:
            owner = await conn.fetchval(
                "SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = $1",
                svc,
            )
            if owner is None:
                await _sql(conn, "CREATE SCHEMA %I AUTHORIZATION %I", svc, svc)
            elif owner != svc:
                await _sql(conn, "ALTER SCHEMA %I OWNER TO %I", svc, svc)
            await _sql(conn, "REVOKE ALL ON SCHEMA %I FROM PUBLIC", svc)
            await _sql(conn, "GRANT CONNECT ON DATABASE %I TO %I", database, svc)
    finally:
        with contextlib.suppress(Exception):
            await conn.execute("SELECT pg_advisory_unlock($1)", _PROVISION_LOCK_KEY)
        await conn.close()

    return {svc: _dsn(admin_url, svc, pw_of[svc], database) for svc in services}


def provision_database(
    admin_url: str,
    database: str = DEFAULT_DATABASE,
    services: Iterable[str] = SERVICES,
    *,
    passwords: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """Sync wrapper of :func:`provision_database_async` (also usable inside a running loop)."""
    return run_coro(provision_database_async(admin_url, database, services, passwords=passwords))
