"""The WooCommerce client's pure decisions."""

from __future__ import annotations

from services.channel_connector.domain import Quantity
from services.channel_connector.rules.woocommerce import (
    ProductRef,
    batch_errors,
    covers_order,
    has_tracking_note,
    product_refs,
    refund_made,
    should_complete,
    stock_batches,
    tracking_note,
)

LINES = [
    {"id": 1, "sku": "SOCK", "quantity": 3},
    {"id": 2, "sku": "MUG", "quantity": 1},
    {"id": 3, "sku": "MUG", "quantity": 1},
    {"id": 4, "sku": "", "quantity": 1},  # a line without a SKU (a fee product) is not shipped
]


def test_products_and_variations_by_exact_sku():
    found = [
        {"id": 10, "sku": "MUG", "type": "simple", "parent_id": 0},
        {"id": 11, "sku": "SOCK-3", "type": "variation", "parent_id": 9},
        {"id": 12, "sku": "MUG-XL", "type": "simple", "parent_id": 0},
    ]
    refs = product_refs(found, ["MUG", "SOCK-3"])
    assert refs == {"MUG": ProductRef(10, None), "SOCK-3": ProductRef(11, 9)}
    batches = stock_batches([("MUG", 4), ("SOCK-3", -2), ("GONE", 1)], refs)
    assert batches.products == [{"id": 10, "manage_stock": True, "stock_quantity": 4}]
    assert batches.variations == {9: [{"id": 11, "manage_stock": True, "stock_quantity": 0}]}


def test_batch_errors_are_read_per_entry():
    answer = {"update": [{"id": 1}, {"id": 2, "error": {"code": "x", "message": "Invalid ID."}}]}
    assert batch_errors(answer) == [(2, "x: Invalid ID.")]


def test_tracking_notes_are_recognised_by_their_whole_number():
    note = tracking_note("dhl", "JJD1", None)
    assert has_tracking_note([{"id": 5, "note": note}], "JJD1") == 5
    assert has_tracking_note([{"id": 5, "note": note}], "JJD") is None
    assert has_tracking_note([{"id": 6, "note": tracking_note("ups", "1Z", "https://t/1Z")}], "1Z")


def test_the_order_completes_when_every_unit_shipped_and_it_is_open():
    shipped = [Quantity("SOCK", 3), Quantity("MUG", 1)]
    assert not should_complete("processing", LINES, shipped)
    assert should_complete("processing", LINES, [*shipped, Quantity("MUG", 1)])
    assert not should_complete("completed", LINES, [*shipped, Quantity("MUG", 1)])
    assert not should_complete("cancelled", LINES, [*shipped, Quantity("MUG", 1)])


def test_a_cancellation_covers_the_order_only_with_every_unit():
    assert covers_order(LINES, [Quantity("SOCK", 3), Quantity("MUG", 2)])
    assert not covers_order(LINES, [Quantity("SOCK", 3), Quantity("MUG", 1)])


def test_the_refund_a_push_made_is_found_by_its_key():
    refunds = [{"id": 7, "meta_data": [{"key": "oms_refund_key", "value": "refund-r1"}]}]
    assert refund_made(refunds, "refund-r1") == 7
    assert refund_made(refunds, "refund-r2") is None
