"""The console's orders pages and attention queue against the services as real processes (and a
local double of Jaeger's query API): find an order placed through the API, read it with its
payments, fulfilment, timeline and trace; a viewer sees no personal data and no actions, and
is refused the action by the console and by order-intake; an operator retries a parked order
and releases a held one, the row polling until each action is over."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta
from html import unescape
from typing import Any

import httpx
import pytest

from tests.support import auth
from tests.support.env import Infra
from tests.support.jaeger_query_double import JaegerQueryDouble, Span
from tests.support.services import eventually
from tests.support.system import CORE_SERVICES, System, order_body, start_system

pytestmark = pytest.mark.integration

SHORT_DEADLINES = {
    "OMS_DEADLINE_POLL_INTERVAL_S": "0.2",
    "OMS_SAGA_PAYMENT_TIMEOUT_S": "2",
    "OMS_SAGA_MAX_ATTEMPTS": "2",
    "OMS_SAGA_COMPENSATION_TIMEOUT_S": "2",
}
EMAIL = "Grace.Hopper@Example.com"
POLL = re.compile(r'hx-get="([^"]+)"\s+hx-trigger="every 1s"')


def browser(system: System, role: str) -> httpx.AsyncClient:
    """The console as a user of `role` (the bearer header stands in for the session)."""
    return httpx.AsyncClient(
        base_url=system.url("console"),
        timeout=20,
        headers={"Authorization": f"Bearer {auth.token(role)}", "Accept": "text/html"},
    )


def main(page: httpx.Response) -> str:
    return page.text.split('<main id="main"', 1)[1]


async def follow_progress(console: httpx.AsyncClient, fragment: str) -> str:
    """Poll the row's progress as htmx does (every second) until the fragment stops polling."""
    deadline = time.monotonic() + 90
    while (found := POLL.search(fragment)) is not None:
        assert time.monotonic() < deadline, f"still polling: {fragment}"
        await asyncio.sleep(1)
        answer = await console.get(unescape(found.group(1)), headers={"HX-Request": "true"})
        assert answer.status_code == 200, answer.text
        fragment = answer.text
    return fragment


async def complete(system: System, order_id: str) -> dict[str, Any]:
    await system.wait_status(order_id, "FULFILLING")
    for fulfilment in await system.fulfilments(order_id):
        shipped = await system.ship(fulfilment["fulfilment_id"], carrier="dhl")
        assert shipped.status_code == 200, shipped.text
        delivered = await system.deliver(fulfilment["fulfilment_id"])
        assert delivered.status_code == 200, delivered.text
    return await system.wait_status(order_id, "COMPLETED")


@pytest.mark.timeout(360)
async def test_console_orders_pages_and_attention_queue(infra: Infra) -> None:
    with JaegerQueryDouble() as jaeger:
        overrides = {
            "order_intake": SHORT_DEADLINES,
            "console": {"OMS_JAEGER_QUERY_URL": jaeger.url},
        }
        system = await start_system(infra, overrides, *CORE_SERVICES, "console")
        try:
            await run(system, jaeger)
        finally:
            await system.close()


async def run(system: System, jaeger: JaegerQueryDouble) -> None:
    intake = system.url("order_intake")
    await system.stock_up("CON-1", ("berlin", 10))
    body = order_body([("CON-1", 2, "12.50")])
    body["customer"] = {"email": EMAIL, "name": "Grace Hopper"}
    done_id = await system.place(body)
    held_id = await system.place(order_body([("CON-1", 1, "10.00")]))
    hold = await system.client.post(
        f"{intake}/v1/ops/orders/{held_id}/hold", json={"reason": "fraud_review"}
    )
    assert hold.status_code == 202, hold.text
    done = await complete(system, done_id)
    await system.wait_status(held_id, "ON_HOLD")

    # Payment down past its deadlines: an order parked in NEEDS_ATTENTION; back again, its
    # late void is applied underneath and the order stays parked for an operator.
    system.kill("payment")
    parked_id = await system.place(order_body([("CON-1", 1, "10.00")]))
    await system.wait_status(parked_id, "NEEDS_ATTENTION", timeout_s=90)
    await system.start("payment")

    async def void_applied() -> bool:
        view = await system.order(parked_id)
        return any(e["event"] == "payment_compensated" for e in view["timeline"])

    await eventually(void_applied, timeout_s=60, message="the parked order's void applied")

    trace_id = done["trace_id"]
    assert trace_id, "stored orders carry their trace id"
    jaeger.add(
        trace_id,
        [
            Span("a1", None, "order-intake", "POST /v1/orders", 1_000_000, 40_000),
            Span("a2", "a1", "order-intake", "INSERT orders", 1_002_000, 3_000),
            Span("b1", "a1", "inventory", "ReserveStock process", 1_010_000, 8_000),
            Span("c1", "b1", "payment", "AuthorizePayment process", 1_020_000, 15_000),
        ],
    )
    today = datetime.now(UTC).date()

    async with browser(system, "operator") as console:
        # --- find the order ------------------------------------------------------------------
        by_email = await console.get("/orders", params={"email": EMAIL.upper()})
        assert by_email.status_code == 200, by_email.text
        assert done_id in by_email.text and EMAIL in by_email.text
        assert held_id not in by_email.text, "only that customer's orders"
        by_id = await console.get("/orders", params={"order_id": done_id})
        assert (by_id.status_code, by_id.headers["location"]) == (303, f"/orders/{done_id}")
        unknown = await console.get("/orders", params={"order_id": "ord_nope"})
        assert unknown.status_code == 404 and "No order" in unknown.text
        filtered = await console.get(
            "/orders",
            params={
                "channel": "web",
                "status": "COMPLETED",
                "date_from": today.isoformat(),
                "date_to": today.isoformat(),
            },
        )
        assert done_id in filtered.text and held_id not in filtered.text
        later = await console.get(
            "/orders", params={"date_from": (today + timedelta(days=1)).isoformat()}
        )
        assert done_id not in later.text and "No orders match." in later.text
        first_page = await console.get("/orders", params={"limit": "1"})
        next_link = re.search(r'href="(/orders\?[^"]*cursor=[^"]+)" rel="next"', first_page.text)
        assert next_link, first_page.text
        second_page = await console.get(unescape(next_link.group(1)))
        assert second_page.status_code == 200
        ids = re.compile(r'<a href="/orders/(ord_[^"]+)">')
        assert ids.findall(first_page.text) != ids.findall(second_page.text)

        # --- the order, with what every service knows of it ----------------------------------
        page = await console.get(f"/orders/{done_id}")
        assert page.status_code == 200, page.text
        html = main(page)
        [payment] = await system.payments(done_id)
        [fulfilment] = await system.fulfilments(done_id)
        assert "CON-1" in html and f"{done['totals']['total']} EUR" in html
        assert payment["payment_id"] in html and "capture" in html
        assert fulfilment["tracking_number"] in html
        for entry in done["timeline"]:
            assert f'<th scope="row">{entry["event"]}</th>' in html
        assert "Grace Hopper" in html and EMAIL in html
        assert html.count('class="wf-bar') == 4, "one bar per span"
        assert 'aria-label="AuthorizePayment process: from 20.0 ms for 15.0 ms"' in html
        assert "order-intake, inventory, payment" in html
        assert jaeger.requests == [trace_id]
        untraced = main(await console.get(f"/orders/{held_id}"))
        assert "Jaeger does not have it" in untraced and "wf-bar" not in untraced

    # --- a viewer: no personal data, no actions; refused by the console and by the service --
    async with browser(system, "viewer") as console:
        listed = await console.get("/orders")
        assert done_id in listed.text and "***" in listed.text
        assert "Hopper" not in listed.text and 'name="email"' not in listed.text
        refused_search = await console.get("/orders", params={"email": EMAIL})
        assert refused_search.status_code == 403
        assert "customer_email" in refused_search.text and "personal_data:read" in (
            refused_search.text
        )
        order_page = await console.get(f"/orders/{done_id}")
        assert order_page.status_code == 200 and fulfilment["tracking_number"] in order_page.text
        for secret in ("Hopper", "Grace", EMAIL.lower(), "1 Main St", "10115"):
            assert secret.lower() not in order_page.text.lower(), secret
        queue = await console.get("/attention")
        assert queue.status_code == 200
        assert parked_id in queue.text and held_id in queue.text
        assert "hx-post" not in queue.text and "act-retry" not in queue.text
        refused = await console.post(
            f"/attention/{parked_id}/retry", headers={"HX-Request": "true"}
        )
        assert refused.status_code == 403 and 'role="alert"' in refused.text
    by_service = await system.client.post(
        f"{intake}/v1/ops/orders/{parked_id}/retry", headers=auth.bearer("viewer")
    )
    assert by_service.status_code == 403, "order-intake refuses the viewer's token itself"
    assert (await system.order(parked_id))["status"] == "NEEDS_ATTENTION"

    # --- an operator: the queue with its actions, each row polling until its action is over --
    async with browser(system, "operator") as console:
        queue = main(await console.get("/attention"))
        assert f'hx-post="/attention/{parked_id}/retry"' in queue
        assert f'hx-post="/attention/{parked_id}/compensate"' in queue
        assert f'hx-post="/attention/{held_id}/release"' in queue
        assert f'hx-post="/attention/{held_id}/retry"' not in queue
        assert done_id not in queue

        retried = await console.post(
            f"/attention/{parked_id}/retry", headers={"HX-Request": "true"}
        )
        assert retried.status_code == 200, retried.text
        assert 'hx-trigger="every 1s"' in retried.text
        outcome = await follow_progress(console, retried.text)
        assert "retry: now CANCELLED" in outcome and "was NEEDS_ATTENTION" in outcome

        released = await console.post(
            f"/attention/{held_id}/release", headers={"HX-Request": "true"}
        )
        assert released.status_code == 200, released.text
        outcome = await follow_progress(console, released.text)
        assert "release: now FULFILLING" in outcome and "was ON_HOLD" in outcome
        assert 'class="outcome ok"' in outcome

        again = await console.post(f"/attention/{parked_id}/retry", headers={"HX-Request": "true"})
        assert again.status_code == 409 and 'role="alert"' in again.text
        assert "nothing_to_retry" in again.text or "order_closed" in again.text, again.text
        empty = await console.get("/attention")
        assert "Nothing needs attention." in empty.text
    audit = [
        e for e in (await system.order(parked_id))["timeline"] if e["event"] == "operator_action"
    ]
    assert audit and audit[0]["detail"]["subject"] == "test:operator"
    assert audit[0]["detail"]["note"] == "from the operator console"
