"""Idempotency-Key of the HTTP route that starts a saga: a repeat of a request answers with
what the first one created; the same key with another request is refused (409
`idempotency_key_reused`). The key is locked for the transaction, so concurrent repeats wait for
the first and then find its saga."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from shared.platform.db import DbConnection
from shared.platform.errors import ApiError
from shared.platform.saga import store
from shared.platform.saga.store import SagaTables


def request_hash(payload: Any) -> str:
    """A digest of the request (keys sorted), to tell a repeat from another request."""
    return hashlib.sha256(orjson.dumps(payload, option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(frozen=True)
class IdempotencyKeys:
    tables: SagaTables
    # What a saga is called in the refusal ("... used for a different <noun>").
    noun: str
    # Whether the refusal names the saga the key created (as `<id column>`).
    names_existing: bool = False

    async def earlier_saga(self, conn: DbConnection, key: str, request_hash: str) -> str | None:
        """Lock the key until the transaction ends; the id of the saga the same request created
        under it before, or None for a key not used yet."""
        await store.lock_idempotency_key(conn, self.tables, key)
        known = await store.saga_for_idempotency_key(conn, self.tables, key)
        if known is None:
            return None
        existing_id, existing_hash = known
        if existing_hash != request_hash:
            details: dict[str, Any] = (
                {self.tables.id_column: existing_id} if self.names_existing else {}
            )
            raise ApiError(
                409,
                "idempotency_key_reused",
                f"this Idempotency-Key was used for a different {self.noun}",
                **details,
            )
        return existing_id

    async def remember(self, conn: DbConnection, key: str, request_hash: str, saga_id: str) -> None:
        """The key now answers with this saga (in the transaction that created it)."""
        await store.remember_idempotency_key(conn, self.tables, key, request_hash, saga_id)
