"""All SQL of routing: the location records."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from services.inventory.routing.domain import LocationRecord
from shared.platform.db import DbConnection

_COLUMNS = (
    "code, name, kind, country, postal_code, latitude, longitude, priority, ships_to,"
    " cutoff_local, timezone, active"
)


class LocationStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def put(self, location: LocationRecord) -> bool:
        """Create or replace a location's record; True when it was created."""
        created: bool = await self._conn.fetchval(
            f"INSERT INTO locations ({_COLUMNS})"
            " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
            " ON CONFLICT (code) DO UPDATE SET name = excluded.name, kind = excluded.kind,"
            " country = excluded.country, postal_code = excluded.postal_code,"
            " latitude = excluded.latitude, longitude = excluded.longitude,"
            " priority = excluded.priority, ships_to = excluded.ships_to,"
            " cutoff_local = excluded.cutoff_local, timezone = excluded.timezone,"
            " active = excluded.active, updated_at = now()"
            " RETURNING (xmax = 0)",
            location.code,
            location.name,
            location.kind,
            location.country,
            location.postal_code,
            location.latitude,
            location.longitude,
            location.priority,
            list(location.ships_to),
            location.cutoff_local,
            location.timezone,
            location.active,
        )
        return created

    async def get(self, code: str) -> LocationRecord | None:
        row = await self._conn.fetchrow(f"SELECT {_COLUMNS} FROM locations WHERE code = $1", code)
        return _record(row) if row is not None else None

    async def all(self) -> list[LocationRecord]:
        rows = await self._conn.fetch(f"SELECT {_COLUMNS} FROM locations ORDER BY code")
        return [_record(row) for row in rows]

    async def of(self, codes: Iterable[str]) -> dict[str, LocationRecord]:
        """The records of these locations, by code (one query; the reservation's hot path)."""
        wanted = sorted(set(codes))
        if not wanted:
            return {}
        rows = await self._conn.fetch(
            f"SELECT {_COLUMNS} FROM locations WHERE code = ANY($1::text[])", wanted
        )
        return {row["code"]: _record(row) for row in rows}


def _record(row: Any) -> LocationRecord:
    return LocationRecord(**{**dict(row), "ships_to": tuple(row["ships_to"])})
