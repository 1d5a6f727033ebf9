"""BigCommerce's composed V2 order (order + products + shipping addresses) becomes the right
canonical order: exact money from four-decimal strings, the tax reconciled with the total,
paid externally by `payment_status`, statuses that cancel or ask nothing."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.channels.adapters import ADAPTERS, RESERVED_CHANNELS, bigcommerce
from services.order_intake.channels.adapters.base import (
    CancelOrder,
    ChannelPayloadError,
    Ignored,
    NewOrder,
    parse_json,
)
from services.order_intake.domain.order import CanonicalOrder, price
from tests.unit.channels.bigcommerce_payloads import Item, bigcommerce_order


def parsed(payload: dict[str, Any]) -> Any:
    """As order-intake reads the connector's document: JSON text parsed with exact decimals."""
    return parse_json(json.dumps(payload).encode())


def new_order(payload: dict[str, Any]) -> CanonicalOrder:
    result = bigcommerce.parse(parsed(payload), {})
    assert isinstance(result, NewOrder), result
    return result.order


def lines_of(order: CanonicalOrder) -> list[tuple[str, int, Decimal]]:
    return [(line.sku, line.quantity, line.unit_price) for line in order.lines]


def test_the_adapter_is_registered_and_its_channel_reserved():
    assert ADAPTERS["bigcommerce"] is bigcommerce.ADAPTER
    assert "bigcommerce" in RESERVED_CHANNELS
    assert bigcommerce.ADAPTER.signed is False  # the connector verified the webhook


def test_a_captured_order_maps_to_the_canonical_order_with_the_total_the_shopper_paid():
    result = bigcommerce.parse(parsed(bigcommerce_order(250)), {})
    assert isinstance(result, NewOrder) and result.external_id == "250"
    order = result.order
    assert (order.channel, order.external_id, order.currency) == ("bigcommerce", "250", "USD")
    assert lines_of(order) == [
        ("BC-MUG", 2, Decimal("12.50")),
        ("BC-TEE", 1, Decimal("15.00")),  # 20.00 less the coupon's 5.00 share
    ]
    assert order.paid_externally is True and order.payment_token is None
    assert order.customer.email == "grace.billing@example.com"
    assert order.customer.name == "Grace Hopper"
    assert order.customer.phone == "+1 703 555 0100"
    ship = order.shipping_address
    assert (ship.line1, ship.line2, ship.city, ship.region, ship.postal_code, ship.country) == (
        "1 Navy Yard Road",
        "Suite 4",
        "Arlington",
        "Virginia",
        "22202",
        "US",
    )
    assert order.billing_address is not None and order.billing_address.line1 == "10 Billing Street"
    assert order.shipping_method == "standard"
    totals = price(order)
    # total_tax 3.7084 and total_inc_tax 48.6584: both to the cent, and they add up.
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("40.00"),
        Decimal("4.95"),
        Decimal("3.71"),
        Decimal("48.66"),
    )


def test_line_totals_that_do_not_divide_keep_the_line_exact():
    payload = bigcommerce_order(
        251, items=(Item("BC-PEN", 3, Decimal("3.3333")),), shipping=Decimal(0)
    )
    order = new_order(payload)
    # total_ex_tax 9.9999 rounds to 10.00: 2 at 3.33 and 1 at 3.34.
    assert lines_of(order) == [("BC-PEN", 2, Decimal("3.33")), ("BC-PEN", 1, Decimal("3.34"))]
    assert price(order).total == Decimal("10.82")  # total_inc_tax 9.9999 * 1.0825 = 10.8249


@pytest.mark.parametrize("payment_status", ["captured", "authorized", "paid", "capture pending"])
def test_payments_bigcommerce_took_or_holds_are_paid_externally(payment_status: str):
    order = new_order(bigcommerce_order(252, payment_status=payment_status))
    assert order.paid_externally is True


@pytest.mark.parametrize("payment_status", ["pending", ""])
def test_unsettled_payments_are_authorised_through_the_payment_service(payment_status: str):
    order = new_order(
        bigcommerce_order(
            253, status_id=7, status="Awaiting Payment", payment_status=payment_status
        )
    )
    assert order.paid_externally is False
    assert (order.payment_method, order.payment_token) == ("bigcommerce", "bigcommerce:253")


@pytest.mark.parametrize("payment_status", ["declined", "void", "refunded", "held for review"])
def test_payments_that_failed_or_went_back_are_nothing_to_fulfil(payment_status: str):
    result = bigcommerce.parse(parsed(bigcommerce_order(254, payment_status=payment_status)), {})
    assert isinstance(result, Ignored) and result.external_id == "254"
    assert payment_status in result.reason


@pytest.mark.parametrize(("status_id", "status"), [(5, "Cancelled"), (6, "Declined")])
def test_cancelled_and_declined_orders_cancel(status_id: int, status: str):
    result = bigcommerce.parse(
        parsed(bigcommerce_order(255, status_id=status_id, status=status)), {}
    )
    assert isinstance(result, CancelOrder) and result.external_id == "255"
    assert status.lower() in result.reason


@pytest.mark.parametrize(
    "status_id", [0, 1, 2, 3, 4, 10, 12, 13, 14]
)  # unfinished, shipped, settled or on hold
def test_other_statuses_ask_nothing(status_id: int):
    result = bigcommerce.parse(parsed(bigcommerce_order(256, status_id=status_id)), {})
    assert isinstance(result, Ignored) and result.external_id == "256"


def test_charges_and_fees_go_to_shipping_and_express_methods_are_express():
    payload = bigcommerce_order(257, shipping=Decimal("10.00"), tax_rate=Decimal(0))
    payload["handling_cost_ex_tax"] = "1.5000"
    payload["fees"] = [{"id": 1, "type": "custom_fee", "cost_ex_tax": "2.0000", "cost_tax": "0"}]
    payload["total_inc_tax"] = "53.5000"  # 40.00 + 10.00 + 1.50 + 2.00
    payload["shipping_addresses"][0]["shipping_method"] = "UPS Next Day Air"
    order = new_order(payload)
    totals = price(order)
    assert (totals.shipping, totals.tax, totals.total) == (
        Decimal("13.50"),
        Decimal("0.00"),
        Decimal("53.50"),
    )
    assert order.shipping_method == "express"


def test_a_total_that_does_not_add_up_is_refused_naming_the_field():
    payload = bigcommerce_order(258)
    payload["products"][1]["applied_discounts"] = []  # the coupon nowhere on the lines
    with pytest.raises(ChannelPayloadError) as error:
        bigcommerce.parse(parsed(payload), {})
    assert error.value.field == "total_inc_tax"


def test_the_transactional_currency_is_the_orders_currency():
    payload = bigcommerce_order(259, currency="EUR")
    payload["currency_code"] = "USD"  # the display currency on the storefront
    assert new_order(payload).currency == "EUR"


@pytest.mark.parametrize(
    ("mutate", "field"),
    [
        (lambda p: p.update(products=[]), "products"),
        (lambda p: p["products"][0].update(sku=""), "products.0.sku"),
        (lambda p: p["products"][0].update(total_ex_tax="abc"), "products.0.total_ex_tax"),
        (lambda p: p["products"][0].update(total_ex_tax="1.00001"), "products.0.total_ex_tax"),
        (lambda p: p.update(shipping_addresses=[]), "shipping_addresses"),
        (lambda p: p["shipping_addresses"][0].update(country_iso2="USA"), "country_iso2"),
        (lambda p: p["billing_address"].update(email="not-an-email"), "billing_address.email"),
        (lambda p: p.update(status_id=None), "status_id"),
        (lambda p: p.pop("total_inc_tax"), "total_inc_tax"),
    ],
)
def test_bad_documents_are_refused_naming_the_field(mutate: Any, field: str):
    payload = bigcommerce_order(260)
    mutate(payload)
    with pytest.raises(ChannelPayloadError) as error:
        bigcommerce.parse(parsed(payload), {})
    assert error.value.field.endswith(field), error.value.field


def test_an_order_to_several_addresses_is_refused():
    payload = bigcommerce_order(261)
    second = dict(payload["shipping_addresses"][0], id=2612, street_1="2 Other Road")
    payload["shipping_addresses"].append(second)
    with pytest.raises(ChannelPayloadError) as error:
        bigcommerce.parse(parsed(payload), {})
    assert error.value.field == "shipping_addresses" and "2 addresses" in error.value.message


def test_the_same_address_listed_twice_is_one_address():
    payload = bigcommerce_order(262)
    payload["shipping_addresses"].append(dict(payload["shipping_addresses"][0], id=2622))
    assert new_order(payload).shipping_address.line1 == "1 Navy Yard Road"
