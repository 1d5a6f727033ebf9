"""Partner rules: request kinds, ids, the retry schedule, webhook URLs, confirmations."""

from __future__ import annotations

import pytest

from services.fulfilment.partners.model import (
    ConfirmationConflict,
    ConfirmedParcel,
    LinesExceedFulfilment,
    RequestKind,
    dispatch_id_for,
    new_parcels,
    parcel_id_for,
    request_kind_for,
    retry_delay_s,
    webhook_url_problem,
)
from services.fulfilment.warehouse.model import LocationKind


def test_partner_locations_ask_for_their_kind_of_request() -> None:
    assert request_kind_for(LocationKind.THIRD_PARTY_LOGISTICS) is RequestKind.FULFILMENT_REQUEST
    assert request_kind_for(LocationKind.DROPSHIP_SUPPLIER) is RequestKind.PURCHASE_ORDER
    assert request_kind_for(LocationKind.WAREHOUSE) is None
    assert request_kind_for(LocationKind.STORE) is None


def test_ids_are_deterministic_and_distinct() -> None:
    assert dispatch_id_for("f-1") == dispatch_id_for("f-1") != dispatch_id_for("f-2")
    assert parcel_id_for("f-1", "T1") == parcel_id_for("f-1", "T1")
    assert (
        len({parcel_id_for("f-1", "T1"), parcel_id_for("f-1", "T2"), parcel_id_for("f-2", "T1")})
        == 3
    )


def test_the_retry_delay_doubles_up_to_the_maximum() -> None:
    assert [retry_delay_s(n, 30, 300) for n in range(1, 7)] == [30, 60, 120, 240, 300, 300]
    assert retry_delay_s(0, 30, 300) == 30


@pytest.mark.parametrize(
    ("url", "loopback_http", "problem"),
    [
        ("https://3pl.example.com/oms/requests", False, None),
        ("http://3pl.example.com/oms", True, "the URL must be https"),
        ("http://127.0.0.1:8080/hook", True, None),
        ("http://localhost:8080/hook", True, None),
        ("http://[::1]:8080/hook", True, None),
        ("http://127.0.0.1:8080/hook", False, "the URL must be https"),
        ("https://user:pw@3pl.example.com/", False, "the URL must not carry credentials"),
        ("ftp://3pl.example.com/", True, "the URL must be https"),
        ("https:///nohost", False, "the URL names no host"),
        ("not a url", False, "the URL names no host"),
    ],
)
def test_webhook_urls(url: str, loopback_http: bool, problem: str | None) -> None:
    assert webhook_url_problem(url, allow_loopback_http=loopback_http) == problem


def parcel(tracking: str, *lines: tuple[str, int], carrier: str = "dhl") -> ConfirmedParcel:
    return ConfirmedParcel(parcel_id_for("f-1", tracking), carrier, tracking, None, tuple(lines))


ORDERED = [("SKU-A", 3), ("SKU-B", 1)]


def test_new_parcels_may_ship_what_is_unshipped() -> None:
    one, two = parcel("T1", ("SKU-A", 2)), parcel("T2", ("SKU-A", 1), ("SKU-B", 1))
    assert new_parcels(ORDERED, {}, [one, two]) == [one, two]


def test_parcels_recorded_before_are_not_new_and_count_as_shipped() -> None:
    one, two = parcel("T1", ("SKU-A", 2)), parcel("T2", ("SKU-A", 1), ("SKU-B", 1))
    assert new_parcels(ORDERED, {one.parcel_id: one}, [one, two]) == [two]
    assert new_parcels(ORDERED, {one.parcel_id: one, two.parcel_id: two}, [one, two]) == []
    with pytest.raises(LinesExceedFulfilment) as exceeded:
        new_parcels(ORDERED, {one.parcel_id: one}, [parcel("T3", ("SKU-A", 2))])
    assert (exceeded.value.sku, exceeded.value.confirmed, exceeded.value.unshipped) == (
        "SKU-A",
        2,
        1,
    )


def test_more_than_ordered_or_an_unknown_sku_names_the_sku() -> None:
    with pytest.raises(LinesExceedFulfilment) as exceeded:
        new_parcels(ORDERED, {}, [parcel("T1", ("SKU-A", 2)), parcel("T2", ("SKU-A", 2))])
    assert exceeded.value.sku == "SKU-A"
    with pytest.raises(LinesExceedFulfilment) as unknown:
        new_parcels(ORDERED, {}, [parcel("T1", ("SKU-Z", 1))])
    assert (unknown.value.sku, unknown.value.unshipped) == ("SKU-Z", 0)


def test_a_recorded_parcel_confirmed_with_other_contents_conflicts() -> None:
    one = parcel("T1", ("SKU-A", 2))
    with pytest.raises(ConfirmationConflict):
        new_parcels(ORDERED, {one.parcel_id: one}, [parcel("T1", ("SKU-A", 1))])
    with pytest.raises(ConfirmationConflict):
        new_parcels(ORDERED, {one.parcel_id: one}, [parcel("T1", ("SKU-A", 2), carrier="ups")])
