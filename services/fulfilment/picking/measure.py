"""How far pickers walk per order with each strategy, on a generated warehouse.

    python -m services.fulfilment.picking.measure [--orders 100] [--seed 7] [--orders-seed 11]

Prints a Markdown table. Everything is computed from the plans (no clock): the same seeds give
the same table. Per order means per fulfilment given, short ones included.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from services.fulfilment.picking.strategies import (
    PickingPolicy,
    PickList,
    PickOrder,
    PickPlan,
    Strategy,
    WavePolicy,
    plan_picking,
    plan_waves,
)
from services.fulfilment.picking.walk import Floor, Walk, total_walk, walk_list
from services.fulfilment.warehouse.generate import Warehouse, generate_orders, generate_warehouse


@dataclass(frozen=True)
class Measurement:
    strategy: str
    orders: int
    lists: int
    short_lines: int
    aisles: Walk  # with the cross aisles (the floor's real walk)
    manhattan: Walk  # plain |dx| + |dy|

    def per_order(self, value: float) -> float:
        return value / self.orders if self.orders else 0.0


def measure(
    warehouse: Warehouse,
    orders: Sequence[PickOrder],
    *,
    orders_per_batch: int = 8,
    waves: WavePolicy = WavePolicy(),
) -> tuple[Measurement, ...]:
    stock = warehouse.stock
    batch = PickingPolicy(Strategy.BATCH, orders_per_batch)
    zone = PickingPolicy(Strategy.ZONE, orders_per_batch)

    def whole_floor(_: PickList) -> Floor:
        return warehouse.floor

    def own_zone(pick_list: PickList) -> Floor:
        return warehouse.zone_floor(pick_list.zone or "")

    wave_plans = plan_waves(orders, stock, waves, batch)
    cases: list[tuple[str, Sequence[PickPlan], Callable[[PickList], Floor]]] = [
        ("single_order", [plan_picking(orders, stock)], whole_floor),
        (f"batch ({orders_per_batch} totes)", [plan_picking(orders, stock, batch)], whole_floor),
        (
            f"zone ({orders_per_batch} orders a round, pickers stay in their zone)",
            [plan_picking(orders, stock, zone)],
            own_zone,
        ),
        (
            f"zone ({orders_per_batch} orders a round, walks from the depot)",
            [plan_picking(orders, stock, zone)],
            whole_floor,
        ),
        (
            f"waves ({len(wave_plans)}: cut-off, carrier, express first) + batch",
            [wave.plan for wave in wave_plans],
            whole_floor,
        ),
    ]
    return tuple(
        _measurement(label, plans, floor_of, len(orders)) for label, plans, floor_of in cases
    )


def _measurement(
    label: str, plans: Sequence[PickPlan], floor_of: Callable[[PickList], Floor], orders: int
) -> Measurement:
    lists = [pick_list for plan in plans for pick_list in plan.lists]
    return Measurement(
        strategy=label,
        orders=orders,
        lists=len(lists),
        short_lines=sum(len(plan.short) for plan in plans),
        aisles=total_walk(walk_list(pl, floor_of(pl)) for pl in lists),
        manhattan=total_walk(walk_list(pl, _manhattan(floor_of(pl))) for pl in lists),
    )


def _manhattan(floor: Floor) -> Floor:
    return Floor(floor.depot, floor.pack_station, ())


def format_table(rows: Sequence[Measurement]) -> str:
    header = (
        "| strategy | lists | stops / order | m / order (aisles) | m / order (Manhattan) "
        "| bin steps / order | short lines |"
    )
    lines = [header, "|" + "---|" * 7]
    for row in rows:
        lines.append(
            f"| {row.strategy} | {row.lists} | {row.per_order(row.aisles.stops):.2f} "
            f"| {row.per_order(row.aisles.metres):.1f} | {row.per_order(row.manhattan.metres):.1f} "
            f"| {row.per_order(row.aisles.bin_steps):.1f} | {row.short_lines} |"
        )
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--orders", type=int, default=100)
    parser.add_argument("--seed", type=int, default=7, help="the warehouse's seed")
    parser.add_argument("--orders-seed", type=int, default=11)
    parser.add_argument("--batch", type=int, default=8, help="totes a cart, orders a zone round")
    args = parser.parse_args(argv)
    warehouse = generate_warehouse(args.seed)
    orders = generate_orders(warehouse, args.orders, args.orders_seed)
    print(
        f"{len(warehouse.bins)} bins in {warehouse.layout.zones} zones, "
        f"{len(warehouse.items)} SKUs, {len(orders)} orders "
        f"({sum(len(o.lines) for o in orders)} lines); seeds {args.seed}/{args.orders_seed}\n"
    )
    print(format_table(measure(warehouse, orders, orders_per_batch=args.batch)))


if __name__ == "__main__":
    main()
