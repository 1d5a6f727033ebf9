"""The create-or-replace statement the fulfilment store modules share (set-up rows kept by a
key: locations, items, boxes, partner connectors)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from shared.platform.db import DbConnection


async def create_or_replace(
    conn: DbConnection,
    table: str,
    values: Mapping[str, Any],
    *,
    stamp_updated_at: bool,
) -> bool:
    """Insert the row, or replace every column of the one with its key (the first column of
    `values`; `updated_at` stamped too when `stamp_updated_at`); True when it was created."""
    key, *others = values
    replaced = [f"{column} = EXCLUDED.{column}" for column in others]
    if stamp_updated_at:
        replaced.append("updated_at = now()")
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    created: bool = await conn.fetchval(
        f"INSERT INTO {table} ({', '.join(values)}) VALUES ({placeholders})"
        f" ON CONFLICT ({key}) DO UPDATE SET {', '.join(replaced)} RETURNING xmax = 0",
        *values.values(),
    )
    return created
