"""How the HTTP APIs show a saga's timeline."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


def timeline_view(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Timeline rows (store.read_timeline) as JSON: at (ISO 8601), status, event, detail."""
    return [
        {
            "at": row["at"].isoformat(),
            "status": row["status"],
            "event": row["event"],
            "detail": row["detail"],
        }
        for row in rows
    ]
