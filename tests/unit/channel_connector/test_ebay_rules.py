"""eBay's pure rules: the getOrders filter and pages, open lines after earlier fulfillments, the
fulfillment and stock bodies, per-SKU rejections, and what counts as "done before"."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.channel_connector.domain import (
    ChannelLine,
    Quantity,
    UnmatchedShipment,
    assign_to_channel_lines,
)
from services.channel_connector.rules import ebay as rules
from tests.unit.channels import payloads


def test_the_orders_filter_asks_from_the_cursor_in_utc_with_milliseconds() -> None:
    since = datetime(2024, 7, 10, 12, 35, 12, 511_900, tzinfo=timezone(timedelta(hours=2)))
    assert rules.orders_query(since) == {
        "filter": "lastmodifieddate:[2024-07-10T10:35:12.511Z..]",
        "limit": "200",
        "offset": "0",
    }


def test_a_page_of_orders_keeps_each_order_as_ebay_sent_it_and_follows_next_on_our_host() -> None:
    order = payloads.ebay_order()
    page = rules.read_orders_page(
        {
            "total": 3,
            "orders": [order],
            "next": "https://api.ebay.com/sell/fulfillment/v1/order?filter=x&limit=1&offset=1",
        }
    )
    [polled] = page.orders
    assert polled.external_id == "12-34567-89012"
    assert polled.updated_at == datetime(2024, 7, 10, 10, 35, 12, tzinfo=UTC)
    assert json.loads(polled.payload) == order
    assert page.next_path == "/sell/fulfillment/v1/order?filter=x&limit=1&offset=1"
    assert rules.read_orders_page({"total": 0}).orders == []
    assert rules.read_orders_page({"orders": []}).next_path is None


def test_an_order_without_its_id_or_modification_time_names_the_field() -> None:
    order = payloads.ebay_order()
    del order["lastModifiedDate"]
    with pytest.raises(rules.EbayAnswerError, match=r"orders\[0\].lastModifiedDate"):
        rules.read_orders_page({"orders": [order]})
    with pytest.raises(rules.EbayAnswerError, match="orderId"):
        rules.polled_order({"lastModifiedDate": "2024-07-10T10:35:12.000Z"})


def test_open_lines_are_the_ordered_quantities_less_earlier_fulfillments() -> None:
    order = payloads.ebay_order()  # 3 x MUG-1 (line ...01), 2 x TSHIRT-M (line ...02)
    fulfillments = {
        "fulfillments": [
            {
                "fulfillmentId": "F1",
                "lineItems": [{"lineItemId": "10000000001", "quantity": 2}],
                "shipmentTrackingNumber": "JD014600003828383627",
            }
        ]
    }
    assert rules.open_lines(order, fulfillments) == [
        ChannelLine("10000000001", "MUG-1", 1),
        ChannelLine("10000000002", "TSHIRT-M", 2),
    ]
    # A fulfillment line without a quantity covers the whole line; FULFILLED lines are closed.
    order["lineItems"][1]["lineItemFulfillmentStatus"] = "FULFILLED"
    whole = {
        "fulfillments": [{"fulfillmentId": "F2", "lineItems": [{"lineItemId": "10000000001"}]}]
    }
    assert [line.open_quantity for line in rules.open_lines(order, whole)] == [0, 0]


def test_a_parcel_fills_the_open_lines_and_more_than_is_open_is_refused() -> None:
    order = payloads.ebay_order()
    lines = rules.open_lines(order, {"fulfillments": []})
    assigned = assign_to_channel_lines([Quantity("TSHIRT-M", 1), Quantity("MUG-1", 3)], lines)
    assert assigned == [("10000000001", 3), ("10000000002", 1)]
    body = rules.fulfillment_request(
        assigned,
        shipped_at=datetime(2024, 7, 11, 9, 0, tzinfo=UTC),
        carrier=rules.carrier_code("royal_mail"),
        tracking_number="JD014600003828383627",
    )
    assert body == {
        "lineItems": [
            {"lineItemId": "10000000001", "quantity": 3},
            {"lineItemId": "10000000002", "quantity": 1},
        ],
        "shippedDate": "2024-07-11T09:00:00.000Z",
        "shippingCarrierCode": "RoyalMail",
        "trackingNumber": "JD014600003828383627",
    }
    with pytest.raises(UnmatchedShipment, match="MUG-1"):
        assign_to_channel_lines([Quantity("MUG-1", 4)], lines)


def test_the_parcel_sent_before_is_found_by_its_tracking_number() -> None:
    body = {
        "fulfillments": [
            {"fulfillmentId": "F1", "shipmentTrackingNumber": "JD0146 0000 3828"},
            {"fulfillmentId": "F2"},
        ]
    }
    assert rules.fulfillment_with_tracking(body, "jd014600003828") == "F1"
    assert rules.fulfillment_with_tracking(body, "OTHER") is None
    assert rules.fulfillment_with_tracking({}, "JD0146") is None


def test_carrier_codes_map_the_oms_names_and_the_account_can_override_them() -> None:
    overrides = rules.parse_carrier_codes("dhl = DHLGlobalMail, easy-post=Other")
    assert rules.carrier_code("DHL", overrides) == "DHLGlobalMail"
    assert rules.carrier_code("easy post", overrides) == "Other"
    assert rules.carrier_code("ups") == "UPS"
    assert rules.carrier_code("Acme Couriers") == "Acme Couriers"
    with pytest.raises(ValueError, match="carrier_codes"):
        rules.parse_carrier_codes("dhl")


def test_the_fulfillment_id_is_read_from_the_location() -> None:
    location = "https://api.ebay.com/sell/fulfillment/v1/order/1-2/shipping_fulfillment/9405509"
    assert rules.fulfillment_id_from_location(location) == "9405509"
    assert rules.fulfillment_id_from_location(None) is None


def test_stock_sets_each_skus_ship_to_home_quantity_and_reads_each_skus_outcome() -> None:
    assert rules.stock_request([("MUG-1", 7), ("TSHIRT-M", -2)]) == {
        "requests": [
            {"sku": "MUG-1", "shipToLocationAvailability": {"quantity": 7}},
            {"sku": "TSHIRT-M", "shipToLocationAvailability": {"quantity": 0}},
        ]
    }
    answer = {
        "responses": [
            {"sku": "MUG-1", "statusCode": 200},
            {
                "sku": "NOPE",
                "statusCode": 404,
                "errors": [{"errorId": 25702, "message": "SKU NOPE is not available"}],
            },
            {"sku": "BUSY", "statusCode": 500},
        ]
    }
    rejected = rules.stock_rejections(answer, ["MUG-1", "NOPE", "BUSY", "LOST"])
    assert [(r.sku, r.status, r.retryable) for r in rejected] == [
        ("NOPE", 404, False),
        ("BUSY", 500, True),
        ("LOST", 500, True),
    ]
    assert "25702 SKU NOPE is not available" in rejected[0].message
    with pytest.raises(rules.EbayAnswerError, match="responses"):
        rules.stock_rejections({}, ["MUG-1"])


def test_errors_are_read_from_rest_and_post_order_shapes() -> None:
    rest = {"errors": [{"errorId": 32100, "message": "Invalid order ID"}]}
    post_order = {"errorMessage": {"error": [{"errorId": 1703, "longMessage": "Not found"}]}}
    assert rules.error_text(rest) == "32100 Invalid order ID"
    assert rules.error_text(post_order) == "1703 Not found"
    assert rules.error_text("nonsense") == ""


def test_a_cancellation_made_before_is_recognised() -> None:
    order = payloads.ebay_order()
    assert rules.existing_cancellation(order) is None
    order["cancelStatus"]["cancelRequests"] = [
        {"cancelRequestId": "5001", "cancelInitiator": "BUYER", "cancelRequestState": "REQUESTED"},
        {"cancelRequestId": "5002", "cancelInitiator": "SELLER", "cancelRequestState": "REJECTED"},
    ]
    assert rules.existing_cancellation(order) is None
    order["cancelStatus"]["cancelRequests"].append(
        {"cancelRequestId": "5003", "cancelInitiator": "SELLER", "cancelRequestState": "REQUESTED"}
    )
    assert rules.existing_cancellation(order) == "5003"
    order["cancelStatus"]["cancelState"] = "CANCELED"
    assert rules.existing_cancellation(order) == "cancelled"
    assert rules.already_cancelled_answer(
        {"orderEligibilityResult": {"eligible": False, "failureReason": ["CANCELLATION_EXIST"]}}
    )
    assert not rules.already_cancelled_answer(
        {"orderEligibilityResult": {"eligible": False, "failureReason": ["ITEM_SHIPPED"]}}
    )


def test_the_cancellation_request_names_the_legacy_order_and_the_sellers_reason() -> None:
    order = payloads.ebay_order()
    assert rules.cancellation_request(order) == {
        "legacyOrderId": "110123456789-27123456789",
        "cancelReason": "OUT_OF_STOCK_OR_CANNOT_FULFILL",
        "buyerPaid": True,
        "buyerPaidDate": {"value": "2024-07-10T10:31:00.000Z"},
    }
    assert rules.marketplace_of(order, "EBAY_US") == "EBAY_GB"
    del order["legacyOrderId"]
    with pytest.raises(rules.EbayAnswerError, match="legacyOrderId"):
        rules.cancellation_request(order)


def test_refunds_are_order_level_amounts_with_ebays_reason_and_a_refund_made_before_counts() -> (
    None
):
    assert rules.refund_request(Decimal("9.9"), "GBP", "damaged", "r1", "refund-r1") == {
        "reasonForRefund": "BUYER_RETURN",
        "comment": "OMS refund refund-r1",
        "orderLevelRefundAmount": {"value": "9.90", "currency": "GBP"},
    }
    assert rules.refund_reason("item_not_received", "r1") == "ITEM_NOT_RECEIVED"
    assert rules.refund_reason("goodwill", "") == "OTHER_ADJUSTMENT"
    order = payloads.ebay_order()
    order["paymentSummary"]["refunds"] = [
        {
            "refundId": "R0",
            "refundStatus": "FAILED",
            "amount": {"value": "9.90", "currency": "GBP"},
        },
        {
            "refundId": "R1",
            "refundStatus": "PENDING",
            "amount": {"value": "9.90", "currency": "GBP"},
        },
    ]
    assert rules.existing_refund(order, Decimal("9.90"), "GBP") == "R1"
    assert rules.existing_refund(order, Decimal("9.91"), "GBP") is None
    assert rules.existing_refund(order, Decimal("9.90"), "EUR") is None
