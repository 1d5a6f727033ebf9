"""What kits are available: derived from their components' stock, announced with it.

Whenever a component's stock changes, `Availability.announce` (availability/channels.py) also
announces every kit containing it, with totals from `kit_levels`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

from services.inventory.kits.domain import Kit, kit_total
from services.inventory.kits.store import KitStore
from services.inventory.stock.domain import Availability, StockLevel
from services.inventory.stock.store import InventoryStore
from shared.platform.db import DbConnection


async def kit_totals(
    conn: DbConnection,
    changed: Iterable[str],
    current: Sequence[StockLevel],
    kits: Mapping[str, Kit] | None = None,
) -> dict[str, Availability]:
    """The totals of every kit containing one of the `changed` SKUs (`current`: their stock
    rows as they are now in this transaction). `kits`: those kits when the caller has them
    (else read); the stock of their other components is read."""
    changed = set(changed)
    if kits is None:
        kits = await KitStore(conn).kits_touching(changed)
    affected = {
        sku: kit
        for sku, kit in kits.items()
        if any(component.sku in changed for component in kit.components)
    }
    if not affected:
        return {}
    levels = [level for level in current if level.sku in changed]
    others = {c.sku for kit in affected.values() for c in kit.components} - changed
    if others:
        levels += await InventoryStore(conn).stock_levels(others)
    return {sku: kit_total(kit, levels) for sku, kit in sorted(affected.items())}
