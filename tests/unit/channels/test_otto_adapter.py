"""OTTO Market Orders v4 orders become the right canonical order: one position item per unit,
gross prices turned net exactly, the VAT as the order's tax, only PROCESSABLE items fulfilled."""

from __future__ import annotations

import random
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.channels.adapters import ADAPTERS, RESERVED_CHANNELS, otto
from services.order_intake.channels.adapters.base import (
    CancelOrder,
    ChannelPayloadError,
    Ignored,
    NewOrder,
    parse_json,
)
from services.order_intake.domain.order import CanonicalOrder, price
from tests.unit.channels import otto_payloads as payloads

ID = payloads.SALES_ORDER_ID


def parse(payload: dict[str, Any]) -> Any:
    """As order-intake sees it: the raw JSON parsed with exact decimals."""
    return otto.parse(parse_json(payloads.body(payload)), {})


def new_order(payload: dict[str, Any]) -> CanonicalOrder:
    result = parse(payload)
    assert isinstance(result, NewOrder), result
    assert result.external_id == ID or result.external_id == payload["salesOrderId"]
    return result.order


def lines_of(order: CanonicalOrder) -> list[tuple[str, int, Decimal]]:
    return [(line.sku, line.quantity, line.unit_price) for line in order.lines]


def test_an_otto_order_maps_to_net_lines_with_the_vat_as_tax_and_otto_s_total():
    order = new_order(payloads.order())
    assert order.channel == "otto" and order.external_id == ID
    assert order.currency == "EUR"
    assert lines_of(order) == [
        # 2 x 19.99 gross at 19 %: 39.98 / 1.19 = 33.60 net, 16.80 each.
        ("MUG-1", 2, Decimal("16.80")),
        # 3 x 19.99 = 59.97 gross: 50.39 net does not divide by 3: 1 x 16.79 + 2 x 16.80.
        ("TEE-M", 1, Decimal("16.79")),
        ("TEE-M", 2, Decimal("16.80")),
        # 12.99 at 7 %: 12.14 net.
        ("BOOK-1", 1, Decimal("12.14")),
    ]
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("96.13"),
        Decimal("4.16"),  # 4.95 gross at 19 %
        Decimal("17.60"),  # 6.38 + 9.58 + 0.85 + 0.79
        Decimal("117.89"),  # what OTTO charged: 5 x 19.99 + 12.99 + 4.95
    )
    assert order.paid_externally is True and order.payment_token is None
    assert order.payment_method == "otto"


def test_the_delivery_address_is_mapped_from_street_house_number_and_alpha3_country():
    order = new_order(payloads.order())
    address = order.shipping_address
    assert (address.line1, address.line2, address.city, address.postal_code) == (
        "Invalidenstraße 116",
        "3. OG",
        "Berlin",
        "10115",
    )
    assert address.country == "DE"
    assert order.customer.email == "ada@example.com"
    assert order.customer.name == "Ada Lovelace"
    assert order.customer.phone == "+49 30 1234567"
    assert order.billing_address is not None and order.billing_address.line1 == address.line1


def test_the_pseudonymised_invoice_email_is_used_only_without_a_delivery_email():
    payload = payloads.order(deliveryAddress=payloads.address(email=None))
    assert new_order(payload).customer.email == "4c1f0e@otto-pseudonym.example"


def test_the_reduced_gross_price_is_what_the_customer_paid():
    item = payloads.position_item(
        "p1",
        "MUG-1",
        "19.99",
        itemValueDiscount=payloads.money("5.00"),
        itemValueReducedGrossPrice=payloads.money("14.99"),
    )
    order = new_order(payloads.order(items=[item], fees=()))
    assert lines_of(order) == [("MUG-1", 1, Decimal("12.60"))]  # 14.99 / 1.19
    totals = price(order)
    assert (totals.tax, totals.total) == (Decimal("2.39"), Decimal("14.99"))


def test_without_a_reduced_price_the_item_discount_comes_off_the_gross_price():
    item = payloads.position_item("p1", "MUG-1", "19.99", itemValueDiscount=payloads.money("5.00"))
    assert price(new_order(payloads.order(items=[item], fees=()))).total == Decimal("14.99")


def test_only_processable_items_are_fulfilled_and_fees_of_cancelled_items_are_left_out():
    items = [
        payloads.position_item("p1", "MUG-1", "10.00"),
        payloads.position_item("p2", "MUG-1", "10.00", status="CANCELLED_BY_MARKETPLACE"),
        payloads.position_item("p3", "TEE-M", "20.00", status="SENT"),
        payloads.position_item("p4", "VASE", "30.00", status="CANCELLED_BY_PARTNER"),
    ]
    payload = payloads.order(items=items, fees=())
    payload["initialDeliveryFees"] = [
        {
            "name": "DELIVERY_FEE_STANDARD",
            "deliveryFeeAmount": payloads.money("5.95"),
            "vatRate": 19,
            "positionItemIds": ["p1", "p2"],
        },
        {
            "name": "DELIVERY_FEE_FREIGHT",
            "deliveryFeeAmount": payloads.money("39.00"),
            "vatRate": 19,
            "positionItemIds": ["p4"],
        },
    ]
    order = new_order(payload)
    assert lines_of(order) == [("MUG-1", 1, Decimal("8.40"))]  # 10.00 / 1.19
    assert price(order).total == Decimal("15.95")


def test_an_order_whose_items_are_all_cancelled_cancels():
    items = [
        payloads.position_item("p1", "MUG-1", status="CANCELLED_BY_MARKETPLACE"),
        payloads.position_item("p2", "MUG-1", status="CANCELLED_BY_PARTNER"),
    ]
    result = parse(payloads.order(items=items))
    assert isinstance(result, CancelOrder)
    assert result.external_id == ID


def test_an_announced_order_is_ignored_until_it_is_processable():
    items = [payloads.position_item("p1", "MUG-1", status="ANNOUNCED")]
    # OTTO hides the address of announced orders: the adapter must not need it.
    payload = payloads.order(items=items, deliveryAddress=None, invoiceAddress=None)
    result = parse(payload)
    assert isinstance(result, Ignored) and result.external_id == ID
    assert "ANNOUNCED" in result.reason


def test_a_sent_or_returned_order_is_ignored():
    items = [
        payloads.position_item("p1", "MUG-1", status="SENT"),
        payloads.position_item("p2", "MUG-1", status="RETURNED"),
        payloads.position_item("p3", "MUG-1", status="CANCELLED_BY_PARTNER"),
    ]
    result = parse(payloads.order(items=items))
    assert isinstance(result, Ignored) and "no PROCESSABLE" in result.reason


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda o: o["positionItems"][1]["product"].pop("sku"), "positionItems.1.product.sku"),
        (
            lambda o: o["positionItems"][0].update(fulfillmentStatus="SHIPPED"),
            "positionItems.0.fulfillmentStatus",
        ),
        (
            lambda o: o["positionItems"][0]["product"].update(vatRate=Decimal("0.19")),
            "positionItems.0.product.vatRate",
        ),
        (
            lambda o: o["positionItems"][0]["product"].pop("vatRate"),
            "positionItems.0.product.vatRate",
        ),
        (
            lambda o: o["positionItems"][2].update(itemValueGrossPrice=payloads.money("1", "CHF")),
            "positionItems.2.itemValueGrossPrice.currency",
        ),
        (
            lambda o: o["positionItems"][0]["itemValueGrossPrice"].update(amount=Decimal("19.999")),
            "positionItems.0.itemValueGrossPrice.amount",
        ),
        (lambda o: o["deliveryAddress"].update(countryCode="XYZ"), "deliveryAddress.countryCode"),
        (lambda o: o["deliveryAddress"].pop("zipCode"), "deliveryAddress.zipCode"),
        (lambda o: o.pop("salesOrderId"), "salesOrderId"),
        (lambda o: o.update(positionItems=[]), "positionItems"),
        (
            lambda o: o["initialDeliveryFees"][0].pop("vatRate"),
            "initialDeliveryFees.0.vatRate",
        ),
    ],
)
def test_bad_input_is_refused_naming_the_field(change: Any, field: str):
    payload = payloads.order()
    change(payload)
    with pytest.raises(ChannelPayloadError) as refused:
        parse(payload)
    assert refused.value.field == field


def test_alpha2_country_codes_are_taken_as_they_are():
    payload = payloads.order(deliveryAddress=payloads.address(countryCode="AT"))
    assert new_order(payload).shipping_address.country == "AT"


def test_the_oms_total_always_equals_otto_s_gross_total():
    rng = random.Random(17)
    for case in range(300):
        items = []
        gross_total = Decimal(0)
        for index in range(rng.randint(1, 8)):
            sku = f"SKU-{rng.randint(1, 3)}"
            rate = 7 if sku == "SKU-3" else 19
            gross = Decimal(rng.randint(1, 99_999)) / 100
            gross_total += gross
            items.append(
                payloads.position_item(f"p{case}-{index}", sku, f"{gross:.2f}", vat_rate=rate)
            )
        fee = Decimal(rng.randint(0, 2_000)) / 100
        gross_total += fee
        order = new_order(payloads.order(items=items, fees=((f"{fee:.2f}", 19),)))
        totals = price(order)
        assert totals.total == gross_total, (case, lines_of(order))
        assert sum(line.quantity for line in order.lines) == len(items)
        assert all(line.unit_price >= 0 for line in order.lines)


def test_otto_is_a_registered_reserved_channel():
    assert ADAPTERS["otto"] is otto.ADAPTER
    assert "otto" in RESERVED_CHANNELS
    assert otto.ADAPTER.signed is False
