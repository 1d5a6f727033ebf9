"""Plain-SQL migrations per service, applied in order and recorded in the service's schema.

Files are named `NNNN_description.sql`. The platform's own tables (outbox, inbox) are applied
first as component "platform", then the service's files as component "service". A checksum is
kept so an edited, already-applied migration is reported instead of silently ignored.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from shared.platform.db import DbConnection

PLATFORM_MIGRATIONS = Path(__file__).with_name("sql")
_NAME = re.compile(r"^(\d{4})_([\w-]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    component: str
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


class MigrationError(Exception):
    pass


def discover(component: str, folder: Path) -> list[Migration]:
    migrations = []
    for path in sorted(folder.glob("*.sql")):
        match = _NAME.match(path.name)
        if not match:
            raise MigrationError(f"migration file {path} is not named NNNN_name.sql")
        migrations.append(
            Migration(component, int(match.group(1)), match.group(2), path.read_text())
        )
    versions = [m.version for m in migrations]
    if len(versions) != len(set(versions)):
        raise MigrationError(f"duplicate migration versions in {folder}")
    return migrations


def all_migrations(service_folder: Path) -> list[Migration]:
    return discover("platform", PLATFORM_MIGRATIONS) + discover("service", service_folder)


_LEDGER = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    component  text        NOT NULL,
    version    integer     NOT NULL,
    name       text        NOT NULL,
    checksum   text        NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (component, version)
)
"""


async def migrate(conn: DbConnection, schema: str, service_folder: Path) -> list[str]:
    """Apply pending migrations; safe when several replicas start at once."""
    applied_now: list[str] = []
    await conn.execute(f'SET search_path = "{schema}"')
    await conn.execute("SELECT pg_advisory_lock(hashtext($1))", f"{schema}.migrations")
    try:
        await conn.execute(_LEDGER)
        done = {
            (r["component"], r["version"]): r["checksum"]
            for r in await conn.fetch("SELECT component, version, checksum FROM schema_migrations")
        }
        for migration in all_migrations(service_folder):
            key = (migration.component, migration.version)
            if key in done:
                if done[key] != migration.checksum:
                    raise MigrationError(
                        f"{schema}: applied migration {migration.component}/{migration.version}"
                        f"_{migration.name} was edited afterwards; add a new migration instead"
                    )
                continue
            async with conn.transaction():
                await conn.execute(migration.sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (component, version, name, checksum)"
                    " VALUES ($1, $2, $3, $4)",
                    migration.component,
                    migration.version,
                    migration.name,
                    migration.checksum,
                )
            applied_now.append(f"{migration.component}/{migration.version:04d}_{migration.name}")
    finally:
        await conn.execute("SELECT pg_advisory_unlock(hashtext($1))", f"{schema}.migrations")
    return applied_now


async def pending(conn: DbConnection, service_folder: Path) -> list[str]:
    """Migrations not yet applied (empty when the schema is up to date)."""
    exists = await conn.fetchval("SELECT to_regclass('schema_migrations') IS NOT NULL")
    done: set[tuple[str, int]] = set()
    if exists:
        done = {
            (r["component"], r["version"])
            for r in await conn.fetch("SELECT component, version FROM schema_migrations")
        }
    return [
        f"{m.component}/{m.version:04d}_{m.name}"
        for m in all_migrations(service_folder)
        if (m.component, m.version) not in done
    ]
