"""The KPI read model's handlers (each fact once, through crashes, redelivery and re-sent
facts) and the KPI page, its CSV and its JSON: who may read them, what they say."""

from __future__ import annotations

import csv
import io
import re
import uuid
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.console.app import build
from services.console.settings import ConsoleSettings
from shared.contracts.common import SkuQuantity
from shared.contracts.fulfilment import FulfilmentDelivered, FulfilmentShipped
from shared.contracts.inventory import (
    AvailabilityChanged,
    BackorderedLine,
    LowStock,
    StockBackordered,
    StockRecovered,
)
from shared.contracts.order_intake import OrderStatusChanged
from shared.contracts.payment import PaymentRefunded, PaymentRefundedExternally
from shared.contracts.returns import ChannelRefundRequested, ReturnLineSummary, ReturnStatusChanged
from shared.envelope import Contract
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component
HTML = {"Accept": "text/html"}
DAY = datetime.now(UTC).replace(hour=9, minute=0, second=0, microsecond=0) - timedelta(days=5)
TABLES = (
    "kpi_orders",
    "kpi_shipments",
    "kpi_shipment_lines",
    "kpi_returns",
    "kpi_return_lines",
    "kpi_refunds",
    "kpi_backorders",
    "kpi_stock_levels",
    "kpi_stock_outs",
    "kpi_low_stock",
)


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = ConsoleSettings(ship_promise_hours_by_channel={"amazon": 24})
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.fixture
def crash_once(h: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(h, monkeypatch)


def status(
    order_id: str,
    state: str,
    at: datetime,
    *,
    channel: str = "web",
    currency: str = "EUR",
    total: str = "100.00",
    reason: str | None = None,
) -> OrderStatusChanged:
    return OrderStatusChanged(
        order_id=order_id,
        channel=channel,
        status=state,
        reason=reason,
        currency=currency,
        total=Decimal(total),
        at=at,
    )


def shipped(order_id: str, at: datetime, shipment_id: str | None = None) -> FulfilmentShipped:
    return FulfilmentShipped(
        order_id=order_id,
        fulfilment_id=f"f-{order_id}",
        location="WH1",
        lines=(SkuQuantity(sku="MUG-1", quantity=2), SkuQuantity(sku="CUP-1", quantity=1)),
        carrier="dhl",
        tracking_number="T1",
        shipped_at=at,
        shipment_id=shipment_id,
    )


def return_changed(revision: int, state: str, at: datetime) -> ReturnStatusChanged:
    return ReturnStatusChanged(
        return_id="r-1",
        order_id="o-1",
        status=state,
        revision=revision,
        currency="EUR",
        lines=(ReturnLineSummary(sku="MUG-1", quantity=1, reason="damaged"),),
        refund_status="pending",
        at=at,
    )


async def snapshot(h: ComponentHarness) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table in TABLES:
        rows = await h.fetch(f"SELECT * FROM {table}")
        found[table] = sorted((tuple(r) for r in rows), key=repr)
    return found


# What each handler is given, after what it needs first; the table its fact lands in.
CASES: dict[str, tuple[list[Contract], Contract, str]] = {
    "order placed": ([], status("o-1", "RECEIVED", DAY), "kpi_orders"),
    "order cancelled": (
        [status("o-1", "RECEIVED", DAY)],
        status("o-1", "CANCELLED", DAY + timedelta(hours=1), reason="customer_request"),
        "kpi_orders",
    ),
    "parcel shipped": (
        [status("o-1", "CONFIRMED", DAY)],
        shipped("o-1", DAY + timedelta(hours=5), "s-1"),
        "kpi_shipment_lines",
    ),
    "fulfilment delivered": (
        [shipped("o-1", DAY + timedelta(hours=5))],
        FulfilmentDelivered(
            order_id="o-1", fulfilment_id="f-o-1", delivered_at=DAY + timedelta(hours=30)
        ),
        "kpi_shipments",
    ),
    "return": ([], return_changed(1, "REQUESTED", DAY), "kpi_return_lines"),
    "refund": (
        [],
        PaymentRefunded(
            order_id="o-1",
            amount=Decimal("10.00"),
            currency="EUR",
            refunded_total=Decimal("10.00"),
            return_id="r-1",
        ),
        "kpi_refunds",
    ),
    "refund at the provider": (
        [],
        PaymentRefundedExternally(
            order_id="o-1",
            payment_id="p-1",
            amount=Decimal("5.00"),
            currency="EUR",
            refunded_total=Decimal("5.00"),
            gateway="stripe",
            gateway_refund_id="re_1",
        ),
        "kpi_refunds",
    ),
    "refund by the channel": (
        [],
        ChannelRefundRequested(
            return_id="r-1",
            order_id="o-1",
            channel="amazon",
            amount=Decimal("7.00"),
            currency="EUR",
            reason="return",
            idempotency_key="r-1:refund",
        ),
        "kpi_refunds",
    ),
    "backorder": (
        [],
        StockBackordered(
            order_id="o-1",
            backordered=(BackorderedLine(line_id="l1", sku="MUG-1", location="WH1", quantity=3),),
        ),
        "kpi_backorders",
    ),
    "stock-out": (
        [AvailabilityChanged(sku="MUG-1", on_hand=4, reserved=0, available=4)],
        AvailabilityChanged(sku="MUG-1", on_hand=0, reserved=0, available=0),
        "kpi_stock_outs",
    ),
    "low stock": (
        [],
        LowStock(
            sku="MUG-1",
            location="WH1",
            on_hand=2,
            reserved=0,
            available=2,
            reorder_point=5,
            reorder_point_source="explicit",
            velocity_per_day=1.0,
        ),
        "kpi_low_stock",
    ),
    "stock recovered": (
        [
            LowStock(
                sku="MUG-1",
                location="WH1",
                on_hand=2,
                reserved=0,
                available=2,
                reorder_point=5,
                reorder_point_source="explicit",
                velocity_per_day=1.0,
            )
        ],
        StockRecovered(sku="MUG-1", location="WH1", available=20, reorder_point=5),
        "kpi_low_stock",
    ),
}


@pytest.mark.parametrize("case", CASES)
async def test_each_fact_counts_once_through_crashes_redelivery_and_re_sent_facts(
    h: ComponentHarness, crash_once: CrashOnce, case: str
) -> None:
    before, message, table = CASES[case]
    for earlier in before:
        await h.deliver(earlier, correlation_id="o-1")
    crash_once("before_db_commit")
    first = await h.deliver(message, correlation_id="o-1")  # rolled back, then applied
    applied = await snapshot(h)
    assert applied[table], f"{case}: nothing recorded in {table}"
    crash_once("after_db_commit")
    await h.deliver(message, correlation_id="o-1", envelope=first)  # redelivered: the inbox
    # The same fact in a new message, later (a producer re-sending its answer):
    resent = first.model_copy(
        update={"message_id": uuid.uuid4(), "occurred_at": first.occurred_at + timedelta(hours=1)}
    )
    await h.deliver(message, correlation_id="o-1", envelope=resent)
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    after = await snapshot(h)
    if case == "stock-out":  # the level's as-of moves on; the stock-out is the same one
        after["kpi_stock_levels"] = applied["kpi_stock_levels"]
    assert after == applied
    assert not h.dead_letters


async def test_first_times_and_latest_revisions_win_whatever_the_order(h: ComponentHarness) -> None:
    # A return's older revision arriving late does not take it back.
    await h.deliver(return_changed(2, "REFUSED", DAY + timedelta(hours=2)), correlation_id="r-1")
    await h.deliver(return_changed(1, "REQUESTED", DAY), correlation_id="r-1")
    row = (await h.fetch("SELECT status, revision, requested_at FROM kpi_returns"))[0]
    assert (row["status"], row["revision"], row["requested_at"]) == ("REFUSED", 2, DAY)
    # An order's milestones keep their first time; placed at its earliest status.
    await h.deliver(status("o-2", "CONFIRMED", DAY + timedelta(hours=1)), correlation_id="o-2")
    await h.deliver(status("o-2", "RECEIVED", DAY), correlation_id="o-2")
    row = (await h.fetch("SELECT placed_at, confirmed_at FROM kpi_orders"))[0]
    assert (row["placed_at"], row["confirmed_at"]) == (DAY, DAY + timedelta(hours=1))
    # A delivery without a shipment id delivers every parcel of the fulfilment so far.
    await h.deliver(shipped("o-2", DAY + timedelta(hours=3), "s-a"), correlation_id="o-2")
    await h.deliver(shipped("o-2", DAY + timedelta(hours=4), "s-b"), correlation_id="o-2")
    delivered = DAY + timedelta(hours=40)
    await h.deliver(
        FulfilmentDelivered(order_id="o-2", fulfilment_id="f-o-2", delivered_at=delivered),
        correlation_id="o-2",
    )
    rows = await h.fetch("SELECT delivered_at FROM kpi_shipments WHERE order_id = 'o-2'")
    assert [r["delivered_at"] for r in rows] == [delivered, delivered]
    # A low-stock alert while the last one is open is the same crossing; after the recovery a
    # new one counts.
    low = LowStock(
        sku="CUP-1",
        location="WH1",
        on_hand=2,
        reserved=0,
        available=2,
        reorder_point=5,
        reorder_point_source="explicit",
        velocity_per_day=1.0,
    )
    recovered = StockRecovered(sku="CUP-1", location="WH1", available=20, reorder_point=5)
    for event in (low, low, recovered, recovered, low):
        await h.deliver(event, correlation_id="CUP-1")
    alerts = await h.fetch("SELECT recovered_at IS NULL AS open FROM kpi_low_stock ORDER BY 1")
    assert [a["open"] for a in alerts] == [False, True]
    # A stock-out runs from the change to 0 to the change back above 0.
    for available in (3, 0, -2, 5, 0):
        await h.deliver(
            AvailabilityChanged(sku="CUP-1", on_hand=0, reserved=0, available=available),
            correlation_id="CUP-1",
        )
    outs = await h.fetch("SELECT ended_at IS NULL AS open FROM kpi_stock_outs ORDER BY started_at")
    assert [r["open"] for r in outs] == [False, True]


async def some_history(h: ComponentHarness) -> None:
    """Two web orders (EUR and USD), an amazon one cancelled, shipments on time and late."""
    await h.deliver(status("o-1", "RECEIVED", DAY), correlation_id="o-1")
    await h.deliver(status("o-1", "CONFIRMED", DAY), correlation_id="o-1")
    await h.deliver(shipped("o-1", DAY + timedelta(hours=10)), correlation_id="o-1")
    await h.deliver(
        status("o-2", "RECEIVED", DAY, currency="USD", total="30.00"), correlation_id="o-2"
    )
    await h.deliver(
        status("o-2", "CONFIRMED", DAY, currency="USD", total="30.00"), correlation_id="o-2"
    )
    await h.deliver(shipped("o-2", DAY + timedelta(hours=60)), correlation_id="o-2")
    for state in ("RECEIVED", "CANCELLED"):
        await h.deliver(
            status("o-3", state, DAY, channel="amazon", reason="=HYPERLINK(1)"),
            correlation_id="o-3",
        )


async def test_the_kpi_page_draws_the_figures_for_a_viewer(h: ComponentHarness) -> None:
    await some_history(h)
    async with h.http("viewer") as viewer:
        page = await viewer.get("/kpis", headers=HTML)
    assert page.status_code == 200, page.text
    text = page.text
    svgs = re.findall(r"<svg.*?</svg>", text, re.S)
    assert len(svgs) == 2
    for svg in svgs:
        root = ET.fromstring(svg)
        assert root.get("role") == "img" and root.get("aria-labelledby")
        assert root.find("{http://www.w3.org/2000/svg}title") is not None
    assert "Orders placed by day and channel" in svgs[0]
    assert "Time to ship by day" in svgs[1]
    assert '<th scope="col"' in text and 'for="kpi-from"' in text and 'for="kpi-channel"' in text
    assert "/kpis.csv?kpi=volume&amp;from=" in text
    assert "Revenue (EUR)" in text and "Revenue (USD)" in text
    assert "50.0 %" in text, "one of two shipments on time"
    assert "o-1" not in text and "o-2" not in text, "no order ids, only figures"


async def test_the_read_model_holds_no_personal_data(h: ComponentHarness) -> None:
    columns = await h.fetch(
        "SELECT table_name, column_name FROM information_schema.columns"
        " WHERE table_schema = 'console' AND table_name LIKE 'kpi_%'"
    )
    assert columns
    personal = re.compile(r"email|name|phone|address|line1|postal|customer")
    assert [tuple(c) for c in columns if personal.search(c["column_name"])] == []


async def test_only_who_may_read_orders_reads_the_kpis(h: ComponentHarness) -> None:
    for path in ("/kpis", "/kpis.csv?kpi=volume", "/v1/kpis"):
        async with h.http("carrier:dhl") as carrier:
            assert (await carrier.get(path)).status_code == 403, path
        async with h.http("warehouse") as warehouse:
            assert (await warehouse.get(path)).status_code == 403, path
        async with h.anonymous() as anonymous:
            assert (await anonymous.get(path)).status_code == 401, path
        async with h.http("finance") as finance:
            assert (await finance.get(path)).status_code == 200, path
    async with h.anonymous() as browser:
        page = await browser.get("/kpis", headers=HTML)
        assert page.status_code == 303 and page.headers["location"].startswith("/sign-in")


async def test_a_bad_filter_is_refused_naming_the_field(h: ComponentHarness) -> None:
    async with h.http("viewer") as viewer:
        for params, field in (
            ({"from": "yesterday"}, "from"),
            ({"from": "2026-03-10", "to": "2026-03-01"}, "from"),
            ({"to": "2026-13-01"}, "to"),
            ({"bucket": "week"}, "bucket"),
            ({"from": "2026-01-01", "to": "2026-03-01", "bucket": "hour"}, "bucket"),
            ({"channel": "<script>"}, "channel"),
        ):
            answer = await viewer.get("/v1/kpis", params=params)
            assert answer.status_code == 422, params
            assert answer.json()["error"]["details"]["field"] == field
        csv_answer = await viewer.get("/kpis.csv", params={"kpi": "everything"})
        assert csv_answer.status_code == 422 and csv_answer.json()["error"]["details"] == {
            "field": "kpi"
        }
        page = await viewer.get("/kpis", params={"bucket": "week"}, headers=HTML)
        assert page.status_code == 422 and "bucket" in page.text and "<html" in page.text


async def test_the_csv_is_the_table_the_page_shows(h: ComponentHarness) -> None:
    await some_history(h)
    async with h.http("viewer") as viewer:
        answer = await viewer.get("/kpis.csv", params={"kpi": "volume_totals"})
        assert answer.status_code == 200
        assert answer.headers["content-type"].startswith("text/csv")
        assert "attachment" in answer.headers["content-disposition"]
        rows = list(csv.reader(io.StringIO(answer.text)))
        assert rows == [
            ["channel", "currency", "orders", "revenue"],
            ["amazon", "EUR", "1", "0"],
            ["web", "EUR", "1", "100.0000"],
            ["web", "USD", "1", "30.0000"],
        ]
        reasons = await viewer.get("/kpis.csv", params={"kpi": "cancel_reasons"})
        assert list(csv.reader(io.StringIO(reasons.text)))[1] == ["'=HYPERLINK(1)", "1", "1.0"]
        amazon = await viewer.get("/kpis.csv", params={"kpi": "shipping", "channel": "amazon"})
        assert list(csv.reader(io.StringIO(amazon.text)))[1:] == [["all", "0", "", "", "", "0", ""]]


async def test_the_json_answers_per_currency_and_channel(h: ComponentHarness) -> None:
    await some_history(h)
    day = DAY.date().isoformat()
    later = (DAY + timedelta(days=3)).date().isoformat()
    async with h.http("viewer") as viewer:
        answer = await viewer.get("/v1/kpis", params={"from": day, "to": later})
    assert answer.status_code == 200
    kpis = answer.json()
    assert kpis["filter"]["from"] == day and kpis["channels"] == ["amazon", "web"]
    assert kpis["volume"]["totals"] == [
        {"channel": "amazon", "currency": "EUR", "orders": 1, "revenue": "0"},
        {"channel": "web", "currency": "EUR", "orders": 1, "revenue": "100.0000"},
        {"channel": "web", "currency": "USD", "orders": 1, "revenue": "30.0000"},
    ]
    shipping = kpis["shipping"]
    assert shipping["to_ship"] == {"count": 2, "p50_hours": 35.0, "p90_hours": 55.0}
    assert (shipping["on_time"], shipping["on_time_rate"]) == (1, 0.5)
    assert kpis["cancellations"]["rate"] == round(1 / 3, 6)
    assert kpis["ship_promise"] == {"default_hours": 48.0, "by_channel": {"amazon": 24.0}}
    async with h.http("viewer") as viewer:
        hourly = await viewer.get("/v1/kpis", params={"from": day, "to": day, "bucket": "hour"})
    assert len(hourly.json()["shipping"]["series"]) == 24
