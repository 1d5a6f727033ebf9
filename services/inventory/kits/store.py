"""All SQL of kits: their compositions (`kit_components`), and the locks that keep a kit
without stock of its own and kits from nesting."""

from __future__ import annotations

from collections.abc import Iterable

from services.inventory.kits.domain import Component, Kit
from shared.platform.db import DbConnection


class KitStore:
    def __init__(self, conn: DbConnection) -> None:
        self._conn = conn

    async def lock_definitions(self) -> None:
        """Serialise kit definitions until the transaction ends (they are rare), so two of
        them never nest kits between them."""
        await self._conn.execute("SELECT pg_advisory_xact_lock(hashtext('inventory-kits'))")

    async def lock_sku(self, sku: str) -> bool:
        """Lock the SKU's definition against stock adjustments until the transaction ends;
        False when it is not defined."""
        found = await self._conn.fetchval("SELECT true FROM skus WHERE sku = $1 FOR UPDATE", sku)
        return bool(found)

    async def is_kit_locked_for_stock(self, sku: str) -> bool:
        """Whether the SKU is a kit, its definition share-locked so that it does not become one
        while its stock changes (defining a kit takes the lock exclusively)."""
        is_kit: bool | None = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM kit_components WHERE kit_sku = $1)"
            " FROM skus WHERE sku = $1 FOR SHARE",
            sku,
        )
        return bool(is_kit)

    async def has_stock(self, sku: str) -> bool:
        """Units of the SKU on hand or reserved anywhere."""
        found: bool = await self._conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM stock WHERE sku = $1 AND (on_hand > 0 OR reserved > 0))",
            sku,
        )
        return found

    async def kit(self, sku: str) -> Kit | None:
        kits = await self._kits("WHERE kit_sku = $1", sku)
        return kits.get(sku)

    async def kits_among(self, skus: Iterable[str]) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT DISTINCT kit_sku FROM kit_components WHERE kit_sku = ANY($1::text[])"
            " ORDER BY kit_sku",
            list(skus),
        )
        return [row["kit_sku"] for row in rows]

    async def kits_containing(self, sku: str) -> list[str]:
        rows = await self._conn.fetch(
            "SELECT kit_sku FROM kit_components WHERE component = $1 ORDER BY kit_sku", sku
        )
        return [row["kit_sku"] for row in rows]

    async def kits_touching(self, skus: Iterable[str]) -> dict[str, Kit]:
        """In one statement: the kits among the SKUs, and every kit containing one of the SKUs
        or a component of those kits (whose availability changes with theirs)."""
        return await self._kits(
            "WHERE kit_sku IN ("
            "  SELECT kit_sku FROM kit_components WHERE kit_sku = ANY($1::text[])"
            "  UNION SELECT kit_sku FROM kit_components WHERE component = ANY($1::text[])"
            "  UNION SELECT kit_sku FROM kit_components WHERE component IN ("
            "    SELECT component FROM kit_components WHERE kit_sku = ANY($1::text[])))",
            sorted(set(skus)),
        )

    async def put_kit(self, kit: Kit) -> bool:
        """Replace the kit's components; True when the SKU was no kit before."""
        deleted: int = await self._conn.fetchval(
            "WITH gone AS (DELETE FROM kit_components WHERE kit_sku = $1 RETURNING 1)"
            " SELECT count(*) FROM gone",
            kit.sku,
        )
        await self._conn.execute(
            "INSERT INTO kit_components (kit_sku, component, quantity, position)"
            " SELECT $1, component, quantity, position"
            " FROM unnest($2::text[], $3::int[]) WITH ORDINALITY AS c(component, quantity, position)",
            kit.sku,
            [c.sku for c in kit.components],
            [c.per_kit for c in kit.components],
        )
        return deleted == 0

    async def _kits(self, where: str, *args: object) -> dict[str, Kit]:
        rows = await self._conn.fetch(
            f"SELECT kit_sku, component, quantity FROM kit_components {where}"
            " ORDER BY kit_sku, position",
            *args,
        )
        components: dict[str, list[Component]] = {}
        for row in rows:
            components.setdefault(row["kit_sku"], []).append(
                Component(row["component"], row["quantity"])
            )
        return {sku: Kit(sku, tuple(parts)) for sku, parts in components.items()}
