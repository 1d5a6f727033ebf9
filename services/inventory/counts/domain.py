"""What a count does to stock, as plain Python.

For each SKU counted at a location the difference `counted - on hand` becomes one adjustment
(ledger reason `count`); a SKU whose count matches changes nothing but is still reported. A
count below what orders have reserved there cannot be applied as is (the reservations would
exceed the stock): the whole count is refused, every such line named, so the operator deals
with those orders first (a short pick, a reallocation) and counts again. Nothing of a refused
count is applied: a count is one observation of a location and is taken whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from services.inventory.stock.domain import StockChange, StockLevel

COUNT = "count"  # the ledger reason of every change a count makes


@dataclass(frozen=True)
class CountedLine:
    sku: str
    counted: int


@dataclass(frozen=True)
class CountedStock:
    """One SKU's count against what the system had on hand (and reserved) at the location."""

    sku: str
    before: int
    reserved: int
    counted: int

    @property
    def delta(self) -> int:
        return self.counted - self.before

    def change(self, location: str) -> StockChange:
        return StockChange(self.sku, location, self.delta, 0, COUNT)

    def detail(self, reason: str) -> str:
        return f"{reason}: counted {self.counted}, system had {self.before}"


@dataclass(frozen=True)
class CountPlan:
    location: str
    lines: tuple[CountedStock, ...]

    @property
    def changes(self) -> tuple[StockChange, ...]:
        """One change per SKU whose count differs; none for the others."""
        return tuple(line.change(self.location) for line in self.lines if line.delta != 0)


@dataclass(frozen=True)
class BelowReserved:
    """The count is refused: these lines counted fewer units than orders hold reserved."""

    location: str
    lines: tuple[CountedStock, ...]


def plan_count(
    location: str, counted: Sequence[CountedLine], levels: Iterable[StockLevel]
) -> CountPlan | BelowReserved:
    """Compare each count with the SKU's stock at the location (none: 0 on hand)."""
    seen: set[str] = set()
    for line in counted:
        if line.counted < 0:
            raise ValueError(f"a count of {line.sku} cannot be negative")
        if line.sku in seen:
            raise ValueError(f"{line.sku} is counted twice")
        seen.add(line.sku)
    here = {level.sku: level for level in levels if level.location == location}
    lines = tuple(
        CountedStock(
            sku=line.sku,
            before=here[line.sku].on_hand if line.sku in here else 0,
            reserved=here[line.sku].reserved if line.sku in here else 0,
            counted=line.counted,
        )
        for line in counted
    )
    short = tuple(line for line in lines if line.counted < line.reserved)
    if short:
        return BelowReserved(location, short)
    return CountPlan(location, lines)
