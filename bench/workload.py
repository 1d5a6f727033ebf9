"""The orders a run feeds and the stock it seeds, generated deterministically from a seed."""

from __future__ import annotations

import math
import random
from collections import defaultdict
from dataclasses import dataclass

LOCATIONS = ("berlin", "hamburg")


@dataclass(frozen=True)
class Workload:
    skus: tuple[str, ...]
    orders: tuple[dict[str, object], ...]
    initial_stock: dict[tuple[str, str], int]
    demand: dict[str, int]
    # SKUs sold on backorder: no stock at first, received while the run goes.
    backorder_skus: tuple[str, ...] = ()

    @property
    def stock_can_run_out(self) -> bool:
        stocked: dict[str, int] = defaultdict(int)
        for (sku, _), quantity in self.initial_stock.items():
            stocked[sku] += quantity
        return any(
            stocked[sku] < wanted
            for sku, wanted in self.demand.items()
            if sku not in self.backorder_skus
        )


def order_body(lines: list[tuple[str, int, str]], *, reference: str) -> dict[str, object]:
    """One customer per order, with a card and a house of their own, as real traffic has: the
    fraud rules' velocity counts see no attack, and every order is scored (that cost is part of
    the bench)."""
    return {
        "channel": "web",
        "external_id": reference,
        "customer": {"email": f"{reference}@example.com", "name": "Bench Customer"},
        "shipping_address": {
            "line1": f"{reference} Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": sku, "quantity": qty, "unit_price": price} for sku, qty, price in lines],
        "payment": {"method": "card", "token": f"tok_visa_{reference}"},
    }


def catalogue(skus: int) -> tuple[str, ...]:
    """The bench's SKUs."""
    return tuple(f"BENCH-{i:04d}" for i in range(skus))


def generate(
    *,
    orders: int,
    skus: int,
    max_lines: int,
    stock_factor: float,
    seed: int,
    run_tag: str,
    backorder_skus: int = 0,
) -> Workload:
    """`orders` orders of 1..max_lines distinct SKUs (1-2 units each, uniform over the SKUs),
    and stock at two locations holding stock_factor times the demand of each SKU (rounded up):
    with a factor >= 1 every order can be filled, below 1 some must be rejected. The last
    `backorder_skus` SKUs have no stock: they are sold on backorder."""
    rng = random.Random(seed)
    skus_sold = catalogue(skus)
    bodies = []
    demand: dict[str, int] = defaultdict(int)
    for n in range(orders):
        count = rng.randint(1, min(max_lines, skus))
        lines = []
        for sku in rng.sample(skus_sold, count):
            quantity = rng.randint(1, 2)
            demand[sku] += quantity
            lines.append((sku, quantity, f"{rng.randint(100, 9999) / 100:.2f}"))
        bodies.append(order_body(lines, reference=f"{run_tag}-{n:07d}"))
    on_backorder = skus_sold[len(skus_sold) - min(backorder_skus, len(skus_sold)) :]
    stock = {}
    for sku in skus_sold:
        if sku in on_backorder:
            continue
        total = math.ceil(demand.get(sku, 0) * stock_factor)
        first = math.ceil(total / len(LOCATIONS))
        stock[(sku, LOCATIONS[0])] = max(first, 1)
        stock[(sku, LOCATIONS[1])] = max(total - first, 1)
    return Workload(skus_sold, tuple(bodies), stock, dict(demand), on_backorder)
