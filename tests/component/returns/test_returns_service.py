"""The returns service's HTTP API and saga handlers on a real Postgres (no Kafka)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.returns.app import build
from services.returns.handlers import process_due_deadlines, timings_from
from services.returns.settings import ReturnsSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.inventory import ReturnedItemsRestocked, ReturnedItemsWrittenOff
from shared.contracts.order_intake import (
    OrderLineSummary,
    OrderStatusChanged,
    ReplacementOrderCreated,
)
from shared.contracts.payment import PaymentRefunded, PaymentRefundFailed
from shared.envelope import Envelope
from shared.platform.service import Runtime
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component

D = Decimal


def settings(**overrides: Any) -> ReturnsSettings:
    return ReturnsSettings(
        return_window_days_by_channel={"web": 30, "phone": 0},
        non_returnable_skus=["FINAL-1"],
        damaged_refund_percent=D(50),
        saga_refund_timeout_s=60,
        refund_max_attempts=2,
        refund_retry_backoff_s=0.05,
        **overrides,
    )


@pytest.fixture
async def returns(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(settings())):
        yield harness


def status_event(
    order_id: str,
    status: str,
    *,
    channel: str = "web",
    lines: tuple[tuple[str, int, str], ...] = (("A", 2, "12.50"), ("B", 1, "30.00")),
    total: str = "65.45",
    shipping: str = "0.00",
    at: datetime | None = None,
    **extra: Any,
) -> OrderStatusChanged:
    summaries = tuple(
        OrderLineSummary(line_id=f"l{i}", sku=sku, quantity=q, unit_price=D(p), line_total=D(p) * q)
        for i, (sku, q, p) in enumerate(lines, start=1)
    )
    return OrderStatusChanged(
        order_id=order_id,
        channel=channel,
        status=status,
        currency="EUR",
        total=D(total),
        lines=summaries,
        at=at or datetime.now(UTC),
        subtotal=sum((li.line_total for li in summaries), D(0)),
        discount=D(0),
        shipping=D(shipping),
        tax=D(total) - sum((li.line_total for li in summaries), D(0)) - D(shipping),
        paid_externally=False,
        **extra,
    )


async def delivered(h: ComponentHarness, order_id: str, **kw: Any) -> None:
    await h.deliver(status_event(order_id, "FULFILLING", **kw), correlation_id=order_id)
    await h.deliver(status_event(order_id, "COMPLETED", **kw), correlation_id=order_id)


async def post(h: ComponentHarness, path: str, body: Any = None, **headers: str) -> Any:
    async with h.http() as client:
        return await client.post(path, json=body, headers=headers)


async def get(h: ComponentHarness, path: str, **params: str) -> Any:
    async with h.http() as client:
        response = await client.get(path, params=params)
    assert response.status_code == 200, response.text
    return response.json()


async def request_return(
    h: ComponentHarness, order_id: str, *lines: tuple[str, int], **extra: Any
) -> dict[str, Any]:
    response = await post(
        h,
        "/v1/returns",
        {
            "order_id": order_id,
            "lines": [
                {"sku": sku, "quantity": q, "reason": extra.pop("reason", "no_longer_needed")}
                for sku, q in lines
            ],
            **extra,
        },
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def receive(
    h: ComponentHarness, return_id: str, *lines: tuple[str, int, str], location: str = "berlin"
) -> Any:
    return await post(
        h,
        f"/v1/returns/{return_id}/receive",
        {
            "location": location,
            "lines": [{"sku": sku, "quantity": q, "condition": c} for sku, q, c in lines],
        },
    )


def restocked(return_id: str, *lines: tuple[str, int]) -> ReturnedItemsRestocked:
    return ReturnedItemsRestocked(
        return_id=return_id,
        order_id="o-1",
        location="berlin",
        lines=tuple(SkuQuantity(sku=s, quantity=q) for s, q in lines),
    )


def runtime_of(h: ComponentHarness) -> Runtime:
    """Enough of a runtime for the deadline scheduler (it only opens units of work)."""
    return Runtime(h.spec.settings, h.pool, None, None, h.consumer, h.spec.migrations)


# --- policy refusals -----------------------------------------------------------------------------


async def test_refusals_have_clear_codes(returns: ComponentHarness):
    await delivered(returns, "o-1")
    await returns.deliver(status_event("o-2", "FULFILLING"), correlation_id="o-2")
    await delivered(returns, "o-3", channel="phone")
    await delivered(
        returns, "o-4", lines=(("FINAL-1", 1, "10.00"), ("A", 1, "10.00")), total="23.80"
    )

    async def refusal(order_id: str, *lines: tuple[str, int]) -> tuple[int, str, dict[str, Any]]:
        response = await post(
            returns,
            "/v1/returns",
            {
                "order_id": order_id,
                "lines": [
                    {"sku": s, "quantity": q, "reason": "no_longer_needed"} for s, q in lines
                ],
            },
        )
        error = response.json()["error"]
        return response.status_code, error["code"], error.get("details", {})

    assert (await refusal("o-unknown", ("A", 1)))[:2] == (404, "order_not_found")
    assert (await refusal("o-2", ("A", 1)))[:2] == (409, "not_delivered")
    status, code, details = await refusal("o-3", ("A", 1))
    assert (status, code, details["window_days"]) == (409, "outside_return_window", 0)
    status, code, details = await refusal("o-4", ("FINAL-1", 1))
    assert (status, code, details["skus"]) == (422, "not_returnable", ["FINAL-1"])
    status, code, details = await refusal("o-1", ("A", 3))
    assert (status, code, details["returnable"]) == (422, "quantity_exceeds_delivered", 2)
    assert (await refusal("o-1", ("Z", 1)))[:2] == (422, "sku_not_in_order")
    assert await returns.fetch("SELECT * FROM returns") == []


async def test_only_what_shipped_can_be_returned_when_the_rest_was_cancelled(
    returns: ComponentHarness,
):
    """2 x A and 1 x B ordered; one A left in a parcel, the rest was cancelled."""
    shipped = (SkuQuantity(sku="A", quantity=1),)
    await returns.deliver(status_event("o-1", "FULFILLING", shipped=()), correlation_id="o-1")
    await returns.deliver(status_event("o-1", "SHIPPED", shipped=shipped), correlation_id="o-1")
    # An event without `shipped` (a producer of before parcels) does not forget it.
    await returns.deliver(status_event("o-1", "COMPLETED"), correlation_id="o-1")
    [row] = await returns.fetch("SELECT shipped FROM orders WHERE order_id = 'o-1'")
    assert row["shipped"] == [{"sku": "A", "quantity": 1}]
    for lines, sku, returnable in (((("A", 2),), "A", 1), ((("B", 1),), "B", 0)):
        response = await post(
            returns,
            "/v1/returns",
            {
                "order_id": "o-1",
                "lines": [
                    {"sku": s, "quantity": q, "reason": "no_longer_needed"} for s, q in lines
                ],
            },
        )
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["code"] == "quantity_exceeds_delivered"
        assert (error["details"]["sku"], error["details"]["returnable"]) == (sku, returnable)
    accepted = await request_return(returns, "o-1", ("A", 1))
    assert accepted["status"] in {"APPROVED", "REQUESTED"}


async def test_invalid_requests_name_the_field(returns: ComponentHarness):
    await delivered(returns, "o-1")
    bad = await post(
        returns,
        "/v1/returns",
        {"order_id": "o-1", "lines": [{"sku": "A", "quantity": 0, "reason": "no_longer_needed"}]},
    )
    assert bad.status_code == 422 and "lines.0.quantity" in bad.json()["error"]["message"]
    twice = await post(
        returns,
        "/v1/returns",
        {
            "order_id": "o-1",
            "lines": [
                {"sku": "A", "quantity": 1, "reason": "no_longer_needed"},
                {"sku": "A", "quantity": 1, "reason": "defective"},
            ],
        },
    )
    assert twice.status_code == 422 and "each SKU" in twice.json()["error"]["message"]


# --- the lifecycle -------------------------------------------------------------------------------


async def test_full_return_restocks_then_refunds_the_paid_total_once_and_closes(
    returns: ComponentHarness,
):
    await delivered(returns, "o-1")
    created = await request_return(returns, "o-1", ("A", 2), ("B", 1))
    return_id = created["return_id"]
    assert (created["status"], created["refund"]["estimate"]) == ("APPROVED", "65.45")

    first = await receive(returns, return_id, ("A", 2, "resellable"), ("B", 1, "resellable"))
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "INSPECTED"
    [restock] = await returns.emitted_contracts("RestockReturnedItems")
    assert (restock.location, [(li.sku, li.quantity) for li in restock.lines]) == (
        "berlin",
        [("A", 2), ("B", 1)],
    )
    again = await receive(returns, return_id, ("B", 1, "resellable"), ("A", 2, "resellable"))
    assert (again.status_code, again.json()["duplicate"]) == (200, True)
    other = await receive(returns, return_id, ("A", 2, "damaged"))
    assert (other.status_code, other.json()["error"]["code"]) == (409, "already_received")
    assert len(await returns.emitted("RestockReturnedItems")) == 1

    await returns.deliver(restocked(return_id, ("A", 2), ("B", 1)), correlation_id=return_id)
    await returns.deliver(restocked(return_id, ("A", 2), ("B", 1)), correlation_id=return_id)
    [refund] = await returns.emitted_contracts("RefundPayment")
    assert (refund.order_id, refund.amount, refund.idempotency_key, refund.return_id) == (
        "o-1",
        D("65.45"),
        f"{return_id}:refund",
        return_id,
    )
    paid = PaymentRefunded(
        order_id="o-1",
        amount=D("65.45"),
        currency="EUR",
        refunded_total=D("65.45"),
        return_id=return_id,
    )
    await returns.deliver(paid, correlation_id=return_id)
    view = await get(returns, f"/v1/returns/{return_id}")
    assert view["status"] == "CLOSED"
    assert view["refund"]["last_failure"] is None
    assert (view["refund"]["status"], view["refund"]["refunded"]) == ("refunded", "65.45")
    events = [e["event"] for e in view["timeline"]]
    for step in (
        "requested",
        "approved",
        "received",
        "inspected",
        "restocked",
        "refunded",
        "closed",
    ):
        assert step in events
    statuses = [c.status for c in await returns.emitted_contracts("ReturnStatusChanged")]
    assert statuses == [
        "REQUESTED",
        "APPROVED",
        "RECEIVED",
        "INSPECTED",
        "REFUNDING",
        "REFUNDED",
        "CLOSED",
    ]
    revisions = [c.revision for c in await returns.emitted_contracts("ReturnStatusChanged")]
    assert revisions == list(range(1, 8))
    listed = await get(returns, "/v1/returns", order_id="o-1")
    assert [r["return_id"] for r in listed["returns"]] == [return_id]


async def test_partial_returns_then_a_third_is_refused(returns: ComponentHarness):
    await delivered(returns, "o-1", lines=(("A", 2, "10.00"),), total="28.49", shipping="3.94")
    first = await request_return(returns, "o-1", ("A", 1))
    second = await request_return(returns, "o-1", ("A", 1))
    third = await post(
        returns,
        "/v1/returns",
        {"order_id": "o-1", "lines": [{"sku": "A", "quantity": 1, "reason": "no_longer_needed"}]},
    )
    assert (third.status_code, third.json()["error"]["code"]) == (422, "quantity_exceeds_delivered")
    one = (await receive(returns, first["return_id"], ("A", 1, "resellable"))).json()
    two = (await receive(returns, second["return_id"], ("A", 1, "resellable"))).json()
    # goods 28.49 * 20 / 23.94 = 23.80, shipping 4.69 with the return that completes the order
    assert (one["refund"]["items"], one["refund"]["shipping"]) == ("11.90", "0.00")
    assert (two["refund"]["items"], two["refund"]["shipping"]) == ("11.90", "4.69")


async def test_damaged_items_are_written_off_and_refunded_per_policy(returns: ComponentHarness):
    await delivered(returns, "o-1")
    created = await request_return(returns, "o-1", ("A", 2))
    response = await receive(
        returns, created["return_id"], ("A", 1, "resellable"), ("A", 1, "damaged")
    )
    view = response.json()
    assert {r["condition"]: r["refund"] for r in view["received"]} == {
        "resellable": "14.87",
        "damaged": "7.44",
    }
    [write_off] = await returns.emitted_contracts("WriteOffReturnedItems")
    assert [(li.sku, li.quantity) for li in write_off.lines] == [("A", 1)]
    await returns.deliver(restocked(created["return_id"], ("A", 1)), correlation_id="r")
    assert await returns.emitted("RefundPayment") == [], "waits for the write-off too"
    await returns.deliver(
        ReturnedItemsWrittenOff(
            return_id=created["return_id"],
            order_id="o-1",
            location="berlin",
            lines=(SkuQuantity(sku="A", quantity=1),),
        ),
        correlation_id="r",
    )
    [refund] = await returns.emitted_contracts("RefundPayment")
    assert refund.amount == D("22.31")


async def test_manual_review_then_operator_approves_or_refuses(returns: ComponentHarness):
    await delivered(returns, "o-1")
    held = await request_return(returns, "o-1", ("A", 1), reason="other")
    assert (held["status"], held["review_reason"] is not None) == ("REQUESTED", True)
    early = await receive(returns, held["return_id"], ("A", 1, "resellable"))
    assert early.json()["error"]["code"] == "not_approved"
    approved = await post(returns, f"/v1/returns/{held['return_id']}/approve")
    assert approved.json()["status"] == "APPROVED"
    audit = [e for e in approved.json()["timeline"] if e["event"] == "requested_by"]
    assert [e["detail"] for e in audit] == [{"action": "approve", "subject": "test:admin"}]
    again = await post(returns, f"/v1/returns/{held['return_id']}/approve")
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_awaiting_review")

    other = await request_return(returns, "o-1", ("A", 1), reason="other")
    refused = await post(returns, f"/v1/returns/{other['return_id']}/refuse", {"reason": "no"})
    assert refused.json()["status"] == "REFUSED"
    # a refused return claims nothing: the unit can be returned again
    await request_return(returns, "o-1", ("A", 1))


async def test_refund_failing_is_retried_with_the_same_key_then_waits_for_an_operator(
    returns: ComponentHarness,
):
    await delivered(returns, "o-1")
    created = await request_return(returns, "o-1", ("A", 1))
    return_id = created["return_id"]
    await receive(returns, return_id, ("A", 1, "resellable"))
    await returns.deliver(restocked(return_id, ("A", 1)), correlation_id=return_id)
    failed = PaymentRefundFailed(order_id="o-1", reason="gateway_timeout", return_id=return_id)
    runtime = runtime_of(returns)
    await returns.deliver(failed, correlation_id=return_id)
    await asyncio.sleep(0.1)
    assert await process_due_deadlines(runtime, timings_from(returns.spec.settings)) == 1
    await returns.deliver(failed, correlation_id=return_id)
    view = await get(returns, f"/v1/returns/{return_id}")
    assert (view["status"], view["refund"]["status"]) == ("NEEDS_ATTENTION", "failed")
    refunds = await returns.emitted_contracts("RefundPayment")
    assert [r.idempotency_key for r in refunds] == [f"{return_id}:refund"] * 2
    retried = await post(returns, f"/v1/returns/{return_id}/retry")
    assert retried.json()["status"] == "REFUNDING"
    assert len(await returns.emitted("RefundPayment")) == 3


async def test_exchange_refunds_the_credit_minus_the_replacement(returns: ComponentHarness):
    await delivered(returns, "o-1")
    created = await request_return(
        returns, "o-1", ("B", 1), exchange=[{"sku": "C", "quantity": 1, "unit_price": "20.00"}]
    )
    return_id = created["return_id"]
    assert created["exchange"]["lines"] == [{"sku": "C", "quantity": 1, "unit_price": "20.00"}]
    assert created["status"] == "REQUESTED", "a price proposed by the caller waits for review"
    approved = await post(returns, f"/v1/returns/{return_id}/approve")
    assert approved.json()["status"] == "APPROVED"
    await receive(returns, return_id, ("B", 1, "resellable"))
    await returns.deliver(restocked(return_id, ("B", 1)), correlation_id=return_id)
    [command] = await returns.emitted_contracts("CreateReplacementOrder")
    assert (command.return_id, command.original_order_id) == (return_id, "o-1")
    answer = ReplacementOrderCreated(
        return_id=return_id,
        order_id="o-9",
        original_order_id="o-1",
        status="RESERVING_STOCK",
        currency="EUR",
        total=D("23.80"),
    )
    await returns.deliver(answer, correlation_id=return_id)
    placed = status_event("o-9", "CONFIRMED", lines=(("C", 1, "20.00"),), total="23.80")
    placed = placed.model_copy(update={"linked_return_id": return_id, "original_order_id": "o-1"})
    await returns.deliver(placed, correlation_id="o-9")
    [refund] = await returns.emitted_contracts("RefundPayment")
    assert refund.amount == D("35.70") - D("23.80")
    view = await get(returns, f"/v1/returns/{return_id}")
    assert view["exchange"]["replacement_order_id"] == "o-9"
    assert view["exchange"]["status"] == "placed"


async def test_refunds_of_channel_paid_orders_are_left_to_the_channel(returns: ComponentHarness):
    await returns.deliver(
        status_event("o-m", "COMPLETED", channel="web").model_copy(
            update={"paid_externally": True}
        ),
        correlation_id="o-m",
    )
    created = await request_return(returns, "o-m", ("A", 1))
    await receive(returns, created["return_id"], ("A", 1, "resellable"))
    await returns.deliver(restocked(created["return_id"], ("A", 1)), correlation_id="r")
    assert await returns.emitted("RefundPayment") == []
    [request] = await returns.emitted_contracts("ChannelRefundRequested")
    assert request.amount == D("14.88")
    view = await get(returns, f"/v1/returns/{created['return_id']}")
    assert (view["status"], view["refund"]["status"]) == ("CLOSED", "to_be_executed_by_channel")


async def test_the_delivery_time_is_the_first_delivered_status(returns: ComponentHarness):
    long_ago = datetime.now(UTC) - timedelta(days=40)
    await returns.deliver(status_event("o-1", "DELIVERED", at=long_ago), correlation_id="o-1")
    await returns.deliver(status_event("o-1", "COMPLETED"), correlation_id="o-1")
    [row] = await returns.fetch("SELECT status, delivered_at FROM orders")
    assert (row["status"], row["delivered_at"]) == ("COMPLETED", long_ago)
    late = await post(
        returns,
        "/v1/returns",
        {"order_id": "o-1", "lines": [{"sku": "A", "quantity": 1, "reason": "no_longer_needed"}]},
    )
    assert late.json()["error"]["code"] == "outside_return_window"


async def test_order_events_of_one_batch_are_written_together_in_offset_order(
    returns: ComponentHarness,
):
    long_ago = datetime.now(UTC) - timedelta(days=40)
    events = [
        status_event("o-1", "FULFILLING", at=long_ago - timedelta(hours=1)),
        status_event("o-2", "CONFIRMED"),
        status_event("o-1", "DELIVERED", at=long_ago),
        status_event("o-1", "COMPLETED"),
    ]
    records = [
        FakeRecord(e.TOPIC, Envelope.wrap(e, correlation_id=e.order_id, producer="t").to_bytes())
        for e in events
    ]
    await returns.consumer.handle_records(records)
    rows = await returns.fetch("SELECT order_id, status, delivered_at FROM orders ORDER BY 1")
    assert [tuple(r) for r in rows] == [("o-1", "COMPLETED", long_ago), ("o-2", "CONFIRMED", None)]
    assert [r["n"] for r in await returns.fetch("SELECT count(*) AS n FROM inbox")] == [4]
    # The delivery time is the first delivered status also within one batch.
    late = await post(
        returns,
        "/v1/returns",
        {"order_id": "o-1", "lines": [{"sku": "A", "quantity": 1, "reason": "no_longer_needed"}]},
    )
    assert late.json()["error"]["code"] == "outside_return_window"


async def test_idempotency_key_answers_the_same_return(returns: ComponentHarness):
    await delivered(returns, "o-1")
    body = {"order_id": "o-1", "lines": [{"sku": "A", "quantity": 1, "reason": "no_longer_needed"}]}
    first = await post(returns, "/v1/returns", body, **{"Idempotency-Key": "k1"})
    second = await post(returns, "/v1/returns", body, **{"Idempotency-Key": "k1"})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["return_id"] == second.json()["return_id"]
    other = dict(body, lines=[{"sku": "A", "quantity": 2, "reason": "no_longer_needed"}])
    reused = await post(returns, "/v1/returns", other, **{"Idempotency-Key": "k1"})
    assert (reused.status_code, reused.json()["error"]["code"]) == (409, "idempotency_key_reused")
