"""Order-intake's HTTP API and saga handlers on a real Postgres."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.order_intake.app import build
from services.order_intake.rejected_requests import store
from shared.contracts.common import Allocation, ShortLine
from shared.contracts.inventory import StockReservationFailed, StockReserved
from shared.contracts.payment import PaymentAuthorized
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


def order_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "channel": "web",
        "customer": {"email": "ada@example.com", "name": "Ada"},
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 2, "unit_price": "10.00"}],
        "payment": {"method": "card", "token": "tok_visa"},
    }
    body.update(overrides)
    return body


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def test_accepts_an_order_stores_it_raw_and_asks_inventory(intake: ComponentHarness):
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body())
        assert response.status_code == 202, response.text
        order_id = response.json()["order_id"]
        assert response.json()["status"] == "RESERVING_STOCK"
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["totals"] == {
        "currency": "EUR",
        "subtotal": "20.00",
        "discount": "0.00",
        "shipping": "4.95",
        "tax": "4.74",
        "total": "29.69",
    }
    assert [e["event"] for e in view["timeline"]] == ["order_received", "status_changed"]
    assert view["payment"]["status"] == "pending"
    reserve = await intake.emitted_contracts("ReserveStock")
    assert [(li.sku, li.quantity) for li in reserve[0].lines] == [("SKU-1", 2)]
    raw = await intake.fetch("SELECT raw_request FROM orders WHERE order_id = $1", order_id)
    assert raw[0]["raw_request"]["lines"][0]["unit_price"] == "10.00"
    changed = await intake.emitted_contracts("OrderStatusChanged")
    assert changed[0].status == "RESERVING_STOCK"


async def test_same_idempotency_key_gives_one_order(intake: ComponentHarness):
    async with intake.http() as client:
        headers = {"Idempotency-Key": "abc-123"}
        first = await client.post("/v1/orders", json=order_body(), headers=headers)
        second = await client.post("/v1/orders", json=order_body(), headers=headers)
        other = await client.post("/v1/orders", json=order_body(currency="USD"), headers=headers)
    assert first.status_code == 202 and second.status_code == 200
    assert first.json()["order_id"] == second.json()["order_id"]
    assert second.json()["duplicate"] is True
    assert other.status_code == 409 and other.json()["error"]["code"] == "idempotency_key_reused"
    # Regression (issue 12, defect 10): the refusal reveals nothing of the other order.
    assert first.json()["order_id"] not in other.text
    assert len(await intake.fetch("SELECT order_id FROM orders")) == 1
    assert len(await intake.emitted("ReserveStock")) == 1


async def test_idempotency_keys_are_scoped_to_the_caller(intake: ComponentHarness):
    """Regression (issue 12, defect 10): the same key from another caller is another order."""
    headers = {"Idempotency-Key": "same-key"}
    async with intake.http("customer_service") as client:
        phone = await client.post("/v1/orders", json=order_body(channel="phone"), headers=headers)
    async with intake.http("channel:web") as client:
        web = await client.post("/v1/orders", json=order_body(), headers=headers)
        elsewhere = await client.post("/v1/orders", json=order_body(channel="app"))
    assert web.status_code == phone.status_code == 202
    assert web.json()["order_id"] != phone.json()["order_id"]
    assert elsewhere.status_code == 403, "a channel:web token places web orders only"


async def test_same_channel_external_id_gives_one_order(intake: ComponentHarness):
    async with intake.http() as client:
        first = await client.post("/v1/orders", json=order_body(channel="phone", external_id="P-1"))
        again = await client.post("/v1/orders", json=order_body(channel="phone", external_id="P-1"))
    assert first.json()["order_id"] == again.json()["order_id"]


@pytest.mark.parametrize(
    ("change", "status", "code", "field"),
    [
        (
            {"lines": [{"sku": "A", "quantity": 0, "unit_price": "1.00"}]},
            422,
            "invalid_quantity",
            "lines.0.quantity",
        ),
        (
            {"lines": [{"sku": "A", "quantity": -1, "unit_price": "1.00"}]},
            422,
            "invalid_quantity",
            "lines.0.quantity",
        ),
        (
            {"lines": [{"sku": "A", "quantity": 1.5, "unit_price": "1.00"}]},
            422,
            "validation_failed",
            "lines.0.quantity",
        ),
        (
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "-1.00"}]},
            422,
            "invalid_amount",
            "lines.0.unit_price",
        ),
        (
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": 19.99}]},
            422,
            "invalid_amount",
            "lines.0.unit_price",
        ),
        (
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "1.999"}]},
            422,
            "invalid_amount",
            "",
        ),
        ({"currency": "EURO"}, 422, "invalid_currency", "currency"),
        ({"currency": "XYZ"}, 422, "invalid_currency", "currency"),
        ({"lines": []}, 422, "validation_failed", "lines"),
        ({"shipping_address": None}, 422, "validation_failed", "shipping_address"),
        ({"customer": {"email": "not-an-email"}}, 422, "invalid_email", "customer.email"),
        ({"promo_code": "NOPE"}, 422, "unknown_promo_code", ""),
        ({"surprise": 1}, 422, "validation_failed", "surprise"),
        # Regression (issue 12, defect 8): an integrated channel's key space is its adapter's.
        ({"channel": "shopify", "external_id": "1001"}, 422, "reserved_channel", "channel"),
        ({"channel": "amazon"}, 422, "reserved_channel", "channel"),
        # Regression (issue 12, defect 6): these answered 500 and were not kept.
        (
            {"lines": [{"sku": "A", "quantity": 1, "unit_price": "1e30"}]},
            422,
            "invalid_amount",
            "lines.0.unit_price",
        ),
        (
            {"lines": [{"sku": "A", "quantity": 100000, "unit_price": "999999999"}]},
            422,
            "amount_too_large",
            "lines.0",
        ),
        (
            {"customer": {"email": "ada@example.com", "name": "Ada\u0000"}},
            422,
            "invalid_character",
            "customer.name",
        ),
        (
            {"lines": [{"sku": "A\u0000", "quantity": 1, "unit_price": "1.00"}]},
            422,
            "invalid_character",
            "lines.0.sku",
        ),
    ],
)
async def test_bad_orders_get_a_clear_4xx_and_are_kept(intake, change, status, code, field):
    async with intake.http() as client:
        response = await client.post("/v1/orders", json=order_body(**change))
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code
    assert error["message"]
    if field:
        assert error["message"].startswith(field)
    kept = await intake.fetch("SELECT error_code, raw_body FROM rejected_requests")
    assert [r["error_code"] for r in kept] == [code]
    assert not await intake.fetch("SELECT order_id FROM orders")


async def test_too_many_lines_malformed_json_and_oversized_bodies(intake: ComponentHarness):
    lines = [{"sku": f"S{i}", "quantity": 1, "unit_price": "1.00"} for i in range(101)]
    async with intake.http() as client:
        many = await client.post("/v1/orders", json=order_body(lines=lines))
        broken = await client.post(
            "/v1/orders",
            content=b'{"channel": "web", ',
            headers={"content-type": "application/json"},
        )
        huge = await client.post(
            "/v1/orders", content=b"x" * (300 * 1024), headers={"content-type": "application/json"}
        )
        big = await client.post(
            "/v1/orders", content=b"y" * (200 * 1024), headers={"content-type": "application/json"}
        )
    assert (many.status_code, many.json()["error"]["code"]) == (422, "too_many_lines")
    assert (broken.status_code, broken.json()["error"]["code"]) == (400, "malformed_json")
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "payload_too_large")
    kept = await intake.fetch(
        "SELECT error_code, raw_body, body_size FROM rejected_requests ORDER BY id"
    )
    assert kept[1]["raw_body"] == b'{"channel": "web", '
    # Regression (issue 12, defect 9): a refused body is kept within a cap, its size noted.
    assert big.status_code == 400
    assert kept[3]["raw_body"] == b"y" * (64 * 1024) and kept[3]["body_size"] == 200 * 1024


async def test_refused_requests_are_pruned_by_age_and_count(intake: ComponentHarness):
    """Regression (issue 12, defect 9): rejected_requests grew without bound."""
    async with intake.http() as client:
        for n in range(5):
            await client.post("/v1/orders", content=f"not json {n}".encode())
    await intake.pool.execute(
        "UPDATE rejected_requests SET received_at = now() - interval '40 days'"
        " WHERE id = (SELECT min(id) FROM rejected_requests)"
    )
    async with intake.pool.acquire() as conn:
        older = datetime.now(UTC) - timedelta(days=30)
        by_age = await store.prune_rejected_requests(conn, older, max_rows=100, batch=1000)
        by_count = await store.prune_rejected_requests(conn, older, max_rows=2, batch=1000)
    assert (by_age, by_count) == (1, 2)
    kept = await intake.fetch("SELECT raw_body FROM rejected_requests ORDER BY id")
    assert [r["raw_body"] for r in kept] == [b"not json 3", b"not json 4"], "the newest stay"


async def test_unknown_order_and_listing_with_filters_and_cursor(intake: ComponentHarness):
    async with intake.http() as client:
        missing = await client.get("/v1/orders/ord_nope")
        assert missing.status_code == 404 and missing.json()["error"]["code"] == "order_not_found"
        for channel in ("web", "web", "app"):
            await client.post("/v1/orders", json=order_body(channel=channel))
        page1 = (await client.get("/v1/orders", params={"channel": "web", "limit": 1})).json()
        page2 = (
            await client.get(
                "/v1/orders", params={"channel": "web", "limit": 1, "cursor": page1["next_cursor"]}
            )
        ).json()
        by_status = (await client.get("/v1/orders", params={"status": "RESERVING_STOCK"})).json()
        bad_status = await client.get("/v1/orders", params={"status": "NOPE"})
        bad_cursor = await client.get("/v1/orders", params={"cursor": "###"})
    assert len(page1["orders"]) == 1 and len(page2["orders"]) == 1
    assert page1["orders"][0]["order_id"] != page2["orders"][0]["order_id"]
    assert page2["next_cursor"] is None
    assert len(by_status["orders"]) == 3
    assert bad_status.status_code == 422 and bad_cursor.status_code == 400


async def test_saga_events_drive_the_order_and_cancel_waits_for_the_step(intake: ComponentHarness):
    async with intake.http() as client:
        order_id = (await client.post("/v1/orders", json=order_body())).json()["order_id"]
        cancel = await client.post(f"/v1/orders/{order_id}/cancel", json={"reason": "changed mind"})
        assert cancel.status_code == 202 and cancel.json()["status"] == "RESERVING_STOCK"
        allocation = Allocation(line_id="l1", sku="SKU-1", location="main", quantity=2)
        await intake.deliver(
            StockReserved(order_id=order_id, allocations=(allocation,)), correlation_id=order_id
        )
        view = (await client.get(f"/v1/orders/{order_id}")).json()
    assert view["status"] == "CANCELLING"
    release = await intake.emitted_contracts("ReleaseStock")
    assert [r.order_id for r in release] == [order_id]
    assert not await intake.emitted("AuthorizePayment")


async def test_rejected_order_names_short_lines_and_late_authorization_is_voided(intake):
    async with intake.http() as client:
        order_id = (await client.post("/v1/orders", json=order_body())).json()["order_id"]
        short = ShortLine(line_id="l1", sku="SKU-1", requested=2, available=1)
        await intake.deliver(
            StockReservationFailed(
                order_id=order_id, reason="insufficient_stock", short_lines=(short,)
            ),
            correlation_id=order_id,
        )
        view = (await client.get(f"/v1/orders/{order_id}")).json()
        assert view["status"] == "REJECTED"
        assert "SKU-1" in view["reason"]
        refused = await client.post(f"/v1/orders/{order_id}/cancel")
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "order_closed"
    await intake.deliver(
        PaymentAuthorized(
            order_id=order_id,
            payment_id="p",
            amount=Decimal("1"),
            currency="EUR",
            gateway_reference="g",
        ),
        correlation_id=order_id,
    )
    assert len(await intake.emitted("VoidPayment")) == 1
    notices = await intake.emitted_contracts("CustomerNotification")
    assert [n.kind for n in notices] == ["rejected"]
