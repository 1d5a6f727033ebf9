"""HoldFulfilments / ReleaseFulfilments on a real Postgres: a held fulfilment refuses to ship
(409 `fulfilment_on_hold`) until released; a cancel still applies; re-sends answer the same."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest

from services.fulfilment.app import build
from services.fulfilment.domain import fulfilment_id_for
from shared.contracts.fulfilment import (
    FulfilmentCancelled,
    FulfilmentsHeld,
    FulfilmentsReleased,
)
from shared.contracts.order_intake import CancelFulfilment, HoldFulfilments, ReleaseFulfilments
from tests.component.fulfilment.test_fulfilment import create, create_command, error_code, ship
from tests.support.component import ComponentHarness, start_harness
from tests.support.crash import CrashOnce, crash_once_for
from tests.support.env import Infra

pytestmark = pytest.mark.component


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build()):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        yield c


@pytest.fixture
def crash_once(h: ComponentHarness, monkeypatch: pytest.MonkeyPatch) -> Iterator[CrashOnce]:
    yield from crash_once_for(h, monkeypatch)


async def hold(h: ComponentHarness, order_id: str, reason: str = "address_check") -> None:
    await h.deliver(HoldFulfilments(order_id=order_id, reason=reason), correlation_id=order_id)


async def release(h: ComponentHarness, order_id: str) -> None:
    await h.deliver(ReleaseFulfilments(order_id=order_id), correlation_id=order_id)


async def test_a_held_fulfilment_refuses_to_ship_until_released(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await create(h, "o-1", ("SKU-A", "WH-1", 1), ("SKU-B", "WH-2", 1))
    wh1, wh2 = fulfilment_id_for("o-1", "WH-1"), fulfilment_id_for("o-1", "WH-2")
    assert (await ship(client, wh2)).status_code == 200  # left before the hold

    await hold(h, "o-1", "payment_disputed")
    [held] = await h.emitted_contracts("FulfilmentsHeld")
    assert held == FulfilmentsHeld(order_id="o-1", reason="payment_disputed", held=(wh1,))

    refused = await ship(client, wh1)
    assert refused.status_code == 409
    assert error_code(refused) == "fulfilment_on_hold"
    assert refused.json()["error"]["details"]["fulfilment_id"] == wh1
    shown = (await client.get(f"/v1/fulfilments/{wh1}")).json()
    assert (shown["status"], shown["hold_reason"]) == ("created", "payment_disputed")
    assert len(await h.emitted("FulfilmentShipped")) == 1

    await release(h, "o-1")
    [released] = await h.emitted_contracts("FulfilmentsReleased")
    assert released == FulfilmentsReleased(order_id="o-1", released=(wh1,))
    assert (await ship(client, wh1)).status_code == 200
    assert len(await h.emitted("FulfilmentShipped")) == 2


async def test_holds_and_releases_are_idempotent(h: ComponentHarness):
    await create(h, "o-2", ("SKU-A", "WH-1", 1))
    fid = fulfilment_id_for("o-2", "WH-1")
    await hold(h, "o-2", "address_check")
    await hold(h, "o-2", "customer_request")  # a re-send (or a second reason): the first stays
    first, second = await h.emitted_contracts("FulfilmentsHeld")
    assert first == second
    assert first.held == (fid,) and first.reason == "address_check"

    await release(h, "o-2")
    await release(h, "o-2")
    one, two = await h.emitted_contracts("FulfilmentsReleased")
    assert one == two == FulfilmentsReleased(order_id="o-2", released=(fid,))
    [row] = await h.fetch("SELECT hold_reason FROM fulfilments WHERE fulfilment_id = $1", fid)
    assert row["hold_reason"] is None


async def test_fulfilments_created_while_the_order_is_held_are_created_held(
    h: ComponentHarness, client: httpx.AsyncClient
):
    await hold(h, "o-3")  # the hold overtook CreateFulfilment
    [held] = await h.emitted_contracts("FulfilmentsHeld")
    assert held.held == ()
    await create(h, "o-3", ("SKU-A", "WH-1", 1))
    refused = await ship(client, fulfilment_id_for("o-3", "WH-1"))
    assert error_code(refused) == "fulfilment_on_hold"


async def test_a_held_fulfilment_can_still_be_cancelled(h: ComponentHarness):
    await create(h, "o-4", ("SKU-A", "WH-1", 1))
    await hold(h, "o-4")
    await h.deliver(CancelFulfilment(order_id="o-4", reason="fraud"), correlation_id="o-4")
    [cancelled] = await h.emitted_contracts("FulfilmentCancelled")
    assert isinstance(cancelled, FulfilmentCancelled)
    assert cancelled.cancelled == (fulfilment_id_for("o-4", "WH-1"),)


async def test_hold_survives_a_crash_before_commit_and_a_redelivery_after(
    h: ComponentHarness, crash_once: CrashOnce
):
    await h.deliver(create_command("o-5", ("SKU-A", "WH-1", 1)), correlation_id="o-5")
    command = HoldFulfilments(order_id="o-5", reason="address_check")
    crash_once("before_db_commit")
    await h.deliver(command, correlation_id="o-5")
    crash_once("after_db_commit")
    await h.deliver(command, correlation_id="o-5")  # re-sent: the same answer, nothing new
    assert crash_once.crashed == ["before_db_commit", "after_db_commit"]
    assert not h.dead_letters
    first, second = await h.emitted_contracts("FulfilmentsHeld")
    assert first == second
    assert first.held == (fulfilment_id_for("o-5", "WH-1"),)
    [row] = await h.fetch("SELECT held_at FROM fulfilments WHERE order_id = 'o-5'")
    assert row["held_at"] is not None

    release_command = ReleaseFulfilments(order_id="o-5")
    crash_once("before_db_commit")
    await h.deliver(release_command, correlation_id="o-5")
    assert len(await h.emitted("FulfilmentsReleased")) == 1
