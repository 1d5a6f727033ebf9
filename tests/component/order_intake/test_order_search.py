"""Finding orders (`GET /v1/orders`): by the customer's e-mail (exact, ignoring case, only for
callers who may see personal data) and by when they were placed, with the filters, the cursor
and the customer's masking together; the e-mail search uses its index."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.order_intake.app import build
from services.order_intake.orders import store
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra

pytestmark = pytest.mark.component


def order_body(email: str, channel: str = "web") -> dict[str, Any]:
    return {
        "channel": channel,
        "customer": {"email": email, "name": "Ada"},
        "shipping_address": {
            "line1": "1 Main St",
            "city": "Berlin",
            "postal_code": "10115",
            "country": "DE",
        },
        "currency": "EUR",
        "lines": [{"sku": "SKU-1", "quantity": 1, "unit_price": "10.00"}],
        "payment": {"method": "card", "token": "tok_visa"},
    }


@pytest.fixture
async def intake(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


async def _place(client: Any, email: str, channel: str = "web") -> str:
    placed = await client.post("/v1/orders", json=order_body(email, channel))
    assert placed.status_code == 202, placed.text
    order_id: str = placed.json()["order_id"]
    return order_id


def ids(answer: Any) -> list[str]:
    assert answer.status_code == 200, answer.text
    return [o["order_id"] for o in answer.json()["orders"]]


async def test_search_by_e_mail_is_exact_ignores_case_and_pages(intake: ComponentHarness):
    async with intake.http() as client:
        first = await _place(client, "Grace.Hopper@Example.com")
        second = await _place(client, "grace.hopper@example.com", channel="app")
        await _place(client, "grace.hopper@example.co")
        await _place(client, "someone.grace.hopper@example.com")

        found = await client.get(
            "/v1/orders", params={"customer_email": "GRACE.HOPPER@example.com"}
        )
        assert ids(found) == [second, first], "exact match ignoring case, newest first"
        assert found.json()["orders"][0]["customer"]["email"] == "grace.hopper@example.com"

        page1 = await client.get(
            "/v1/orders", params={"customer_email": "grace.hopper@example.com", "limit": 1}
        )
        page2 = await client.get(
            "/v1/orders",
            params={
                "customer_email": "grace.hopper@example.com",
                "limit": 1,
                "cursor": page1.json()["next_cursor"],
            },
        )
        assert ids(page1) + ids(page2) == [second, first]
        assert page2.json()["next_cursor"] is None

        with_channel = await client.get(
            "/v1/orders", params={"customer_email": "grace.hopper@example.com", "channel": "web"}
        )
        assert ids(with_channel) == [first]
        nobody = await client.get("/v1/orders", params={"customer_email": "nobody@example.com"})
        assert ids(nobody) == []


async def test_a_caller_without_personal_data_cannot_search_by_e_mail_and_sees_it_masked(
    intake: ComponentHarness,
):
    async with intake.http() as client:
        order_id = await _place(client, "ada@example.com")
    async with intake.http("viewer") as viewer:
        refused = await viewer.get("/v1/orders", params={"customer_email": "ada@example.com"})
        listed = await viewer.get("/v1/orders")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"
    assert "customer_email" in refused.json()["error"]["message"]
    [row] = listed.json()["orders"]
    assert row["order_id"] == order_id
    assert row["customer"] == {"email": "***", "name": "***", "phone": None}
    assert "ada@" not in listed.text


async def test_date_range_on_when_the_order_was_placed(intake: ComponentHarness):
    async with intake.http() as client:
        old = await _place(client, "a@example.com")
        middle = await _place(client, "b@example.com")
        new = await _place(client, "c@example.com")
    base = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)
    for offset, order_id in enumerate((old, middle, new)):
        await intake.pool.execute(
            "UPDATE orders SET created_at = $2 WHERE order_id = $1",
            order_id,
            base + timedelta(days=offset),
        )
    async with intake.http() as client:
        from_middle = await client.get(
            "/v1/orders", params={"created_from": "2025-03-02T12:00:00Z"}
        )
        before_middle = await client.get(
            "/v1/orders", params={"created_to": "2025-03-02T12:00:00Z"}
        )
        # Without a zone: UTC. From inclusive, to exclusive.
        window = await client.get(
            "/v1/orders",
            params={"created_from": "2025-03-02T00:00:00", "created_to": "2025-03-03T12:00:00"},
        )
        paged = await client.get(
            "/v1/orders", params={"created_from": "2025-03-01T00:00:00Z", "limit": 2}
        )
        rest = await client.get(
            "/v1/orders",
            params={
                "created_from": "2025-03-01T00:00:00Z",
                "limit": 2,
                "cursor": paged.json()["next_cursor"],
            },
        )
        backwards = await client.get(
            "/v1/orders",
            params={"created_from": "2025-03-03T00:00:00Z", "created_to": "2025-03-02T00:00:00Z"},
        )
        not_a_date = await client.get("/v1/orders", params={"created_from": "yesterday"})
        out_of_range = await client.get(
            "/v1/orders", params={"created_to": "0001-01-01T00:00:00+05:00"}
        )
    assert ids(from_middle) == [new, middle]
    assert ids(before_middle) == [old]
    assert ids(window) == [middle]
    assert ids(paged) + ids(rest) == [new, middle, old]
    assert backwards.status_code == 422
    assert backwards.json()["error"]["code"] == "invalid_date_range"
    assert "created_to" in backwards.json()["error"]["message"]
    assert not_a_date.status_code == 422
    assert "created_from" in not_a_date.text
    assert out_of_range.status_code == 422 and "created_to" in out_of_range.text


async def test_the_e_mail_search_uses_its_index(intake: ComponentHarness):
    """The statement list_orders runs, planned as if the table were large (no sequential scan
    on offer): it reads the e-mail index, already in the listing's order."""
    sql, args = store.listing_query(
        status=None, channel=None, limit=51, after=None, customer_email="ada@example.com"
    )
    async with intake.pool.acquire() as conn, conn.transaction():
        await conn.execute("SET LOCAL enable_seqscan = off")
        plan = "\n".join(r[0] for r in await conn.fetch(f"EXPLAIN {sql}", *args))
    assert "orders_by_customer_email" in plan, plan
    assert "Sort" not in plan, plan
