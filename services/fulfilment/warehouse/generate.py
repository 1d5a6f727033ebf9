"""A made-up warehouse and its orders, deterministic from a seed: for tests and for measuring
picking strategies. Pure: the same seed gives the same warehouse on every machine.

The floor: zones side by side along x, each a few parallel aisles running along y between a
front cross aisle (y = 0, where the depot is, at x = 0) and a back cross aisle. An aisle has a
bay every `bay_width_m` with a bin on each side; a bin's (x_m, y_m) is the spot in the aisle it
is picked from, so both sides of a bay share it. The walking path is a serpentine: up the first
aisle, down the second, and so on through every zone; `Bin.sequence` is the rank on it.

SKUs: every SKU has a bin of its own, a few also a second bin elsewhere, a few share another
SKU's bin; a few popular SKUs are out of stock. Popularity is skewed (Zipf: the SKU of rank r
is ordered in proportion to 1 / r**skew), and stock follows it, as replenishment would.
"""

from __future__ import annotations

import random
import string
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, time

from services.fulfilment.domain import Line, fulfilment_id_for
from services.fulfilment.picking.strategies import PickOrder, ServiceLevel
from services.fulfilment.picking.walk import DEPOT, Floor, Point
from services.fulfilment.warehouse.model import Bin, BinStock, Dimensions, Item


@dataclass(frozen=True)
class Layout:
    zones: int = 4
    aisles_per_zone: int = 4
    bays_per_aisle: int = 10
    aisle_pitch_m: float = 3.0  # from one aisle's centre line to the next
    bay_width_m: float = 1.2
    first_bay_y_m: float = 2.0  # from the front cross aisle to the first bay

    def __post_init__(self) -> None:
        if not 1 <= self.zones <= len(string.ascii_uppercase):
            raise ValueError(f"between 1 and 26 zones, not {self.zones}")
        if self.aisles_per_zone < 1 or self.bays_per_aisle < 1:
            raise ValueError("a zone needs at least one aisle, an aisle at least one bay")

    @property
    def zone_names(self) -> tuple[str, ...]:
        return tuple(string.ascii_uppercase[: self.zones])

    @property
    def back_cross_aisle_y_m(self) -> float:
        return self.first_bay_y_m + self.bays_per_aisle * self.bay_width_m

    def aisle_x_m(self, aisle: int) -> float:
        """Aisles count from 0 across all zones; the first is one pitch right of the depot."""
        return self.aisle_pitch_m * (aisle + 1)


@dataclass(frozen=True)
class Warehouse:
    location: str
    layout: Layout
    bins: tuple[Bin, ...]  # in walking order
    items: Mapping[str, Item]
    stock: Mapping[str, tuple[BinStock, ...]]  # SKU -> its bins (out of stock: 0 units)
    skus_by_popularity: tuple[str, ...]  # most ordered first
    popularity_skew: float

    @property
    def floor(self) -> Floor:
        """The whole floor: walks start and end at the depot."""
        return Floor(DEPOT, None, (0.0, self.layout.back_cross_aisle_y_m))

    def zone_floor(self, zone: str) -> Floor:
        """A zone picker's floor: walks start and end where the zone's first aisle meets the
        front cross aisle (where its totes leave on the conveyor)."""
        first_aisle = self.layout.zone_names.index(zone) * self.layout.aisles_per_zone
        start = Point(self.layout.aisle_x_m(first_aisle), 0.0)
        return Floor(start, None, (0.0, self.layout.back_cross_aisle_y_m))

    @property
    def barcodes(self) -> dict[str, str]:
        return {sku: item.barcode for sku, item in self.items.items()}


def generate_bins(layout: Layout = Layout()) -> tuple[Bin, ...]:
    """Every bin of the layout, in walking order (the serpentine)."""
    bins: list[Bin] = []
    for zone_index, zone in enumerate(layout.zone_names):
        for aisle_in_zone in range(layout.aisles_per_zone):
            aisle = zone_index * layout.aisles_per_zone + aisle_in_zone
            bays = range(layout.bays_per_aisle)
            for bay in bays if aisle % 2 == 0 else reversed(bays):
                for side in ("L", "R"):
                    bins.append(
                        Bin(
                            code=f"{zone}-{aisle + 1:02d}-{bay + 1:02d}{side}",
                            zone=zone,
                            sequence=len(bins) + 1,
                            x_m=layout.aisle_x_m(aisle),
                            y_m=round(layout.first_bay_y_m + bay * layout.bay_width_m, 3),
                        )
                    )
    return tuple(bins)


def generate_warehouse(
    seed: int = 7,
    layout: Layout = Layout(),
    *,
    skus: int = 240,
    skus_in_two_bins: int = 40,
    skus_sharing_a_bin: int = 10,
    out_of_stock_skus: int = 3,
    popularity_skew: float = 1.0,
    location: str = "WH-GEN",
) -> Warehouse:
    rng = random.Random(seed)
    bins = generate_bins(layout)
    if not 1 <= skus <= 9999:
        raise ValueError(f"between 1 and 9999 SKUs (four digits of the barcode), not {skus}")
    own_bins = skus - skus_sharing_a_bin
    if own_bins + skus_in_two_bins > len(bins):
        raise ValueError(f"{len(bins)} bins cannot hold {skus} SKUs as asked")
    codes = [f"SKU-{n:04d}" for n in range(1, skus + 1)]
    by_popularity = tuple(rng.sample(codes, len(codes)))
    free_bins = rng.sample(bins, len(bins))

    places: dict[str, list[Bin]] = defaultdict(list)
    placing = rng.sample(codes, len(codes))
    for sku in placing[:own_bins]:
        places[sku].append(free_bins.pop())
    for sku in placing[own_bins:]:
        places[sku].append(places[rng.choice(placing[:own_bins])][0])
    for sku in sorted(rng.sample(codes, skus_in_two_bins)):
        places[sku].append(free_bins.pop())

    weights = zipf_weights(len(by_popularity), popularity_skew)
    total_weight = sum(weights)
    out_of_stock = set(rng.sample(by_popularity[3:40], out_of_stock_skus))
    stock: dict[str, tuple[BinStock, ...]] = {}
    for sku, weight in zip(by_popularity, weights, strict=True):
        units = (
            0 if sku in out_of_stock else rng.randint(6, 16) + round(600 * weight / total_weight)
        )
        first = units if len(places[sku]) == 1 else (units * 2 + 2) // 3
        shares = [first, units - first][: len(places[sku])]
        stock[sku] = tuple(BinStock(b, q) for b, q in zip(places[sku], shares, strict=True))

    items = {sku: _item(sku, rng) for sku in codes}
    return Warehouse(
        location=location,
        layout=layout,
        bins=bins,
        items=items,
        stock=dict(sorted(stock.items())),
        skus_by_popularity=by_popularity,
        popularity_skew=popularity_skew,
    )


# Carriers of the generated orders and the time each collects (UTC).
CUTOFFS: dict[str, time] = {
    "royal_mail": time(12, 0),
    "dhl": time(15, 0),
    "ups": time(17, 0),
}
_SERVICE_LEVELS = (ServiceLevel.EXPRESS, ServiceLevel.STANDARD, ServiceLevel.ECONOMY)
_QUANTITIES = (1, 2, 3, 4)


def generate_orders(
    warehouse: Warehouse,
    count: int,
    seed: int = 11,
    *,
    max_lines: int = 5,
    day: datetime = datetime(2026, 1, 5, tzinfo=UTC),
) -> tuple[PickOrder, ...]:
    """`count` fulfilments of 1..max_lines distinct SKUs (fewer lines more likely), SKUs by
    popularity, mostly one unit a line; a carrier each with its cut-off on `day`, a fifth
    express."""
    rng = random.Random(seed)
    skus = warehouse.skus_by_popularity
    weights = zipf_weights(len(skus), warehouse.popularity_skew)
    line_counts = range(1, max_lines + 1)
    carriers = sorted(CUTOFFS)
    orders: list[PickOrder] = []
    for n in range(1, count + 1):
        (lines,) = rng.choices(line_counts, weights=[max_lines + 1 - k for k in line_counts])
        chosen: list[str] = []
        while len(chosen) < min(lines, len(skus)):
            (sku,) = rng.choices(skus, weights=weights)
            if sku not in chosen:
                chosen.append(sku)
        carrier = rng.choice(carriers)
        order_id = f"ORD-{n:05d}"
        orders.append(
            PickOrder(
                fulfilment_id=fulfilment_id_for(order_id, warehouse.location),
                order_id=order_id,
                lines=tuple(
                    Line(sku, rng.choices(_QUANTITIES, weights=(70, 20, 7, 3))[0]) for sku in chosen
                ),
                carrier=carrier,
                service_level=rng.choices(_SERVICE_LEVELS, weights=(20, 65, 15))[0],
                cutoff=datetime.combine(day.date(), CUTOFFS[carrier], tzinfo=day.tzinfo),
            )
        )
    return tuple(orders)


def zipf_weights(count: int, skew: float) -> list[float]:
    """Relative popularity of ranks 1..count: 1 / rank**skew."""
    return [1.0 / rank**skew for rank in range(1, count + 1)]


def ean13(first_twelve: str) -> str:
    """The 13-digit EAN of 12 digits: the check digit appended."""
    if len(first_twelve) != 12 or not first_twelve.isdigit():
        raise ValueError(f"an EAN-13 needs 12 digits before its check digit: {first_twelve!r}")
    weighted = sum(int(d) * (3 if i % 2 else 1) for i, d in enumerate(first_twelve))
    return first_twelve + str((10 - weighted % 10) % 10)


def _item(sku: str, rng: random.Random) -> Item:
    """Barcodes in the 20-29 prefix range, kept for a retailer's own numbering."""
    return Item(
        sku=sku,
        barcode=ean13(f"20{int(sku.removeprefix('SKU-')):04d}{rng.randrange(10**6):06d}"),
        dimensions=Dimensions(rng.randint(50, 400), rng.randint(40, 300), rng.randint(10, 200)),
        weight_g=rng.randint(20, 3000),
    )
