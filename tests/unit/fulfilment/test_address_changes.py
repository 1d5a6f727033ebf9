"""The rule of UpdateShippingAddress: all or nothing; refused once picking started or a
partner has the request; a repeat saves nothing again."""

from __future__ import annotations

from services.fulfilment.domain import (
    PARTNER_NOTIFIED,
    PICKING_STARTED,
    AddressFacts,
    Status,
    plan_address_change,
)

OLD = {"line1": "1 Main St", "city": "Berlin", "postal_code": "10115", "country": "DE"}
NEW = {"line1": "9 Side St", "city": "Hamburg", "postal_code": "20095", "country": "DE"}


def facts(
    fid: str,
    status: Status = Status.CREATED,
    *,
    released: bool = False,
    partner: bool = False,
    ships_to: dict[str, str] = OLD,
) -> AddressFacts:
    return AddressFacts(fid, status, released, partner, ships_to)


def test_every_open_fulfilment_takes_the_new_address():
    plan = plan_address_change([facts("f2"), facts("f1")], NEW)
    assert not plan.refused
    assert plan.to_update == plan.updated == ("f1", "f2")


def test_a_repeat_saves_nothing_again_and_answers_the_same():
    plan = plan_address_change([facts("f1", ships_to=NEW)], NEW)
    assert not plan.refused and plan.to_update == () and plan.updated == ("f1",)


def test_one_fulfilment_on_a_released_pick_list_refuses_the_whole_change():
    plan = plan_address_change([facts("f1"), facts("f2", released=True)], NEW)
    assert plan.refused and plan.code == PICKING_STARTED
    assert plan.blocking == ("f2",) and plan.to_update == ()
    assert plan.reason is not None and "f2" in plan.reason


def test_parcels_that_left_refuse_the_change():
    for status in (Status.PARTIALLY_SHIPPED, Status.SHIPPED, Status.DELIVERED, Status.FAILED):
        assert plan_address_change([facts("f1", status)], NEW).code == PICKING_STARTED


def test_a_partner_with_the_request_refuses_the_change():
    plan = plan_address_change([facts("f1", partner=True)], NEW)
    assert plan.code == PARTNER_NOTIFIED and plan.blocking == ("f1",)


def test_cancelled_fulfilments_are_left_alone():
    plan = plan_address_change([facts("f1", Status.CANCELLED, released=True), facts("f2")], NEW)
    assert not plan.refused and plan.updated == ("f2",)


def test_an_order_without_fulfilments_takes_the_change_with_nothing_updated():
    plan = plan_address_change([], NEW)
    assert not plan.refused and plan.updated == ()
