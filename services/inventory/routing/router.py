"""Routing at the reservation: load the records of the order's stock locations (one query on
the hot path), route by the policy, and the explanation in the shapes stored and sent."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from services.inventory.routing.domain import (
    Destination,
    LocationRecord,
    RoutingExplanation,
    RoutingPolicy,
    route,
)
from services.inventory.routing.store import LocationStore
from services.inventory.stock.domain import LineRequest, Refused, Reserved, StockLevel
from shared.contracts.inventory import RoutingDecision
from shared.contracts.order_intake import ReserveStock
from shared.platform.db import DbConnection


class Router:
    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or RoutingPolicy()

    async def allocator(
        self, conn: DbConnection, command: ReserveStock, stock: Sequence[StockLevel]
    ) -> RoutingAllocator:
        """The allocation rule for this order: the policy, with the records of the locations
        holding its SKUs (loaded once) and where it ships to."""
        records = await LocationStore(conn).of(level.location for level in stock)
        destination = (
            Destination(command.ship_to.country, command.ship_to.postal_code)
            if command.ship_to is not None
            else None
        )
        return RoutingAllocator(self.policy, records, command.channel, destination)


class RoutingAllocator:
    """Allocates by the routing policy (a drop-in for `stock.domain.allocate`), remembering the
    explanation of its last decision."""

    def __init__(
        self,
        policy: RoutingPolicy,
        records: Mapping[str, LocationRecord],
        channel: str,
        destination: Destination | None,
    ) -> None:
        self._policy = policy
        self._records = records
        self._channel = channel
        self._destination = destination
        self.explanation: RoutingExplanation | None = None

    def __call__(
        self, lines: Sequence[LineRequest], stock: Sequence[StockLevel], known_skus: set[str]
    ) -> Reserved | Refused:
        routed = route(
            lines,
            stock,
            known_skus,
            self._records,
            policy=self._policy,
            channel=self._channel,
            destination=self._destination,
        )
        self.explanation = routed.explanation
        return routed.decision


def stored(explanation: RoutingExplanation) -> dict[str, Any]:
    return {
        "strategy": explanation.strategy,
        "locations": list(explanation.locations),
        "reason": explanation.reason,
    }


def decision(stored_routing: dict[str, Any] | None) -> RoutingDecision | None:
    """The stored explanation as sent in StockReserved (None for orders reserved before)."""
    return RoutingDecision.model_validate(stored_routing) if stored_routing else None
