"""The Shopify client's pure decisions: SKU searches, the stock input by API version, refused
rows, fulfillment order lines, refunds against payments, throttle waits, error texts."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from services.channel_connector.domain import ChannelLine, Quantity, assign_to_channel_lines
from services.channel_connector.rules import shopify as rules


def test_gids_from_numeric_ids() -> None:
    assert rules.gid("Order", "6100000000001") == "gid://shopify/Order/6100000000001"
    assert rules.gid("Location", "gid://shopify/Location/7") == "gid://shopify/Location/7"
    with pytest.raises(rules.ShopifyInputError, match="Order"):
        rules.gid("Order", "#1001")


def test_sku_search_quotes_each_sku() -> None:
    assert rules.sku_search(["MUG-1", 'ODD"SKU']) == 'sku:"MUG-1" OR sku:"ODD\\"SKU"'


def test_only_exact_skus_keep_their_inventory_items() -> None:
    nodes = [
        {"id": "v1", "sku": "MUG", "inventoryItem": {"id": "i1"}},
        {"id": "v2", "sku": "MUG-XL", "inventoryItem": {"id": "i2"}},
        {"id": "v3", "sku": "MUG", "inventoryItem": {"id": "i3"}},
    ]
    assert rules.inventory_items_by_sku(nodes, ["MUG", "TEE"]) == {"MUG": ["i1", "i3"]}


def test_the_stock_input_follows_the_api_version() -> None:
    old = rules.set_quantities_input([("i1", 4)], "loc", "2025-01")
    assert old == {
        "name": "available",
        "reason": "correction",
        "ignoreCompareQuantity": True,
        "quantities": [{"inventoryItemId": "i1", "locationId": "loc", "quantity": 4}],
    }
    new = rules.set_quantities_input([("i1", 4)], "loc", "2026-04")
    assert "ignoreCompareQuantity" not in new
    assert new["quantities"][0]["changeFromQuantity"] is None
    assert rules.uses_concurrency_protection("unstable")


def test_refused_rows_are_those_the_user_errors_name() -> None:
    errors = [
        {"field": ["input", "quantities", "2", "inventoryItemId"], "message": "not found"},
        {"field": ["input", "quantities", "0", "locationId"], "message": "no location"},
    ]
    assert rules.refused_quantities(errors, 3) == {
        2: "input.quantities.2.inventoryItemId: not found",
        0: "input.quantities.0.locationId: no location",
    }
    assert rules.refused_quantities([{"field": ["input", "name"], "message": "bad"}], 3) is None
    assert rules.refused_quantities([{"field": None, "message": "bad"}], 3) is None


def fulfillment_order(fo_id: str, status: str, *lines: tuple[str, str, int]) -> dict[str, Any]:
    return {
        "id": fo_id,
        "status": status,
        "lineItems": {
            "nodes": [
                {"id": line_id, "remainingQuantity": left, "lineItem": {"sku": sku}}
                for line_id, sku, left in lines
            ]
        },
    }


def test_open_lines_are_those_of_open_fulfillment_orders_with_units_left() -> None:
    found = rules.open_lines(
        [
            fulfillment_order("fo1", "CLOSED", ("a", "MUG", 0)),
            fulfillment_order("fo2", "IN_PROGRESS", ("b", "MUG", 1), ("c", "TEE", 0)),
            fulfillment_order("fo3", "OPEN", ("d", "MUG", 2), ("e", "TEE", 1)),
            fulfillment_order("fo4", "ON_HOLD", ("f", "CAP", 1)),
        ]
    )
    assert found.lines == (
        ChannelLine("b", "MUG", 1),
        ChannelLine("d", "MUG", 2),
        ChannelLine("e", "TEE", 1),
    )
    assert found.open_units("MUG") == 3 and found.open_units("CAP") == 0
    assert found.held == {"CAP": 1}
    assigned = assign_to_channel_lines([Quantity("MUG", 2), Quantity("TEE", 1)], found.lines)
    assert rules.line_items_by_fulfillment_order(assigned, found.fulfillment_order_of) == [
        {"fulfillmentOrderId": "fo2", "fulfillmentOrderLineItems": [{"id": "b", "quantity": 1}]},
        {
            "fulfillmentOrderId": "fo3",
            "fulfillmentOrderLineItems": [{"id": "d", "quantity": 1}, {"id": "e", "quantity": 1}],
        },
    ]


def test_a_parcel_already_told_is_found_by_its_tracking_number() -> None:
    fulfillments = [
        {"id": "f1", "status": "CANCELLED", "trackingInfo": [{"number": "T1"}]},
        {"id": "f2", "status": "SUCCESS", "trackingInfo": [{"number": "T1"}]},
    ]
    assert rules.fulfillment_with_tracking(fulfillments, "T1") == "f2"
    assert rules.fulfillment_with_tracking(fulfillments, "T9") is None
    assert rules.fulfillment_with_tracking(fulfillments, "") is None


def test_cancel_reasons() -> None:
    assert rules.cancel_reason("customer asked") == "CUSTOMER"
    assert rules.cancel_reason("suspected fraud") == "FRAUD"
    assert rules.cancel_reason("out of stock") == "INVENTORY"
    assert rules.cancel_reason("payment declined") == "DECLINED"
    assert rules.cancel_reason("whatever") == "OTHER"


def transaction(
    tid: str, kind: str, amount: str, *, status: str = "SUCCESS", parent: str | None = None
) -> dict[str, Any]:
    money = {"amount": amount, "currencyCode": "EUR"}
    return {
        "id": tid,
        "kind": kind,
        "status": status,
        "gateway": "shopify_payments" if tid != "gc" else "gift_card",
        "amountSet": {"shopMoney": money, "presentmentMoney": money},
        "parentTransaction": {"id": parent} if parent else None,
    }


def test_a_refund_goes_back_to_what_is_left_of_each_payment() -> None:
    transactions = [
        transaction("auth", "AUTHORIZATION", "50.00"),
        transaction("gc", "SALE", "10.00"),
        transaction("cap", "CAPTURE", "49.44"),
        transaction("r0", "REFUND", "4.00", parent="gc"),
        transaction("fail", "SALE", "99.00", status="FAILURE"),
    ]
    assert rules.refund_transactions(transactions, Decimal("20.00"), "EUR") == [
        {"parentId": "gc", "gateway": "gift_card", "amount": "6.00"},
        {"parentId": "cap", "gateway": "shopify_payments", "amount": "14.00"},
    ]
    with pytest.raises(rules.ShopifyInputError) as too_much:
        rules.refund_transactions(transactions, Decimal("55.45"), "EUR")
    assert too_much.value.field == "amount"
    with pytest.raises(rules.ShopifyInputError) as currency:
        rules.refund_transactions(transactions, Decimal("1"), "USD")
    assert currency.value.field == "currency"


def test_a_refund_already_made_is_found_by_its_marker() -> None:
    refunds = [{"id": "r1", "note": "damaged (OMS return x) [oms:refund-x]"}]
    assert rules.refund_with_marker(refunds, "refund-x") == "r1"
    assert rules.refund_with_marker(refunds, "refund-y") is None


def test_throttle_waits_come_from_the_cost_bucket() -> None:
    extensions = {
        "cost": {
            "requestedQueryCost": 101,
            "throttleStatus": {
                "maximumAvailable": 1000.0,
                "currentlyAvailable": 1.0,
                "restoreRate": 50.0,
            },
        }
    }
    assert rules.throttle_wait_s(extensions) == pytest.approx(2.0)
    assert rules.throttle_wait_s({}) == 1.0
    assert rules.is_throttled([{"message": "Throttled", "extensions": {"code": "THROTTLED"}}])
    assert not rules.is_throttled([{"message": "syntax error"}])


def test_user_errors_name_their_fields() -> None:
    text = rules.user_error_text(
        [
            {"field": ["fulfillment", "lineItemsByFulfillmentOrder", "0"], "message": "closed"},
            {"field": None, "message": "odd", "code": "INVALID"},
        ]
    )
    assert text == "fulfillment.lineItemsByFulfillmentOrder.0: closed; (input): odd (INVALID)"
