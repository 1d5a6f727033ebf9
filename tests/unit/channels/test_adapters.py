"""Each channel's realistic payload becomes the right canonical order (pure mapping, no I/O)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.channels.adapters import ADAPTERS, amazon, ebay, shopify, woocommerce
from services.order_intake.channels.adapters.base import (
    CancelOrder,
    ChannelPayloadError,
    Ignored,
    NewOrder,
    parse_json,
)
from services.order_intake.domain.order import CanonicalOrder, price
from tests.unit.channels import payloads


def lines_of(order: CanonicalOrder) -> list[tuple[str, int, Decimal]]:
    return [(line.sku, line.quantity, line.unit_price) for line in order.lines]


def new_order(result: Any) -> CanonicalOrder:
    assert isinstance(result, NewOrder), result
    return result.order


def roundtrip(payload: dict[str, Any]) -> Any:
    """As the intake sees a payload: raw JSON bytes parsed with exact decimals."""
    return parse_json(payloads.body(payload))


# --- Shopify ---------------------------------------------------------------------------------


def test_shopify_paid_order_maps_to_the_canonical_order():
    result = shopify.parse(
        roundtrip(payloads.shopify_order()), {"x-shopify-topic": "orders/create"}
    )
    assert isinstance(result, NewOrder) and result.external_id == "5940139491234"
    order = result.order
    assert order.channel == "shopify" and order.external_id == "5940139491234"
    assert order.currency == "EUR"
    assert lines_of(order) == [
        ("MUG-1", 2, Decimal("12.50")),
        ("TSHIRT-M", 1, Decimal("20.00")),  # 25.00 less the 5.00 allocated to the line
    ]
    assert order.customer.email == "ada@example.com"
    assert order.customer.name == "Ada Lovelace"
    assert order.customer.phone == "+49 30 1234567"
    address = order.shipping_address
    assert (address.line1, address.line2, address.city, address.region) == (
        "Invalidenstraße 116",
        "3. OG",
        "Berlin",
        "BE",
    )
    assert (address.postal_code, address.country) == ("10115", "DE")
    assert order.billing_address == address
    assert order.paid_externally is True and order.payment_token is None
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("45.00"),
        Decimal("4.95"),
        Decimal("9.49"),
        Decimal("59.44"),  # Shopify's total_price
    )


def test_shopify_unpaid_order_is_authorised_through_the_gateway():
    order = new_order(shopify.parse(payloads.shopify_order(financial_status="authorized"), {}))
    assert order.paid_externally is False
    assert (order.payment_method, order.payment_token) == ("shopify", "shopify:5940139491234")


def test_shopify_prices_with_tax_included_become_tax_exclusive_lines():
    payload = payloads.shopify_order()
    payload["taxes_included"] = True
    payload["line_items"][0].update(price="11.90", tax_lines=[{"price": "3.80", "rate": 0.19}])
    payload["line_items"][1].update(
        price="23.80", discount_allocations=[], tax_lines=[{"price": "3.80", "rate": 0.19}]
    )
    payload["shipping_lines"][0].update(price="5.95", discounted_price="5.95")
    payload["shipping_lines"][0]["tax_lines"] = [{"price": "0.95", "rate": 0.19}]
    payload["total_tax"] = "8.55"
    order = new_order(shopify.parse(roundtrip(payload), {}))
    assert lines_of(order) == [("MUG-1", 2, Decimal("10.00")), ("TSHIRT-M", 1, Decimal("20.00"))]
    totals = price(order)
    assert (totals.shipping, totals.tax, totals.total) == (
        Decimal("5.00"),
        Decimal("8.55"),
        Decimal("53.55"),  # 2 x 11.90 + 23.80 + 5.95, what the customer paid
    )


def test_shopify_discount_that_does_not_divide_keeps_the_line_total_exact():
    payload = payloads.shopify_order()
    payload["line_items"][0]["discount_allocations"] = [{"amount": "0.01"}]
    order = new_order(shopify.parse(roundtrip(payload), {}))
    # 2 x 12.50 - 0.01 = 24.99: one at 12.49, one at 12.50
    assert lines_of(order)[:2] == [("MUG-1", 1, Decimal("12.49")), ("MUG-1", 1, Decimal("12.50"))]


def test_shopify_cancelled_topic_is_a_cancellation():
    result = shopify.parse(payloads.shopify_cancelled(), {"x-shopify-topic": "orders/cancelled"})
    assert isinstance(result, CancelOrder)
    assert result.external_id == "5940139491234"
    assert "customer" in result.reason
    # Without a topic header (e.g. a Kafka message), `cancelled_at` says the same.
    assert isinstance(shopify.parse(payloads.shopify_cancelled(), {}), CancelOrder)


def test_shopify_unhandled_topic_is_refused_naming_the_header():
    with pytest.raises(ChannelPayloadError) as refused:
        shopify.parse(payloads.shopify_order(), {"x-shopify-topic": "products/update"})
    assert refused.value.code == "unsupported_topic"
    assert refused.value.field == "headers.x-shopify-topic"


def test_shopify_voided_order_is_ignored():
    result = shopify.parse(payloads.shopify_order(financial_status="voided"), {})
    assert isinstance(result, Ignored) and result.external_id == "5940139491234"


@pytest.mark.parametrize(
    ("path", "field"),
    [
        ("line_items.0.sku", "line_items.0.sku"),
        ("line_items.1.price", "line_items.1.price"),
        ("shipping_address.zip", "shipping_address.zip"),
        ("shipping_address.country_code", "shipping_address.country_code"),
        ("currency", "currency"),
        ("id", "id"),
        ("shipping_address", "shipping_address"),
    ],
)
def test_shopify_missing_fields_are_named(path: str, field: str):
    with pytest.raises(ChannelPayloadError) as refused:
        shopify.parse(payloads.without(payloads.shopify_order(), path), {})
    assert refused.value.field == field
    assert str(refused.value).startswith(f"{field}: ")


def test_shopify_bad_values_are_named():
    payload = payloads.shopify_order()
    payload["line_items"][1]["price"] = "12.505"
    with pytest.raises(ChannelPayloadError, match=r"^line_items\.1\.price: .*decimal places"):
        shopify.parse(roundtrip(payload), {})
    payload = payloads.shopify_order()
    payload["currency"] = "EURO"
    with pytest.raises(ChannelPayloadError, match=r"^currency: "):
        shopify.parse(payload, {})
    payload = payloads.shopify_order()
    payload["email"] = "not an address"
    with pytest.raises(ChannelPayloadError, match=r"^email: "):
        shopify.parse(payload, {})
    payload = payloads.shopify_order()
    payload["line_items"][0]["quantity"] = 1.5
    with pytest.raises(ChannelPayloadError, match=r"^line_items\.0\.quantity: "):
        shopify.parse(roundtrip(payload), {})
    with pytest.raises(ChannelPayloadError, match="must be a JSON object"):
        shopify.parse([1, 2], {})


# --- WooCommerce -----------------------------------------------------------------------------


def test_woocommerce_paid_order_divides_line_totals_exactly():
    result = woocommerce.parse(roundtrip(payloads.woocommerce_order()), {})
    order = new_order(result)
    assert order.channel == "woocommerce" and order.external_id == "727"
    assert order.currency == "EUR"
    assert lines_of(order) == [
        ("SOCK-3", 2, Decimal("3.33")),
        ("SOCK-3", 1, Decimal("3.34")),  # 10.00 for 3 stays 10.00
        ("MUG-1", 2, Decimal("12.50")),
    ]
    assert (order.customer.email, order.customer.name, order.customer.phone) == (
        "grace@example.com",
        "Grace Hopper",
        "+49 30 5550100",
    )
    address = order.shipping_address
    assert (address.line1, address.line2, address.city, address.region) == (
        "Friedrichstraße 43",
        "Hinterhaus",
        "Berlin",
        "BE",
    )
    assert (address.postal_code, address.country) == ("10117", "DE")
    assert order.paid_externally is True
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("35.00"),
        Decimal("4.95"),
        Decimal("7.59"),
        Decimal("47.54"),  # WooCommerce's total
    )


def test_woocommerce_unpaid_order_goes_through_the_gateway_and_cancelled_cancels():
    order = new_order(woocommerce.parse(payloads.woocommerce_order(status="on-hold"), {}))
    assert order.paid_externally is False
    assert order.payment_token == "woocommerce:727"
    cancelled = woocommerce.parse(payloads.woocommerce_order(status="cancelled"), {})
    assert isinstance(cancelled, CancelOrder) and cancelled.external_id == "727"
    deleted = woocommerce.parse({"id": 727}, {"x-wc-webhook-topic": "order.deleted"})
    assert isinstance(deleted, CancelOrder)
    assert isinstance(woocommerce.parse(payloads.woocommerce_order(status="refunded"), {}), Ignored)


def test_woocommerce_ping_is_recognised():
    assert woocommerce.is_ping(b"webhook_id=12", {})
    assert not woocommerce.is_ping(payloads.body(payloads.woocommerce_order()), {})


def test_woocommerce_line_without_sku_is_named():
    payload = payloads.woocommerce_order()
    payload["line_items"][1]["sku"] = ""
    with pytest.raises(ChannelPayloadError) as refused:
        woocommerce.parse(payload, {})
    assert refused.value.field == "line_items.1.sku"


# --- Amazon ----------------------------------------------------------------------------------


def test_amazon_order_item_prices_are_line_totals():
    order = new_order(amazon.parse(roundtrip(payloads.amazon_order()), {}))
    assert order.channel == "amazon" and order.external_id == "113-4567890-1234567"
    assert order.currency == "USD"
    assert lines_of(order) == [
        ("MUG-1", 1, Decimal("9.99")),
        ("MUG-1", 2, Decimal("10.00")),  # 29.99 for 3 units
        ("TSHIRT-M", 2, Decimal("17.50")),  # 40.00 less the 5.00 promotion, for 2
    ]
    assert order.customer.email == "q8w5z3abcd7y2tf@marketplace.amazon.com"
    assert order.customer.name == "Grace Hopper"
    address = order.shipping_address
    assert (address.line1, address.city, address.region, address.postal_code, address.country) == (
        "410 Terry Ave N",
        "Seattle",
        "WA",
        "98109-5210",
        "US",
    )
    assert order.paid_externally is True
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("64.99"),
        Decimal("3.99"),
        Decimal("6.63"),
        Decimal("75.61"),  # Amazon's OrderTotal
    )


def test_amazon_vat_inclusive_marketplace_becomes_tax_exclusive():
    order = new_order(amazon.parse(roundtrip(payloads.amazon_de_order()), {}))
    assert lines_of(order) == [("MUG-1", 2, Decimal("10.00"))]
    assert order.shipping_address.line2 == "Mathematisches Institut"
    assert order.shipping_method == "express"
    totals = price(order)
    assert (totals.shipping, totals.tax, totals.total) == (
        Decimal("5.00"),
        Decimal("4.75"),
        Decimal("29.75"),
    )


def test_amazon_response_wrapper_is_accepted():
    order = new_order(amazon.parse({"payload": payloads.amazon_order()}, {}))
    assert order.external_id == "113-4567890-1234567"


def test_amazon_statuses():
    cancelled = amazon.parse(payloads.amazon_order(status="Canceled"), {})
    assert isinstance(cancelled, CancelOrder) and cancelled.external_id == "113-4567890-1234567"
    assert isinstance(amazon.parse(payloads.amazon_order(status="Pending"), {}), Ignored)
    assert isinstance(amazon.parse(payloads.amazon_order(status="Shipped"), {}), Ignored)
    afn = payloads.amazon_order()
    afn["FulfillmentChannel"] = "AFN"
    assert isinstance(amazon.parse(afn, {}), Ignored)


def test_amazon_amount_in_another_currency_is_named():
    payload = payloads.amazon_order()
    payload["OrderItems"][1]["ItemTax"]["CurrencyCode"] = "EUR"
    with pytest.raises(ChannelPayloadError) as refused:
        amazon.parse(payload, {})
    assert refused.value.field == "OrderItems.1.ItemTax.CurrencyCode"


def test_amazon_item_without_seller_sku_is_named():
    with pytest.raises(ChannelPayloadError) as refused:
        amazon.parse(payloads.without(payloads.amazon_order(), "OrderItems.0.SellerSKU"), {})
    assert refused.value.field == "OrderItems.0.SellerSKU"


# --- eBay ------------------------------------------------------------------------------------


def test_ebay_line_item_cost_is_a_line_total():
    order = new_order(ebay.parse(roundtrip(payloads.ebay_order()), {}))
    assert order.channel == "ebay" and order.external_id == "12-34567-89012"
    assert order.currency == "GBP"
    assert lines_of(order) == [
        ("MUG-1", 1, Decimal("9.99")),
        ("MUG-1", 2, Decimal("10.00")),  # 29.99 for 3
        ("TSHIRT-M", 2, Decimal("13.49")),  # 29.98 less the 3.00 promotion, for 2
    ]
    assert (order.customer.email, order.customer.name, order.customer.phone) == (
        "alan.t@example.co.uk",
        "Alan Turing",
        "+44 1908 640404",
    )
    address = order.shipping_address
    assert (address.line1, address.line2, address.city, address.region) == (
        "2 Bletchley Park",
        "The Mansion",
        "Milton Keynes",
        "Buckinghamshire",
    )
    assert (address.postal_code, address.country) == ("MK3 6EB", "GB")
    assert order.paid_externally is True
    totals = price(order)
    assert (totals.subtotal, totals.shipping, totals.tax, totals.total) == (
        Decimal("56.97"),
        Decimal("4.50"),
        Decimal("0.00"),
        Decimal("61.47"),  # eBay's pricingSummary.total
    )


def test_ebay_statuses():
    assert isinstance(ebay.parse(payloads.ebay_order(cancel_state="CANCELED"), {}), CancelOrder)
    assert isinstance(ebay.parse(payloads.ebay_order(payment_status="PENDING"), {}), Ignored)


def test_ebay_missing_ship_to_is_named():
    payload = payloads.without(
        payloads.ebay_order(),
        "fulfillmentStartInstructions.0.shippingStep.shipTo.contactAddress.city",
    )
    with pytest.raises(ChannelPayloadError) as refused:
        ebay.parse(payload, {})
    assert refused.value.field == (
        "fulfillmentStartInstructions.0.shippingStep.shipTo.contactAddress.city"
    )


def test_every_channel_is_registered_and_only_webhook_channels_are_signed():
    assert set(ADAPTERS) == {
        "shopify",
        "woocommerce",
        "amazon",
        "ebay",
        "otto",
        "bigcommerce",
        "magento",
    }
    assert {name for name, adapter in ADAPTERS.items() if adapter.signed} == {
        "shopify",
        "woocommerce",
    }


def test_values_the_database_could_not_store_are_refused_naming_the_field():
    payload = payloads.shopify_order()
    payload["line_items"][0]["price"] = "1e999999"
    with pytest.raises(ChannelPayloadError, match=r"^line_items\.0\.price: is too large"):
        shopify.parse(roundtrip(payload), {})
    payload = payloads.shopify_order()
    payload["line_items"][0]["sku"] = "MUG\x00"
    with pytest.raises(ChannelPayloadError, match=r"^line_items\.0\.sku: .*NUL"):
        shopify.parse(payload, {})
    lone_surrogate = parse_json(b'{"name": "Ada \\ud800"}')["name"]
    payload = payloads.shopify_order()
    payload["shipping_address"]["city"] = lone_surrogate
    with pytest.raises(ChannelPayloadError, match=r"^shipping_address\.city: .*Unicode"):
        shopify.parse(payload, {})
