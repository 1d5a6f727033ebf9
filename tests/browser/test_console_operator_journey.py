"""An operator's day in the console, in Chromium: sign in through the identity provider, find an
order placed through the API, read its timeline and trace, retry a parked order and watch it
finish, replay a dead letter, read the KPIs. Every page passes the page checks (labels, one h1,
table headers, no horizontal scroll) and is screenshotted."""

from __future__ import annotations

import re

import pytest
from playwright.async_api import expect

from shared.contracts.channels import ChannelOrderReceived
from shared.topics import CHANNEL_ORDERS, dead_letter_topic
from tests.browser.conftest import Console, SignIn
from tests.browser.pages import DESKTOP, TABLET, Viewport, action_buttons, check_page
from tests.support.jaeger_query_double import JaegerQueryDouble, Span
from tests.support.kafka import send, wait_for_records
from tests.support.services import eventually
from tests.support.system import order_body

pytestmark = [pytest.mark.browser, pytest.mark.integration]


@pytest.mark.timeout(420)
async def test_an_operators_journey_through_the_console(
    signed_in_page: SignIn, console: Console, jaeger: JaegerQueryDouble
) -> None:
    system = console.system
    await system.stock_up("JOURNEY-1", ("berlin", 10))
    body = order_body([("JOURNEY-1", 2, "12.50")])
    body["customer"] = {"email": "journey@example.com", "name": "Ada Journey"}
    order_id = await system.place(body)
    view = await system.wait_status(order_id, "FULFILLING")
    trace_id = view["trace_id"]
    jaeger.add(
        trace_id,
        [
            Span("a1", None, "order-intake", "POST /v1/orders", 1_000_000, 40_000),
            Span("b1", "a1", "inventory", "ReserveStock process", 1_010_000, 8_000),
            Span("c1", "b1", "payment", "AuthorizePayment process", 1_020_000, 15_000),
        ],
    )

    page = await signed_in_page("operator")
    await check_page(page, "start")

    # Find the order by the customer's e-mail, open it: lines, timeline, trace.
    await page.get_by_role("link", name="Orders", exact=True).first.click()
    await page.get_by_label("Customer e-mail").fill("journey@example.com")
    await page.get_by_role("button", name="Search").click()
    await expect(page.get_by_role("link", name=order_id)).to_be_visible()
    await check_page(page, "orders")
    await page.get_by_role("link", name=order_id).click()
    await expect(page.get_by_role("heading", level=1)).to_contain_text(order_id)
    await expect(page.get_by_text("JOURNEY-1").first).to_be_visible()
    await expect(page.get_by_text("order_received").first).to_be_visible()
    await expect(page.get_by_text("ReserveStock process")).to_be_visible()
    await check_page(page, "order")

    # Park an order (payment down past its deadlines), retry it from the attention queue.
    system.kill("payment")
    parked_id = await system.place(order_body([("JOURNEY-1", 1, "10.00")]))
    await system.wait_status(parked_id, "NEEDS_ATTENTION", timeout_s=90)
    await system.start("payment")

    async def void_applied() -> bool:
        parked = await system.order(parked_id)
        return any(e["event"] == "payment_compensated" for e in parked["timeline"])

    await eventually(void_applied, timeout_s=60, message="the parked order's void applied")
    await page.goto(console.url("/attention"))
    row = page.locator("tr", has_text=parked_id)
    await expect(row).to_be_visible()
    await check_page(page, "attention")
    await row.get_by_role("button", name=re.compile("^Retry", re.I)).click()
    await expect(row).to_contain_text(re.compile("now [A-Z_]+"), timeout=90_000)
    await expect(row).to_contain_text("was NEEDS_ATTENTION")

    # A dead letter: a malformed channel message, replayed from the page once.
    key = "JOURNEY-DLQ-1"
    await send(
        system.env.kafka,
        system.env.topic(CHANNEL_ORDERS),
        ChannelOrderReceived(channel="ebay", headers={}, payload="{not json"),
        correlation_id=key,
    )
    await wait_for_records(
        system.env.kafka,
        system.env.topic(dead_letter_topic("order_intake")),
        lambda seen: any(s.key == key.encode() for s in seen),
        timeout_s=60,
    )
    await page.goto(console.url("/dead-letters/order_intake"))
    letter = page.locator("tr", has_text=key)
    await expect(letter).to_be_visible()
    await check_page(page, "dead-letters")
    await letter.get_by_role("button", name="Replay").click()
    await expect(letter).to_contain_text("Replayed", timeout=30_000)

    # The day's numbers: the KPI page (the read model has the orders placed above).
    await page.get_by_role("link", name="KPIs").click()
    await expect(page.get_by_role("heading", level=1)).to_be_visible()
    await expect(page.get_by_text("Orders placed", exact=True)).to_be_visible()
    await expect(page.locator("svg").first).to_be_visible()
    await check_page(page, "kpis")


PAGES = ["/orders", "/attention", "/stock", "/warehouse", "/returns", "/dead-letters", "/kpis"]


@pytest.mark.parametrize("viewport", [DESKTOP, TABLET], ids=lambda v: v.name)
async def test_every_page_reads_at_1280_px_and_on_a_tablet_and_a_viewer_gets_no_actions(
    signed_in_page: SignIn, console: Console, viewport: Viewport
) -> None:
    operator = await signed_in_page("operator", viewport=viewport)
    for path in PAGES:
        await operator.goto(console.url(path))
        await check_page(operator, f"{path.strip('/')}-{viewport.name}")
    viewer = await signed_in_page("viewer", viewport=viewport)
    for path in PAGES:
        await viewer.goto(console.url(path))
        await check_page(viewer, f"{path.strip('/')}-{viewport.name}-viewer")
        assert await action_buttons(viewer) == [], f"{path}: a viewer sees actions"
