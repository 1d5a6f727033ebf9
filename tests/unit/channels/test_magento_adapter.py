"""Magento 2 REST orders become the right canonical order (pure mapping, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.channels.adapters import ADAPTERS, magento
from services.order_intake.channels.adapters.base import (
    CancelOrder,
    ChannelPayloadError,
    Ignored,
    NewOrder,
    parse_json,
)
from services.order_intake.domain.order import CanonicalOrder, price
from tests.unit.channels import magento_payloads, payloads


def roundtrip(payload: dict[str, Any]) -> Any:
    return parse_json(payloads.body(payload))


def mapped(payload: dict[str, Any]) -> CanonicalOrder:
    result = magento.parse(roundtrip(payload), {})
    assert isinstance(result, NewOrder), result
    return result.order


def lines_of(order: CanonicalOrder) -> list[tuple[str, int, Decimal]]:
    return [(line.sku, line.quantity, line.unit_price) for line in order.lines]


def test_an_invoiced_order_maps_exactly_and_is_paid_externally():
    result = magento.parse(roundtrip(magento_payloads.magento_order()), {})
    assert isinstance(result, NewOrder) and result.external_id == "41"
    order = result.order
    assert (order.channel, order.external_id, order.currency) == ("magento", "41", "EUR")
    assert lines_of(order) == [
        ("MB-01", 1, Decimal("9.66")),  # 30.00 less 1.00 discount over 3 units, exact
        ("MB-01", 2, Decimal("9.67")),
        ("WS-TEE-M", 2, Decimal("22.00")),  # the configurable parent; its child is not a line
    ]
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("73.00"),
        Decimal("10.00"),
        Decimal("15.77"),
        Decimal("98.77"),  # Magento's grand_total
    )
    assert order.paid_externally is True and order.payment_token is None
    assert (order.customer.email, order.customer.name, order.customer.phone) == (
        "linus@example.com",
        "Linus Torvalds",
        "+49 30 5551234",
    )
    ship = order.shipping_address
    assert (ship.line1, ship.line2, ship.city, ship.region, ship.postal_code, ship.country) == (
        "Alexanderplatz 1",
        "5. Etage",
        "Berlin",
        "BER",
        "10178",
        "DE",
    )
    assert order.billing_address == ship
    assert order.shipping_method == "standard"


def test_an_order_not_invoiced_goes_through_the_gateway():
    order = mapped(magento_payloads.magento_order(invoiced=False, state="new"))
    assert order.paid_externally is False
    assert (order.payment_method, order.payment_token) == ("magento", "magento:41")


def test_prices_including_tax_become_tax_exclusive_and_the_total_is_magentos():
    order = mapped(magento_payloads.tax_included_order())
    assert lines_of(order) == [("MB-01", 3, Decimal("9.00"))]  # 30.00 - 3.57 + 0.57 = 27.00
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("27.00"),
        Decimal("5.00"),
        Decimal("6.08"),
        Decimal("38.08"),
    )


def test_a_dynamic_price_bundle_ships_its_priced_children():
    payload = magento_payloads.magento_order()
    payload["items"] = [
        {"item_id": 1, "sku": "KIT-A-B", "product_type": "bundle", "qty_ordered": 1,
         "row_total": 0, "price": 0},
        {"item_id": 2, "parent_item_id": 1, "sku": "PART-A", "product_type": "simple",
         "qty_ordered": 2, "row_total": 20, "price": 10, "discount_amount": 0},
        {"item_id": 3, "parent_item_id": 1, "sku": "PART-B", "product_type": "simple",
         "qty_ordered": 1, "row_total": 54, "price": 54, "discount_amount": 1},
    ]  # fmt: skip
    assert lines_of(mapped(payload)) == [
        ("PART-A", 2, Decimal("10.00")),
        ("PART-B", 1, Decimal("53.00")),
    ]
    fixed = magento_payloads.magento_order()
    fixed["items"] = [
        {"item_id": 1, "sku": "KIT-FIX", "product_type": "bundle", "qty_ordered": 1,
         "row_total": 73, "price": 73},
        {"item_id": 2, "parent_item_id": 1, "sku": "PART-A", "product_type": "simple",
         "qty_ordered": 2, "row_total": 0, "price": 0},
    ]  # fmt: skip
    assert lines_of(mapped(fixed)) == [("KIT-FIX", 1, Decimal("73.00"))]


def test_quantities_are_decimals_that_must_be_whole():
    payload = magento_payloads.magento_order()
    payload["items"][0]["qty_ordered"] = "3.0000"
    assert lines_of(mapped(payload))[0][:2] == ("MB-01", 1)
    payload["items"][0]["qty_ordered"] = 1.5
    with pytest.raises(ChannelPayloadError, match=r"^items\.0\.qty_ordered: must be a whole"):
        magento.parse(roundtrip(payload), {})


def test_states():
    cancelled = magento.parse(magento_payloads.magento_order(state="canceled"), {})
    assert cancelled == CancelOrder("41", "cancelled in Magento")
    for state in ("complete", "closed", "holded", "pending_payment", "payment_review"):
        result = magento.parse(magento_payloads.magento_order(state=state), {})
        assert isinstance(result, Ignored) and result.external_id == "41", state


def test_express_and_pickup_methods():
    payload = magento_payloads.magento_order()
    payload["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] = "ups_1DA"
    assert mapped(payload).shipping_method == "express"
    payload["extension_attributes"]["shipping_assignments"][0]["shipping"]["method"] = (
        "instore_pickup"
    )
    assert mapped(payload).shipping_method == "pickup"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.pop("entity_id"), "entity_id"),
        (lambda p: p.pop("order_currency_code"), "order_currency_code"),
        (lambda p: p["items"][0].pop("sku"), "items.0.sku"),
        (lambda p: p["items"][0].update(row_total="ten"), "items.0.row_total"),
        (lambda p: p["items"][0].update(row_total=10.005), "items.0.row_total"),
        (lambda p: p.update(extension_attributes={}), "extension_attributes.shipping_assignments"),
        (
            lambda p: p["extension_attributes"]["shipping_assignments"][0]["shipping"][
                "address"
            ].update(street=[]),
            "extension_attributes.shipping_assignments.0.shipping.address.street",
        ),
        (
            lambda p: p["extension_attributes"]["shipping_assignments"][0]["shipping"][
                "address"
            ].update(country_id="Germany"),
            "extension_attributes.shipping_assignments.0.shipping.address.country_id",
        ),
        (lambda p: p.update(customer_email="not-an-email"), "customer_email"),
        (lambda p: p.update(items=[]), "items"),
    ],
)
def test_bad_payloads_are_refused_naming_the_field(mutate: Any, field: str):
    payload = magento_payloads.magento_order()
    mutate(payload)
    with pytest.raises(ChannelPayloadError) as refused:
        magento.parse(roundtrip(payload), {})
    assert refused.value.field == field


def test_magento_is_registered_and_unsigned():
    assert ADAPTERS["magento"] is magento.ADAPTER
    assert not magento.ADAPTER.signed
