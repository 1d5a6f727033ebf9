"""Customer e-mails rendered from the templates: every kind says what the customer needs."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from services.order_intake.notifications.rendering import KINDS, describe_reason, render
from shared.contracts.common import Customer

ADA = Customer(email="ada@example.com", name="Ada Lovelace")
ORDER = {
    "order_id": "ord_1",
    "currency": "EUR",
    "subtotal": Decimal("45.0000"),
    "shipping": Decimal("4.9500"),
    "tax": Decimal("9.4900"),
    "total": Decimal("59.4400"),
    "shipping_address": {
        "line1": "Invalidenstraße 116",
        "line2": None,
        "city": "Berlin",
        "region": "BE",
        "postal_code": "10115",
        "country": "DE",
    },
    "lines": [
        {"sku": "MUG-1", "quantity": 2, "unit_price": Decimal("12.5"), "line_total": Decimal("25")},
        {
            "sku": "TSHIRT-M",
            "quantity": 1,
            "unit_price": Decimal("20"),
            "line_total": Decimal("20"),
        },
    ],
    "saga": {
        "fulfilments": {
            "ful_1": {"lines": [{"sku": "MUG-1", "quantity": 2}], "location": "berlin"},
        }
    },
    "created_at": datetime(2024, 7, 10, tzinfo=UTC),
}


def test_confirmation_lists_the_lines_totals_and_address():
    email = render("confirmed", "ord_1", ADA, {"total": "59.44", "currency": "EUR"}, ORDER)
    assert email.subject == "Your order ord_1 is confirmed"
    assert email.body.startswith("Hello Ada Lovelace,")
    assert "2 x MUG-1 at 12.50 EUR = 25.00 EUR" in email.body
    assert "1 x TSHIRT-M at 20.00 EUR = 20.00 EUR" in email.body
    assert "Total:    59.44 EUR" in email.body
    assert "10115 Berlin" in email.body


def test_rejection_says_the_reason_and_which_skus():
    data = {
        "reason": "unknown_sku: NOPE-1",
        "short_lines": [{"sku": "NOPE-1", "line_id": "l1", "requested": 1, "available": 0}],
    }
    email = render("rejected", "ord_1", ADA, data, ORDER)
    assert email.subject == "We could not accept your order ord_1"
    assert "Reason: we do not sell NOPE-1 (unknown_sku: NOPE-1)" in email.body
    assert "- NOPE-1: not available" in email.body


def test_a_rejected_kit_names_the_item_it_is_short_of():
    data = {
        "reason": "insufficient_stock: GIFT",
        "short_lines": [
            {"sku": "GIFT", "line_id": "l1", "requested": 3, "available": 2, "component": "MUG"},
            {"sku": "GIFT", "line_id": "l1", "requested": 3, "available": 0, "component": "SPOON"},
        ],
    }
    email = render("rejected", "ord_1", ADA, data, ORDER)
    assert "- GIFT: you ordered 3, we have 2 (MUG is short)" in email.body
    assert "- GIFT: not available (SPOON is short)" in email.body


def test_delay_and_cancellation_say_why():
    delayed = render("delayed", "ord_1", ADA, {"stage": "delivery"}, ORDER)
    assert "Reason: delivery is taking longer than expected" in delayed.body
    cancelled = render("cancelled", "ord_1", ADA, {"reason": "payment declined: card_declined"})
    assert "Reason: your payment was declined (card_declined)" in cancelled.body


def test_shipping_notice_has_carrier_tracking_and_parcel():
    data = {"fulfilment_id": "ful_1", "carrier": "dhl", "tracking_number": "JJD0001"}
    email = render("shipped", "ord_1", ADA, data, ORDER)
    assert email.subject == "Your order ord_1 has shipped"
    assert "Carrier:         dhl" in email.body
    assert "Tracking number: JJD0001" in email.body
    assert "2 x MUG-1" in email.body


def test_a_parcel_notice_has_its_tracking_link_and_only_its_lines():
    data = {
        "fulfilment_id": "ful_1",
        "shipment_id": "par_1",
        "carrier": "dhl",
        "tracking_number": "JJD0002",
        "tracking_url": "https://track.example/JJD0002",
        "lines": [{"sku": "MUG-1", "quantity": 1}],
        "more_to_follow": True,
    }
    email = render("shipped", "ord_1", ADA, data, ORDER)
    assert "Tracking number: JJD0002\nTrack it:        https://track.example/JJD0002" in email.body
    assert "In this parcel:\n  1 x MUG-1" in email.body
    assert "2 x MUG-1" not in email.body, "the fulfilment's lines are not this parcel's"
    assert "follows in another parcel" in email.body
    without_link = render("shipped", "ord_1", ADA, {**data, "tracking_url": None}, ORDER)
    assert "Track it" not in without_link.body and "$" not in without_link.body


def test_delivery_notice_has_a_follow_up():
    email = render("delivered", "ord_1", ADA, {"fulfilment_id": "ful_1", "follow_up": True})
    assert "How did we do?" in email.body


@pytest.mark.parametrize("kind", [*KINDS, "something_new"])
def test_every_kind_renders_without_an_order_and_without_a_name(kind: str):
    email = render(kind, "ord_9", Customer(email="x@example.com"), {})
    assert "ord_9" in email.subject
    assert email.body.startswith("Hello,")
    assert "$" not in email.subject + email.body


def test_reasons_in_plain_words():
    assert describe_reason(None) == "no reason was given"
    assert describe_reason("insufficient_stock: A, B").startswith(
        "we do not have enough stock of A, B"
    )
    assert describe_reason("fulfilment failed: lost") == "fulfilment failed: lost"


def test_a_cancel_that_came_too_late_is_explained():
    shipped = render(
        "shipped",
        "ord_1",
        ADA,
        {
            "fulfilment_id": "ful_1",
            "carrier": "dhl",
            "tracking_number": "T1",
            "cancel_too_late": True,
        },
        ORDER,
    )
    assert "cancellation came too late" in shipped.body
    partly = render("cancelled", "ord_1", ADA, {"reason": "customer", "partial": True}, ORDER)
    assert "only the part not yet shipped is cancelled" in partly.body, "notices of before"
    rest = render(
        "rest_cancelled",
        "ord_1",
        ADA,
        {"reason": "customer", "lines": [{"sku": "MUG-1", "quantity": 1}], "too_late": True},
        ORDER,
    )
    assert "had left before\nthe cancellation reached the warehouse." in rest.body
    plain = render("shipped", "ord_1", ADA, {"fulfilment_id": "ful_1"}, ORDER)
    assert "too late" not in plain.body and "$note" not in plain.body


def test_the_rest_of_a_partly_shipped_order_cancelled_names_its_units_and_what_is_not_charged():
    data = {
        "reason": "requested by customer",
        "lines": [{"sku": "MUG-1", "quantity": 1}, {"sku": "TSHIRT-M", "quantity": 1}],
        "amount": "33.02",
        "currency": "EUR",
        "cancelled_fulfilments": [],
        "partly_cancelled_fulfilments": ["ful_1"],
        "too_late": False,
    }
    email = render("rest_cancelled", "ord_1", ADA, data, ORDER)
    assert email.subject == "The rest of your order ord_1 is cancelled"
    assert "what had not is now cancelled:\n  1 x MUG-1\n  1 x TSHIRT-M\n" in email.body
    assert "You are not charged for them: 33.02 EUR less than the order's total." in email.body
    assert "Reason: requested by customer" in email.body
    assert "too late" not in email.body and "reached the warehouse" not in email.body
    on_the_channel = render("rest_cancelled", "ord_1", ADA, {**data, "paid_externally": True})
    assert "share of the order's total, 33.02 EUR, is settled where you paid" in on_the_channel.body
    assert "not charged" not in on_the_channel.body


def test_a_fraud_rejection_is_not_named_to_the_customer():
    assert describe_reason("fraud_rejected") == "we could not accept this order"
    email = render("cancelled", "o-1", Customer(name="Ada"), {"reason": "fraud_rejected"})
    assert "fraud" not in email.body.lower() and "fraud" not in email.subject.lower()


def test_a_backorder_notice_lists_the_waiting_lines_and_the_date():
    email = render(
        "backordered",
        "o-1",
        Customer(name="Ada"),
        {
            "lines": [
                {"sku": "LAMP", "quantity": 2, "kind": "backorder", "expected_on": "2026-12-18"},
                {"sku": "BOOK", "quantity": 1, "kind": "preorder", "expected_on": None},
            ],
            "expected_on": None,
        },
    )
    assert "2 x LAMP (backorder, expected 2026-12-18)" in email.body
    assert "1 x BOOK (pre-order, date not known yet)" in email.body
    assert "We do not know the date yet" in email.body
    assert email.subject == "Your order o-1 is on backorder"
