"""The OTTO client's pure choices: which position items a parcel or a cancellation names, and
what counts as already done when a push is repeated."""

from __future__ import annotations

from decimal import Decimal

import pytest

from services.channel_connector.domain import Quantity, UnmatchedShipment
from services.channel_connector.rules.otto import (
    PositionItem,
    dumps,
    loads,
    next_link,
    otto_carrier,
    otto_time,
    parse_mapping,
    plan_cancellation,
    plan_shipment,
    position_items,
)


def item(item_id: str, sku: str, status: str = "PROCESSABLE", tracking: str | None = None):
    return PositionItem(item_id, sku, status, tracking)


def q(*pairs: tuple[str, int]) -> list[Quantity]:
    return [Quantity(sku, n) for sku, n in pairs]


def test_a_parcel_takes_the_processable_units_of_its_skus_in_order():
    items = [item("m1", "MUG"), item("t1", "TEE"), item("m2", "MUG"), item("m3", "MUG")]
    plan = plan_shipment(items, q(("MUG", 2), ("TEE", 1)), (), "T-1")
    assert plan.send == ("m1", "t1", "m2")  # in the order's order
    assert (plan.already_sent, plan.under_tracking_number) == (0, False)


def test_units_sent_under_the_parcel_s_tracking_number_are_done():
    items = [item("m1", "MUG", "SENT", "T-1"), item("m2", "MUG"), item("m3", "MUG")]
    repeat = plan_shipment(items, q(("MUG", 1)), (), "T-1")
    assert repeat.send == () and repeat.already_sent == 1
    grown = plan_shipment(items, q(("MUG", 2)), (), "T-1")
    assert grown.send == ("m2",) and grown.under_tracking_number is True


def test_without_tracking_info_sent_units_beyond_the_earlier_parcels_are_done():
    items = [item("m1", "MUG", "SENT"), item("m2", "MUG", "SENT"), item("m3", "MUG")]
    # Parcel 1 (2 mugs) repeated after a crash: OTTO has 2 sent, no earlier parcel: done.
    assert plan_shipment(items, q(("MUG", 2)), (), "T-1").send == ()
    # Parcel 2 (1 mug) after parcel 1 (2 mugs) was recorded: the third mug is still to send.
    assert plan_shipment(items, q(("MUG", 1)), q(("MUG", 2)), "T-2").send == ("m3",)


def test_a_parcel_larger_than_what_is_open_is_refused():
    items = [item("m1", "MUG"), item("m2", "MUG", "CANCELLED_BY_MARKETPLACE")]
    with pytest.raises(UnmatchedShipment) as refused:
        plan_shipment(items, q(("MUG", 2)), (), "T-1")
    assert (refused.value.sku, refused.value.missing) == ("MUG", 1)


def test_a_cancellation_names_processable_units_before_counting_cancelled_ones():
    # A mug the marketplace cancelled before the OMS took the order is not the OMS's mug.
    items = [item("m1", "MUG", "CANCELLED_BY_MARKETPLACE"), item("m2", "MUG")]
    plan = plan_cancellation(items, q(("MUG", 1)))
    assert plan.cancel == ("m2",) and plan.not_cancellable == ()


def test_a_repeated_cancellation_finds_everything_cancelled():
    items = [item("m1", "MUG", "CANCELLED_BY_PARTNER"), item("m2", "MUG", "CANCELLED_BY_PARTNER")]
    plan = plan_cancellation(items, q(("MUG", 2)))
    assert (plan.cancel, plan.already_cancelled, plan.not_cancellable) == ((), 2, ())


def test_sent_units_cannot_be_cancelled():
    items = [item("m1", "MUG", "SENT"), item("m2", "MUG")]
    plan = plan_cancellation(items, q(("MUG", 2)))
    assert plan.cancel == ("m2",)
    assert plan.not_cancellable == (Quantity("MUG", 1),)


def test_position_items_are_read_naming_a_missing_field():
    order = {
        "positionItems": [
            {
                "positionItemId": "p1",
                "fulfillmentStatus": "SENT",
                "product": {"sku": "MUG"},
                "trackingInfo": {"carrier": "DHL", "trackingNumber": "T-1"},
            }
        ]
    }
    assert position_items(order) == [PositionItem("p1", "MUG", "SENT", "T-1")]
    del order["positionItems"][0]["product"]
    with pytest.raises(ValueError, match=r"positionItems\.0\.product\.sku"):
        position_items(order)


def test_carriers_map_to_otto_s_codes():
    mapping = parse_mapping("dhl-paket=DHL, Hermes Germany = HERMES", "carriers")
    assert otto_carrier("DHL-Paket", mapping) == "DHL"
    assert otto_carrier("hermes germany", mapping) == "HERMES"
    assert otto_carrier("dhl-express", mapping) == "DHL_EXPRESS"
    assert otto_carrier("ups", {}) == "UPS"
    with pytest.raises(ValueError, match=r"options\.carriers"):
        parse_mapping("dhl", "carriers")


def test_the_next_link_is_read_relative_or_absolute():
    relative = {
        "links": [
            {"rel": "self", "href": "/x"},
            {"rel": "next", "href": "/v4/orders?nextcursor=abc"},
        ]
    }
    assert next_link(relative) == ("/v4/orders", {"nextcursor": "abc"})
    absolute = {
        "links": [{"rel": "next", "href": "https://api.otto.market/v4/orders?nextcursor=x%3D"}]
    }
    assert next_link(absolute) == ("/v4/orders", {"nextcursor": "x="})
    assert next_link({"links": []}) is None and next_link({}) is None


def test_orders_are_handed_on_with_their_amounts_exact():
    raw = '{"a":{"amount":19.90,"currency":"EUR"},"n":[1,2.5e1,null,true],"s":"Straße"}'
    parsed = loads(raw)
    assert parsed["a"]["amount"] == Decimal("19.90")
    text = dumps(parsed)
    assert text == '{"a":{"amount":19.90,"currency":"EUR"},"n":[1,25,null,true],"s":"Straße"}'
    assert loads(text) == parsed


def test_times_are_sent_in_utc_with_milliseconds():
    from datetime import datetime, timedelta, timezone

    berlin = datetime(2026, 12, 1, 11, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))
    assert otto_time(berlin) == "2026-12-01T10:00:00.123Z"
