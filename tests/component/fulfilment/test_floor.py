"""The warehouse floor end to end on a real Postgres: pick lists, scan-confirmed picks, packing
into boxes, labels, shipping in parcels, tracking per parcel."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from services.fulfilment.app import build
from services.fulfilment.carriers.table_rate import webhook_body, webhook_headers
from services.fulfilment.settings import FulfilmentSettings
from shared.contracts.common import Address, Allocation
from shared.contracts.fulfilment import FulfilmentShipped
from shared.contracts.order_intake import (
    CancelFulfilment,
    CreateFulfilment,
    HoldFulfilments,
    ReleaseFulfilments,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.floor import ITEMS, LAYOUT, pack_and_label, pick_everything, set_up_floor

pytestmark = pytest.mark.component

SECRET = "table-rate-test-secret"
US_ADDRESS = Address(line1="1 Main St", city="Springfield", postal_code="12345", country="US")


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = FulfilmentSettings(table_rate_webhook_secret=SecretStr(SECRET))
    async for harness in start_harness(infra, build(settings)):
        yield harness


@pytest.fixture
async def client(h: ComponentHarness) -> AsyncIterator[httpx.AsyncClient]:
    async with h.http() as c:
        await set_up_floor(c)
        yield c


async def create(h: ComponentHarness, order_id: str, *lines: tuple[str, int]) -> str:
    await h.deliver(
        CreateFulfilment(
            order_id=order_id,
            allocations=tuple(
                Allocation(line_id=f"l{i}", sku=sku, location="berlin", quantity=quantity)
                for i, (sku, quantity) in enumerate(lines)
            ),
            shipping_address=US_ADDRESS,
            shipping_method="standard",
        ),
        correlation_id=order_id,
    )
    rows = await h.fetch("SELECT fulfilment_id FROM fulfilments WHERE order_id = $1", order_id)
    fulfilment_id: str = rows[0]["fulfilment_id"]
    return fulfilment_id


def error(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


async def test_an_order_is_picked_packed_in_two_boxes_labelled_and_shipped_in_two_parcels(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    fulfilment_id = await create(h, "o-floor-1", ("MUG-1", 2), ("CUP-1", 1), ("LAMP-1", 1))
    await h.clear_outbox()

    early = await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")
    assert early.status_code == 409 and error(early) == "not_picked"

    released = await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "batch"})
    assert released.status_code == 200, released.text
    [pick_list] = released.json()["pick_lists"]
    assert [s["bin"] for s in pick_list["stops"]] == ["A-01", "A-02", "B-01"]  # walking order
    assert pick_list["walk_m"] > 0
    list_id = pick_list["pick_list_id"]
    again = await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "batch"})
    assert again.json()["pick_lists"] == []  # each fulfilment is released once

    assert (await client.post(f"/v1/pick-lists/{list_id}/claim")).status_code == 200
    async with h.http("warehouse") as other_picker:
        taken = await other_picker.post(f"/v1/pick-lists/{list_id}/claim")
    assert taken.status_code == 409 and error(taken) == "already_claimed"
    wrong = await client.post(
        f"/v1/pick-lists/{list_id}/picks",
        json={"stop": 0, "barcode": ITEMS["CUP-1"]["barcode"], "quantity": 1},
    )
    assert wrong.status_code == 409 and error(wrong) == "wrong_barcode"
    over = await client.post(
        f"/v1/pick-lists/{list_id}/picks",
        json={"stop": 0, "barcode": ITEMS["MUG-1"]["barcode"], "quantity": 3},
    )
    assert over.status_code == 409 and error(over) == "over_pick"
    scan = {"stop": 0, "barcode": ITEMS["MUG-1"]["barcode"], "quantity": 1, "scan_id": "s-1"}
    for _ in range(2):  # the device retries: one pick
        first = await client.post(f"/v1/pick-lists/{list_id}/picks", json=scan)
        assert first.status_code == 200
    assert first.json()["stops"][0]["picked"] == 1
    picked = await pick_everything(
        client,
        {**pick_list, "stops": [{**pick_list["stops"][0], "quantity": 1}, *pick_list["stops"][1:]]},
    )
    assert picked["status"] == "picked"
    assert len(await h.emitted("LinePicked")) == 4  # 1 + 1 mugs, a cup, a lamp
    assert len(await h.emitted("PickListReleased")) == 1

    packed = await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")
    assert packed.status_code == 200, packed.text
    parcels = packed.json()["parcels"]
    assert sorted(p["box"] for p in parcels) == ["M", "S"]
    by_box = {p["box"]: p for p in parcels}
    assert {ln["sku"] for ln in by_box["M"]["lines"]} == {"LAMP-1"}
    assert by_box["S"]["expected_weight_g"] == 2 * 350 + 200 + 150

    small = by_box["S"]["parcel_id"]
    closed_early = await client.post(f"/v1/parcels/{small}/close")
    assert closed_early.status_code == 409 and error(closed_early) == "items_missing"
    strange = await client.post(f"/v1/parcels/{small}/scan", json={"barcode": "000"})
    assert strange.status_code == 409 and error(strange) == "wrong_barcode"
    lamp_here = await client.post(
        f"/v1/parcels/{small}/scan", json={"barcode": ITEMS["LAMP-1"]["barcode"]}
    )
    assert lamp_here.status_code == 409 and error(lamp_here) == "over_scan"
    for parcel in parcels:
        for line in parcel["lines"]:
            scanned = await client.post(
                f"/v1/parcels/{parcel['parcel_id']}/scan",
                json={"barcode": ITEMS[line["sku"]]["barcode"], "quantity": line["quantity"]},
            )
            assert scanned.status_code == 200, scanned.text
    held = await client.post(f"/v1/parcels/{small}/close", json={"measured_weight_g": 1500})
    assert held.json()["status"] == "held" and "weight_mismatch" in held.json()["hold_reason"]
    reweighed = await client.post(f"/v1/parcels/{small}/close", json={"measured_weight_g": 1060})
    assert reweighed.json()["status"] == "packed", reweighed.text
    big = by_box["M"]["parcel_id"]
    assert (await client.post(f"/v1/parcels/{big}/close")).json()["status"] == "packed"
    assert len(await h.emitted("ParcelPacked")) == 2

    labels = {}
    for parcel_id in (small, big):
        labelled = await client.post(f"/v1/parcels/{parcel_id}/label")
        assert labelled.status_code == 200, labelled.text
        assert labelled.json()["status"] == "labelled"
        assert labelled.json()["service"] == "standard"  # cheapest meeting the promise
        labels[parcel_id] = labelled.json()["tracking_number"]
        again_label = await client.post(f"/v1/parcels/{parcel_id}/label")
        assert again_label.json()["tracking_number"] == labels[parcel_id]
        pdf = await client.get(f"/v1/parcels/{parcel_id}/label.pdf")
        assert pdf.status_code == 200 and pdf.content.startswith(b"%PDF")
        zpl = await client.get(f"/v1/parcels/{parcel_id}/label.zpl")
        assert labels[parcel_id] in zpl.text
        slip = await client.get(f"/v1/parcels/{parcel_id}/slip.pdf")
        assert slip.content.startswith(b"%PDF")
    assert labels[small] != labels[big]
    async with h.http("viewer") as viewer:  # labels and slips carry the customer's address
        for document in ("label.pdf", "label.zpl", "slip.pdf"):
            refused = await viewer.get(f"/v1/parcels/{small}/{document}")
            assert refused.status_code == 403, document
    assert len(await h.emitted("LabelCreated")) == 2

    first_ship = await client.post(f"/v1/parcels/{small}/ship")
    assert first_ship.json()["status"] == "shipped"
    assert (await client.post(f"/v1/parcels/{small}/ship")).status_code == 200  # a repeat
    state = (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()
    assert state["status"] == "partially_shipped"
    whole = await client.post(f"/v1/fulfilments/{fulfilment_id}/ship", json={})
    assert whole.status_code == 409 and error(whole) == "ships_in_parcels"
    await client.post(f"/v1/parcels/{big}/ship")
    assert (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()["status"] == "shipped"

    shipped: list[FulfilmentShipped] = await h.emitted_contracts("FulfilmentShipped")
    assert [(e.shipment_id, e.fulfilment_complete) for e in shipped] == [
        (small, False),
        (big, True),
    ]
    assert {ln.sku: ln.quantity for ln in shipped[0].lines} == {"MUG-1": 2, "CUP-1": 1}
    assert {ln.sku: ln.quantity for ln in shipped[1].lines} == {"LAMP-1": 1}

    # The carrier's signed webhook delivers parcel by parcel; the fulfilment with the last one.
    async with h.anonymous() as carrier:
        for parcel_id in (small, big):
            body = webhook_body([{"tracking_number": labels[parcel_id], "status": "delivered"}])
            forged = await carrier.post(
                "/v1/carriers/table_rate/webhooks",
                content=body,
                headers=webhook_headers("wrong-secret", body),
            )
            assert forged.status_code == 401
            answer = await carrier.post(
                "/v1/carriers/table_rate/webhooks",
                content=body,
                headers=webhook_headers(SECRET, body),
            )
            assert answer.status_code == 200, answer.text
    assert answer.json()["outcomes"] == ["delivered"]
    assert (await client.get(f"/v1/fulfilments/{fulfilment_id}")).json()["status"] == "delivered"
    assert len(await h.emitted("FulfilmentDelivered")) == 1


async def test_an_empty_bin_is_a_short_pick(h: ComponentHarness, client: httpx.AsyncClient) -> None:
    await create(h, "o-floor-2", ("CUP-1", 2))
    released = await client.post(
        "/v1/locations/berlin/pick-lists", json={"strategy": "single_order"}
    )
    [pick_list] = released.json()["pick_lists"]
    list_id = pick_list["pick_list_id"]
    await client.post(f"/v1/pick-lists/{list_id}/claim")
    await client.post(
        f"/v1/pick-lists/{list_id}/picks",
        json={"stop": 0, "barcode": ITEMS["CUP-1"]["barcode"], "quantity": 1},
    )
    empty = await client.post(f"/v1/pick-lists/{list_id}/stops/0/empty")
    assert empty.status_code == 200 and empty.json()["status"] == "short"
    [short] = await h.emitted_contracts("ShortPick")
    assert (short.sku, short.missing, short.bin) == ("CUP-1", 1, "A-02")


async def test_a_sku_not_on_the_floor_leaves_its_fulfilment_waiting(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    fulfilment_id = await create(h, "o-floor-3", ("UNKNOWN-1", 1))
    released = await client.post("/v1/locations/berlin/pick-lists", json={})
    assert released.json()["pick_lists"] == []
    assert released.json()["skipped"] == [
        {"fulfilment_id": fulfilment_id, "sku": "UNKNOWN-1", "reason": "sku_has_no_barcode"}
    ]
    queue = (await client.get("/v1/locations/berlin/queue")).json()
    assert queue["waiting_fulfilments"] == 1


async def test_a_cancel_after_one_parcel_left_takes_only_the_unshipped_rest(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    fulfilment_id = await create(h, "o-floor-4", ("MUG-1", 1), ("LAMP-1", 1))
    [pick_list] = (
        await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "single_order"})
    ).json()["pick_lists"]
    await pick_everything(client, pick_list)
    parcels = await pack_and_label(client, fulfilment_id)
    assert len(parcels) == 2
    first, second = (p["parcel_id"] for p in parcels)
    assert (await client.post(f"/v1/parcels/{first}/ship")).status_code == 200

    cancel = CancelFulfilment(order_id="o-floor-4", reason="customer asked")
    sent = await h.deliver(cancel, correlation_id="o-floor-4")
    await h.deliver(cancel, correlation_id="o-floor-4", envelope=sent)  # redelivered
    answers = await h.emitted_contracts("FulfilmentCancelled")
    assert [a.partly_shipped for a in answers] == [(fulfilment_id,)]
    assert answers[0].cancelled == () and answers[0].already_shipped == ()
    late = await client.post(f"/v1/parcels/{second}/ship")
    assert late.status_code == 409 and error(late) == "rest_cancelled"
    assert len(await h.emitted("FulfilmentShipped")) == 1


async def test_a_list_keeps_its_stops_when_the_floor_is_laid_out_again(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    await create(h, "o-floor-5", ("CUP-1", 1))
    [pick_list] = (await client.post("/v1/locations/berlin/pick-lists", json={})).json()[
        "pick_lists"
    ]
    smaller = {**LAYOUT, "bins": [b for b in LAYOUT["bins"] if b["code"] != "A-02"]}
    assert (await client.put("/v1/locations/berlin/layout", json=smaller)).status_code == 200
    again = (await client.get(f"/v1/pick-lists/{pick_list['pick_list_id']}")).json()
    assert [s["bin"] for s in again["stops"]] == ["A-02"]
    assert (await pick_everything(client, again))["status"] == "picked"


async def test_a_hold_stops_the_floor_and_its_release_lets_it_go_on(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    # Held before picking: releasing pick lists skips it, so nothing is planned.
    waiting = await create(h, "o-floor-hold-1", ("MUG-1", 1))
    await h.deliver(
        HoldFulfilments(order_id="o-floor-hold-1", reason="address_check"),
        correlation_id="o-floor-hold-1",
    )
    released = await client.post(
        "/v1/locations/berlin/pick-lists", json={"strategy": "single_order"}
    )
    assert released.json()["pick_lists"] == []

    # Held on the floor: one parcel left already; the other may not be shipped, nor may the
    # picked units be packed again.
    fulfilment_id = await create(h, "o-floor-hold-2", ("MUG-1", 1), ("LAMP-1", 1))
    [pick_list] = (
        await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "single_order"})
    ).json()["pick_lists"]
    await pick_everything(client, pick_list)
    parcels = await pack_and_label(client, fulfilment_id)
    first, second = (p["parcel_id"] for p in parcels)
    assert (await client.post(f"/v1/parcels/{first}/ship")).status_code == 200
    hold = HoldFulfilments(order_id="o-floor-hold-2", reason="payment_disputed")
    await h.deliver(hold, correlation_id="o-floor-hold-2")
    [answer] = [
        a for a in await h.emitted_contracts("FulfilmentsHeld") if a.order_id == "o-floor-hold-2"
    ]
    assert answer.held == (fulfilment_id,), "partly shipped: the rest is held"
    refused = await client.post(f"/v1/parcels/{second}/ship")
    assert refused.status_code == 409 and error(refused) == "fulfilment_on_hold"
    assert refused.json()["error"]["details"]["fulfilment_id"] == fulfilment_id
    assert error(await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")) == (
        "fulfilment_on_hold"
    )
    assert len(await h.emitted("FulfilmentShipped")) == 1

    await h.deliver(ReleaseFulfilments(order_id="o-floor-hold-2"), correlation_id="o-floor-hold-2")
    assert (await client.post(f"/v1/parcels/{second}/ship")).status_code == 200
    shipped = await h.emitted_contracts("FulfilmentShipped")
    assert [s.fulfilment_complete for s in shipped] == [False, True]

    await h.deliver(ReleaseFulfilments(order_id="o-floor-hold-1"), correlation_id="o-floor-hold-1")
    [planned] = (
        await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "single_order"})
    ).json()["pick_lists"]
    assert waiting in {p["fulfilment_id"] for s in planned["stops"] for p in s["puts"]}


async def test_a_pick_list_holding_a_held_fulfilment_cannot_be_claimed(
    h: ComponentHarness, client: httpx.AsyncClient
) -> None:
    fulfilment_id = await create(h, "o-floor-hold-3", ("MUG-1", 1))
    [pick_list] = (
        await client.post("/v1/locations/berlin/pick-lists", json={"strategy": "single_order"})
    ).json()["pick_lists"]
    await h.deliver(
        HoldFulfilments(order_id="o-floor-hold-3", reason="customer_request"),
        correlation_id="o-floor-hold-3",
    )
    list_id = pick_list["pick_list_id"]
    refused = await client.post(f"/v1/pick-lists/{list_id}/claim")
    assert refused.status_code == 409 and error(refused) == "fulfilment_on_hold"
    assert refused.json()["error"]["details"]["fulfilment_id"] == fulfilment_id

    await h.deliver(ReleaseFulfilments(order_id="o-floor-hold-3"), correlation_id="o-floor-hold-3")
    assert (await client.post(f"/v1/pick-lists/{list_id}/claim")).status_code == 200
