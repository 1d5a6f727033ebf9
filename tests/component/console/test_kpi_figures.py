"""Must show: the KPI figures equal an independent computation on 5,000 generated orders.

A seeded generator (tests/support/kpi_orders.py) makes 5,000 orders on four channels and three
currencies — rejected and cancelled ones, backorders, shipments in one or two parcels (some late
against the promise), deliveries, returns (some refused) and their refunds, stock-outs — and the
events the services would send for them. The events go through the console's real handlers (its
consumer, inbox and all, in batches); `GET /v1/kpis` answers the figures. The test computes
each KPI again from the generated facts with plain Python and SQL written here, not with the
console's code (percentiles by Postgres' percentile_cont), and compares. Then a slice of the
events is delivered again — the same messages, and the same facts in new messages — and
nothing changes.
"""

from __future__ import annotations

import random
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from services.console.app import build
from services.console.settings import ConsoleSettings
from tests.support.component import ComponentHarness, FakeRecord, start_harness
from tests.support.env import Infra
from tests.support.kpi_orders import TimedEvent, World, at_utc, generate

pytestmark = pytest.mark.component

FIRST = at_utc(2026, 3, 2)
DAYS = 14
START, END = FIRST, FIRST + timedelta(days=DAYS)
PROMISE = {"amazon": 24.0}
DEFAULT_PROMISE = 48.0
PARAMS = {"from": "2026-03-02", "to": "2026-03-15"}


@pytest.fixture
async def console(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = ConsoleSettings(
        ship_promise_hours=DEFAULT_PROMISE, ship_promise_hours_by_channel=PROMISE
    )
    async for harness in start_harness(infra, build(settings)):
        yield harness


async def deliver(h: ComponentHarness, events: Sequence[TimedEvent], batch: int = 500) -> None:
    for first in range(0, len(events), batch):
        records = []
        for event in events[first : first + batch]:
            h._offset += 1
            records.append(
                FakeRecord(
                    event.topic, event.envelope.to_bytes(), event.key.encode(), offset=h._offset
                )
            )
        await h.consumer.handle_records(records)


def in_period(at: datetime | None) -> bool:
    return at is not None and START <= at < END


async def percentiles(h: ComponentHarness, hours: list[float]) -> tuple[float | None, ...]:
    row = await h.pool.fetchrow(
        "SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY x) AS p50,"
        " percentile_cont(0.9) WITHIN GROUP (ORDER BY x) AS p90 FROM unnest($1::float8[]) x",
        hours,
    )
    assert row is not None
    return (row["p50"], row["p90"])


def close(got: float | None, expected: float | None) -> bool:
    if expected is None:
        return got is None
    return got is not None and abs(got - expected) < 1e-3


async def expected_kpis(h: ComponentHarness, world: World, channel: str | None) -> dict[str, Any]:
    """Every KPI from the generated facts, computed here and nowhere else."""
    orders = [o for o in world.orders if channel is None or o.channel == channel]
    placed = [o for o in orders if in_period(o.placed_at)]

    volume: Counter[tuple[str, str, str]] = Counter()
    revenue: defaultdict[tuple[str, str, str], Decimal] = defaultdict(Decimal)
    for o in placed:
        key = (o.placed_at.strftime("%Y-%m-%d"), o.channel, o.currency)
        volume[key] += 1
        if o.cancelled_at is None and o.rejected_at is None:
            revenue[key] += o.total

    to_ship: list[float] = []
    on_time = 0
    ship_by_channel: defaultdict[str, list[float]] = defaultdict(list)
    on_time_by_channel: Counter[str] = Counter()
    to_deliver: list[float] = []
    shipped_units: Counter[str] = Counter()
    for o in orders:
        for s in o.shipments:
            assert o.confirmed_at is not None
            if in_period(s.shipped_at):
                hours = (s.shipped_at - o.confirmed_at).total_seconds() / 3600
                to_ship.append(hours)
                ship_by_channel[o.channel].append(hours)
                if hours <= PROMISE.get(o.channel, DEFAULT_PROMISE):
                    on_time += 1
                    on_time_by_channel[o.channel] += 1
                for sku, units in s.lines.items():
                    shipped_units[sku] += units
            if in_period(s.delivered_at):
                assert s.delivered_at is not None
                to_deliver.append((s.delivered_at - o.confirmed_at).total_seconds() / 3600)

    reasons = Counter(o.cancel_reason or "unspecified" for o in placed if o.cancelled_at)
    returned_units: Counter[str] = Counter()
    return_reasons: Counter[str] = Counter()
    returns = 0
    for o in orders:
        for r in o.returns:
            if in_period(r.requested_at) and not r.refused:
                returns += 1
                for sku, reason, units in r.lines:
                    returned_units[sku] += units
                    return_reasons[reason] += units
    refunds: Counter[tuple[str, str]] = Counter()
    refunded: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
    for o in orders:
        for f in o.refunds:
            if in_period(f.at):
                refunds[(f.kind, f.currency)] += 1
                refunded[(f.kind, f.currency)] += f.amount
    backordered = [o for o in orders if in_period(o.backordered_at)]
    backorder_units: Counter[str] = Counter()
    for o in backordered:
        for sku, units in o.backordered.items():
            backorder_units[sku] += units

    stock_outs: Counter[str] = Counter()
    out_now: dict[str, bool] = {}
    for sku, points in world.availability.items():
        out = False
        for at, level in points:
            if level <= 0 and not out:
                out = True
                if in_period(at):
                    stock_outs[sku] += 1
                    out_now[sku] = True
            elif level > 0 and out:
                out = False
                if sku in out_now:
                    out_now[sku] = False
    low = Counter((sku, loc) for sku, loc, at in world.low_stock if in_period(at))

    return {
        "volume": volume,
        "revenue": revenue,
        "to_ship": (len(to_ship), *await percentiles(h, to_ship)),
        "on_time": on_time,
        "ship_by_channel": {
            c: (len(v), *await percentiles(h, v), on_time_by_channel[c])
            for c, v in ship_by_channel.items()
        },
        "to_deliver": (len(to_deliver), *await percentiles(h, to_deliver)),
        "placed": len(placed),
        "cancelled": sum(1 for o in placed if o.cancelled_at),
        "rejected": sum(1 for o in placed if o.rejected_at),
        "cancel_reasons": reasons,
        "returns": returns,
        "shipped_units": shipped_units,
        "returned_units": returned_units,
        "return_reasons": return_reasons,
        "refunds": refunds,
        "refunded": refunded,
        "backordered_orders": len(backordered),
        "backorder_units": backorder_units,
        "stock_outs": stock_outs,
        "out_now": out_now,
        "low_stock": low,
    }


def compare(got: dict[str, Any], want: dict[str, Any]) -> None:
    volume = {
        (v["bucket"][:10], v["channel"], v["currency"]): (v["orders"], Decimal(v["revenue"]))
        for v in got["volume"]["series"]
    }
    assert volume == {k: (n, want["revenue"][k]) for k, n in want["volume"].items()}

    shipping = got["shipping"]
    count, p50, p90 = want["to_ship"]
    assert shipping["to_ship"]["count"] == count > 1000
    assert close(shipping["to_ship"]["p50_hours"], p50)
    assert close(shipping["to_ship"]["p90_hours"], p90)
    assert shipping["on_time"] == want["on_time"] < count, "some shipments are late"
    assert close(shipping["on_time_rate"], want["on_time"] / count)
    by_channel = {b["channel"]: b for b in shipping["by_channel"]}
    assert set(by_channel) == set(want["ship_by_channel"])
    for channel, (n, c50, c90, kept) in want["ship_by_channel"].items():
        b = by_channel[channel]
        assert (b["to_ship"]["count"], b["on_time"]) == (n, kept), channel
        assert close(b["to_ship"]["p50_hours"], c50) and close(b["to_ship"]["p90_hours"], c90)
        assert b["promise_hours"] == PROMISE.get(channel, DEFAULT_PROMISE)
    count, p50, p90 = want["to_deliver"]
    assert shipping["to_deliver"]["count"] == count > 0
    assert close(shipping["to_deliver"]["p50_hours"], p50)
    assert close(shipping["to_deliver"]["p90_hours"], p90)

    c = got["cancellations"]
    assert (c["placed"], c["cancelled"], c["rejected"]) == (
        want["placed"],
        want["cancelled"],
        want["rejected"],
    )
    assert want["cancelled"] > 0 and close(c["rate"], want["cancelled"] / want["placed"])
    assert {r["reason"]: r["orders"] for r in c["reasons"]} == dict(want["cancel_reasons"])

    r = got["returns"]
    assert r["returns"] == want["returns"] > 0
    skus = set(want["shipped_units"]) | set(want["returned_units"])
    assert {x["sku"]: (x["units_shipped"], x["units_returned"]) for x in r["by_sku"]} == {
        s: (want["shipped_units"][s], want["returned_units"][s]) for s in skus
    }
    assert {x["reason"]: x["units"] for x in r["by_reason"]} == dict(want["return_reasons"])
    assert close(
        r["rate"], sum(want["returned_units"].values()) / sum(want["shipped_units"].values())
    )

    refunds = {
        (x["kind"], x["currency"]): (x["count"], Decimal(x["amount"]))
        for x in got["refunds"]["by_kind"]
    }
    assert refunds == {k: (n, want["refunded"][k]) for k, n in want["refunds"].items()}

    b = got["backorders"]
    assert b["orders"] == want["backordered_orders"]
    assert {x["sku"]: x["units"] for x in b["by_sku"]} == dict(want["backorder_units"])

    s = got["stock_outs"]
    assert {x["sku"]: x["stock_outs"] for x in s["by_sku"]} == dict(want["stock_outs"])
    assert {x["sku"]: x["out_now"] for x in s["by_sku"]} == want["out_now"]
    assert {(x["sku"], x["location"]): x["alerts"] for x in s["low_stock"]} == dict(
        want["low_stock"]
    )


async def test_kpis_equal_an_independent_computation_on_5000_orders(
    console: ComponentHarness,
) -> None:
    world, events = generate(seed=19, count=5000, first_day=FIRST, days=DAYS)
    assert len(world.orders) == 5000
    assert sum(1 for o in world.orders if o.cancelled_at) > 200
    assert sum(1 for o in world.orders if o.returns) > 200
    await deliver(console, events)
    assert not console.dead_letters

    async with console.http("viewer") as client:
        answer = await client.get("/v1/kpis", params=PARAMS)
        assert answer.status_code == 200, answer.text
        everything = answer.json()
        compare(everything, await expected_kpis(console, world, None))
        amazon = await client.get("/v1/kpis", params={**PARAMS, "channel": "amazon"})
        assert amazon.status_code == 200
        compare(amazon.json(), await expected_kpis(console, world, "amazon"))
        assert amazon.json()["cancellations"]["placed"] < everything["cancellations"]["placed"]

        # A slice delivered again: the same messages (the inbox skips them) and the same facts
        # in new messages (each handler's own keys and first times keep them once).
        rng = random.Random(7)
        again = rng.sample(events, 3000)
        renewed = [
            TimedEvent(
                e.at,
                e.envelope.model_copy(update={"message_id": uuid.UUID(int=rng.getrandbits(128))}),
                e.topic,
                e.key,
            )
            for e in rng.sample(events, 3000)
        ]
        await deliver(console, sorted(again, key=lambda e: e.at))
        await deliver(console, renewed)
        assert not console.dead_letters
        after = await client.get("/v1/kpis", params=PARAMS)
        assert after.json() == everything
