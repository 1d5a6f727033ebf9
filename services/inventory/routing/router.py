"""Routing at the reservation: load the records of the order's stock locations (one query on
the hot path), route by the policy, and the explanation in the shapes stored and sent."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from services.inventory.routing.domain import (
    Destination,
    Routed,
    RoutingExplanation,
    RoutingPolicy,
    route,
)
from services.inventory.routing.store import LocationStore
from services.inventory.stock.domain import LineRequest, StockLevel
from shared.contracts.inventory import RoutingDecision
from shared.contracts.order_intake import ReserveStock
from shared.platform.db import DbConnection


class Router:
    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or RoutingPolicy()

    async def route(
        self,
        conn: DbConnection,
        command: ReserveStock,
        lines: Sequence[LineRequest],
        stock: Sequence[StockLevel],
        known_skus: set[str],
    ) -> Routed:
        records = await LocationStore(conn).of(level.location for level in stock)
        destination = (
            Destination(command.ship_to.country, command.ship_to.postal_code)
            if command.ship_to is not None
            else None
        )
        return route(
            lines,
            stock,
            known_skus,
            records,
            policy=self.policy,
            channel=command.channel,
            destination=destination,
        )


def stored(explanation: RoutingExplanation) -> dict[str, Any]:
    return {
        "strategy": explanation.strategy,
        "locations": list(explanation.locations),
        "reason": explanation.reason,
    }


def decision(stored_routing: dict[str, Any] | None) -> RoutingDecision | None:
    """The stored explanation as sent in StockReserved (None for orders reserved before)."""
    return RoutingDecision.model_validate(stored_routing) if stored_routing else None
