"""The saga tells inventory where the order goes, and notes where it was routed and why."""

from __future__ import annotations

from services.order_intake.domain import saga as s
from services.order_intake.domain.saga import Status
from shared.contracts.common import Address
from shared.contracts.inventory import RoutingDecision, StockReserved
from shared.contracts.order_intake import ReserveStock, ShipTo
from tests.unit.order_intake.test_saga import ALLOC, ORDER, POLICY, T0, at, new_saga


def test_reserve_stock_carries_the_shipping_country_and_postal_code():
    saga = new_saga(
        shipping_address=Address(line1="Rue 1", city="Paris", postal_code="75011", country="FR")
    )
    [command] = s.start(saga, T0, POLICY).messages
    assert isinstance(command, ReserveStock)
    assert command.ship_to == ShipTo(country="FR", postal_code="75011")


def test_the_timeline_shows_where_the_order_was_routed_and_why():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    routing = RoutingDecision(
        strategy="nearest",
        locations=("berlin", "hamburg"),
        reason="nearest to DE 10115: berlin (...), hamburg (...)",
    )
    decision = s.handle(
        saga, StockReserved(order_id=ORDER, allocations=ALLOC, routing=routing), T0, POLICY
    )
    [entry] = [e for e in decision.timeline if e.event == "stock_reserved"]
    assert entry.detail == {
        "allocations": 2,
        "strategy": "nearest",
        "locations": ["berlin", "hamburg"],
        "reason": "nearest to DE 10115: berlin (...), hamburg (...)",
    }
    assert saga.status == Status.AUTHORIZING_PAYMENT


def test_an_answer_without_routing_is_noted_as_before():
    saga = at(new_saga(), Status.RESERVING_STOCK)
    decision = s.handle(saga, StockReserved(order_id=ORDER, allocations=ALLOC), T0, POLICY)
    [entry] = [e for e in decision.timeline if e.event == "stock_reserved"]
    assert entry.detail == {"allocations": 2}
