"""The Magento client's pure decisions."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest

from services.channel_connector.domain import ChannelLine, Quantity, assign_to_channel_lines
from services.channel_connector.rules.magento import (
    carrier_code,
    channel_lines,
    creditmemo_with_key,
    dump_json,
    magento_time,
    more_pages,
    nothing_open,
    parse_magento_time,
    refund_body,
    refund_comment,
    search_criteria,
    shipment_with_track,
)

ITEMS = [
    {"item_id": 1, "sku": "BAG", "qty_ordered": Decimal("3.0000"), "qty_shipped": 1,
     "qty_canceled": 0, "row_total": 30},
    {"item_id": 2, "sku": "TEE-M", "product_type": "configurable", "qty_ordered": 2,
     "row_total": 44},
    {"item_id": 3, "parent_item_id": 2, "sku": "TEE-M", "qty_ordered": 2, "row_total": 0},
    {"item_id": 4, "sku": "KIT", "product_type": "bundle", "qty_ordered": 1, "row_total": 0},
    {"item_id": 5, "parent_item_id": 4, "sku": "PART", "qty_ordered": 2, "row_total": 8,
     "qty_canceled": 1},
    {"item_id": 6, "sku": "EBOOK", "qty_ordered": 1, "row_total": 5, "is_virtual": 1},
]  # fmt: skip


def test_the_lines_are_the_ones_order_intake_maps_with_what_is_open():
    assert channel_lines(ITEMS) == [
        ChannelLine("1", "BAG", 2),
        ChannelLine("2", "TEE-M", 2),  # the configurable parent, not its child
        ChannelLine("5", "PART", 1),  # the priced child of a dynamic bundle
    ]
    lines = channel_lines(ITEMS)
    assert assign_to_channel_lines([Quantity("TEE-M", 2), Quantity("BAG", 1)], lines) == [
        ("1", 1),
        ("2", 2),
    ]
    assert not nothing_open(lines, [Quantity("BAG", 1)])
    assert nothing_open(
        [ChannelLine("1", "BAG", 0), ChannelLine("9", "X", 3)], [Quantity("BAG", 1)]
    )


def test_magento_times_are_utc_to_the_second():
    at = datetime(2026, 12, 1, 13, 0, 5, 900000, tzinfo=timezone(timedelta(hours=1)))
    assert magento_time(at) == "2026-12-01 12:00:05"
    assert parse_magento_time("2026-12-01 12:00:05") == datetime(2026, 12, 1, 12, 0, 5, tzinfo=UTC)
    with pytest.raises(ValueError, match="updated_at"):
        parse_magento_time("yesterday")


def test_search_criteria_and_pages():
    params = search_criteria(
        [("updated_at", "2026-12-01 12:00:05", "gteq")],
        page=2,
        page_size=50,
        sort=[("updated_at", "ASC")],
    )
    assert params == {
        "searchCriteria[filter_groups][0][filters][0][field]": "updated_at",
        "searchCriteria[filter_groups][0][filters][0][value]": "2026-12-01 12:00:05",
        "searchCriteria[filter_groups][0][filters][0][condition_type]": "gteq",
        "searchCriteria[sortOrders][0][field]": "updated_at",
        "searchCriteria[sortOrders][0][direction]": "ASC",
        "searchCriteria[pageSize]": "50",
        "searchCriteria[currentPage]": "2",
    }
    assert more_pages(1, 50, 120, 50) and more_pages(2, 50, 120, 50)
    assert not more_pages(3, 50, 120, 20) and not more_pages(1, 50, 0, 0)


def test_order_json_is_written_back_exactly():
    raw = '{"grand_total": 98.770, "qty": 2.0000, "n": 3, "s": "Straße", "x": null, "b": true}'
    parsed = json.loads(raw, parse_float=Decimal)
    assert dump_json(parsed) == (
        '{"grand_total":98.770,"qty":2.0000,"n":3,"s":"Stra\\u00dfe","x":null,"b":true}'
    )
    assert json.loads(dump_json(parsed), parse_float=Decimal) == parsed


def test_tracks_credit_memos_and_carriers():
    assert shipment_with_track([{"entity_id": 7, "tracks": [{"track_number": "1Z"}]}], "1Z") == 7
    assert shipment_with_track([{"entity_id": 7, "tracks": []}], "1Z") is None
    memo = {"entity_id": 9, "comments": [{"comment": refund_comment("refund-r1", "damaged")}]}
    assert creditmemo_with_key([memo], "refund-r1") == 9
    assert creditmemo_with_key([memo], "refund-r") is None
    assert (carrier_code("UPS"), carrier_code("Hermes")) == ("ups", "custom")


def test_a_refund_is_an_adjustment_with_every_item_at_zero():
    body = refund_body(ITEMS, Decimal("12.30"), "refund-r1", "damaged")
    assert body["items"] == [
        {"order_item_id": n, "qty": 0} for n in (1, 2, 4, 6)
    ]  # never empty: Magento would refund everything
    assert body["arguments"]["adjustment_positive"] == "12.30"
    assert body["arguments"]["shipping_amount"] == "0"
