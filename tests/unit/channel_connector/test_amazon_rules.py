"""Amazon SP-API decisions: which open order items a parcel confirms, its packageReferenceId,
the request bodies, and how errors and rate-limit headers read."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from services.channel_connector.domain import Quantity, UnmatchedShipment
from services.channel_connector.rules import amazon as rules

ITEMS = [
    rules.OrderItem("111", "MUG", ordered=3, shipped=0),
    rules.OrderItem("222", "TEE", ordered=2, shipped=0),
    rules.OrderItem("333", "MUG", ordered=1, shipped=0),
]


def test_a_parcel_fills_the_open_items_of_its_skus_in_order() -> None:
    plan = rules.plan_shipment([Quantity("MUG", 4), Quantity("TEE", 1)], ITEMS)
    assert not plan.already_shipped
    assert plan.items == (("111", 3), ("222", 1), ("333", 1))


def test_units_amazon_counts_as_shipped_are_not_confirmed_again() -> None:
    items = [rules.OrderItem("111", "MUG", 3, 2), rules.OrderItem("333", "MUG", 1, 0)]
    plan = rules.plan_shipment([Quantity("MUG", 2)], items, earlier=[Quantity("MUG", 2)])
    assert plan.items == (("111", 1), ("333", 1))


def test_a_parcel_whose_units_are_all_shipped_is_a_repeat() -> None:
    items = [rules.OrderItem("111", "MUG", 3, 3), rules.OrderItem("222", "TEE", 2, 0)]
    assert rules.plan_shipment([Quantity("MUG", 3)], items).already_shipped


def test_earlier_parcels_amazon_does_not_count_yet_are_taken_off() -> None:
    # Amazon's QuantityShipped lags: the first parcel (2 MUG) is not counted yet.
    plan = rules.plan_shipment([Quantity("MUG", 2)], ITEMS, earlier=[Quantity("MUG", 2)])
    assert plan.items == (("111", 1), ("333", 1))


def test_a_parcel_amazon_already_counts_is_a_repeat() -> None:
    # 2 of 3 mugs confirmed by this very parcel before a crash: Amazon counts 2 shipped, the
    # connector had told it of none.
    items = [rules.OrderItem("111", "MUG", 3, 2)]
    assert rules.plan_shipment([Quantity("MUG", 2)], items).already_shipped
    # A second parcel of 1 after a first of 2 that Amazon counts: not a repeat.
    plan = rules.plan_shipment([Quantity("MUG", 1)], items, earlier=[Quantity("MUG", 2)])
    assert plan.items == (("111", 1),)


def test_a_parcel_that_fits_only_what_earlier_parcels_left_is_assigned_to_that() -> None:
    # Amazon counts 3 of 4 (2 told by an earlier parcel, 1 from elsewhere, e.g. Seller
    # Central): 1 open, the parcel carries 2. Sent under its own packageReferenceId it edits
    # that package if Amazon has it, so it is assigned as the earlier parcels left the order.
    items = [rules.OrderItem("111", "MUG", 4, 3)]
    plan = rules.plan_shipment([Quantity("MUG", 2)], items, earlier=[Quantity("MUG", 2)])
    assert plan.items == (("111", 2),)


def test_a_sku_not_on_the_order_or_too_many_units_do_not_fit() -> None:
    with pytest.raises(UnmatchedShipment) as unknown:
        rules.plan_shipment([Quantity("HAT", 1)], ITEMS)
    assert unknown.value.sku == "HAT"
    with pytest.raises(UnmatchedShipment):
        rules.plan_shipment([Quantity("TEE", 3)], ITEMS)


def test_package_reference_ids_are_positive_numbers_stable_per_parcel() -> None:
    assert rules.package_reference_id("101") == "101"
    assert rules.package_reference_id("007") == "7"
    uuid_like = "3f1c6a52-6a0e-4c53-9b7b-0b5b7c0d2a11"
    first = rules.package_reference_id(uuid_like)
    assert first.isdigit() and int(first) > 0
    assert rules.package_reference_id(uuid_like) == first
    assert rules.package_reference_id(uuid_like + "x") != first
    assert rules.package_reference_id("0").isdigit() and rules.package_reference_id("0") != "0"


def test_the_confirmation_body_names_amazons_carrier_code_or_other() -> None:
    body = rules.confirmation_body(
        marketplace_id="ATVPDKIKX0DER",
        package_reference="101",
        carrier="ups",
        tracking_number="1Z999",
        shipped_at=datetime(2026, 3, 1, 12, 30, 5, tzinfo=timezone(timedelta(hours=2))),
        items=[("111", 3)],
    )
    assert body == {
        "marketplaceId": "ATVPDKIKX0DER",
        "packageDetail": {
            "packageReferenceId": "101",
            "carrierCode": "UPS",
            "trackingNumber": "1Z999",
            "shipDate": "2026-03-01T10:30:05Z",
            "orderItems": [{"orderItemId": "111", "quantity": 3}],
        },
    }
    assert rules.carrier_fields("Local Courier") == {
        "carrierCode": "Other",
        "carrierName": "Local Courier",
    }
    assert rules.carrier_fields("Royal Mail") == {"carrierCode": "Royal Mail"}


def test_the_availability_patch_sets_the_default_channel_quantity() -> None:
    assert rules.availability_patch(-3, "PRODUCT") == {
        "productType": "PRODUCT",
        "patches": [
            {
                "op": "replace",
                "path": "/attributes/fulfillment_availability",
                "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": 0}],
            }
        ],
    }


def test_expired_tokens_are_told_from_other_refusals() -> None:
    def errors(details: str) -> list[rules.ApiErrorItem]:
        return rules.errors_of(
            {
                "errors": [
                    {
                        "code": "Unauthorized",
                        "message": "Access to requested resource is denied.",
                        "details": details,
                    }
                ]
            }
        )

    assert rules.token_refused(errors("The access token you provided has expired."))
    assert rules.token_refused(
        errors("The access token you provided is revoked, malformed or invalid.")
    )
    assert not rules.token_refused(errors(""))  # the app lacks the role: final
    assert rules.errors_of({"payload": {}}) == []


def test_already_fulfilled_answers_are_repeats() -> None:
    assert rules.already_shipped(
        rules.errors_of(
            {
                "errors": [
                    {
                        "code": "InvalidInput",
                        "message": "Failed to create package due to not finding a matching"
                        " package or order already fulfilled.",
                    }
                ]
            }
        )
    )
    assert not rules.already_shipped(
        rules.errors_of({"errors": [{"code": "InvalidInput", "message": "OrderItemId is invalid"}]})
    )


def test_rate_limit_header_and_throttle_wait() -> None:
    assert rules.rate_limit({"x-amzn-RateLimit-Limit": "0.5"}) == 0.5
    assert rules.rate_limit({"x-amzn-ratelimit-limit": "2.0"}) == 2.0
    assert rules.rate_limit({"x-amzn-RateLimit-Limit": "n/a"}) is None
    assert rules.rate_limit({}) is None
    assert rules.throttle_wait(0.5, 0) == 2.0
    assert rules.throttle_wait(0.5, 2) == 8.0
    assert rules.throttle_wait(0.5, 2, retry_after_s=1.0) == 1.0
    assert rules.throttle_wait(0.0167, 0) > 59


def test_times_and_statuses() -> None:
    assert rules.parse_time("2024-07-10T10:59:12Z", "x") == datetime(
        2024, 7, 10, 10, 59, 12, tzinfo=UTC
    )
    with pytest.raises(ValueError, match="LastUpdateDate"):
        rules.parse_time(None, "LastUpdateDate")
    assert not rules.hand_on({"OrderStatus": "Pending"})
    assert rules.hand_on({"OrderStatus": "Canceled"})
    with pytest.raises(ValueError, match=r"OrderItems\[0\].SellerSKU"):
        rules.order_items([{"OrderItemId": "1", "QuantityOrdered": 1}])
