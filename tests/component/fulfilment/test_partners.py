"""3PL and dropship fulfilment on a real Postgres, with a real HTTP server standing in for the
partner: requests written with the fulfilment and sent once, retried then dead then retried by
an operator, signed shipment confirmations shipping parcel by parcel, deadlines."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pypdfium2 as pdfium
import pytest

from services.fulfilment import handlers
from services.fulfilment.app import build
from services.fulfilment.domain import fulfilment_id_for
from services.fulfilment.partners import deadlines, dispatch
from services.fulfilment.partners.model import (
    cancellation_id_for,
    dispatch_id_for,
    parcel_id_for,
)
from services.fulfilment.settings import FulfilmentSettings
from shared.contracts.common import Address, Allocation
from shared.contracts.fulfilment import (
    FulfilmentShipped,
    PartnerFulfilmentCancelled,
    PartnerFulfilmentOverdue,
    PartnerFulfilmentRequested,
)
from shared.contracts.order_intake import (
    CancelFulfilment,
    CreateFulfilment,
    HoldFulfilments,
    ReleaseFulfilments,
)
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.partner_receiver import PartnerReceiver

pytestmark = pytest.mark.component

THREE_PL = "3pl-east"
SUPPLIER = "acme-dropship"
SECRETS = {THREE_PL: "3pl-east-secret", SUPPLIER: "acme-secret"}
SHIP_TO = Address(line1="1 Main St", city="Springfield", postal_code="12345", country="US")
PARTNER_ADDRESS = {
    "name": "East Fulfilment LLC",
    "line1": "100 Dock Rd",
    "city": "Newark",
    "postal_code": "07102",
    "country": "US",
}


def partner_settings() -> FulfilmentSettings:
    return FulfilmentSettings(
        partner_secrets=SECRETS,
        partner_max_attempts=3,
        partner_retry_initial_s=0.01,
        partner_retry_max_s=0.02,
        partner_http_timeout_s=5,
        partner_poll_interval_s=0.05,
    )


@pytest.fixture
async def h(infra: Infra) -> AsyncIterator[ComponentHarness]:
    async for harness in start_harness(infra, build(partner_settings())):
        yield harness


@pytest.fixture
def receiver() -> Iterator[PartnerReceiver]:
    started = PartnerReceiver(SECRETS[THREE_PL].encode()).start()
    yield started
    started.stop()


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=5) as client:
        yield client


def settings_of(h: ComponentHarness) -> FulfilmentSettings:
    return h.spec.settings_as(FulfilmentSettings)


async def add_partner(
    h: ComponentHarness, code: str, kind: str, connector: dict[str, Any] | None
) -> None:
    async with h.http() as client:
        response = await client.put(
            f"/v1/locations/{code}",
            json={"kind": kind, "name": f"{code} partner", "address": PARTNER_ADDRESS},
        )
        assert response.status_code in (200, 201), response.text
        if connector is not None:
            response = await client.put(f"/v1/locations/{code}/connector", json=connector)
            assert response.status_code in (200, 201), response.text


def create_command(order_id: str, *allocations: tuple[str, str, int]) -> CreateFulfilment:
    return CreateFulfilment(
        order_id=order_id,
        allocations=tuple(
            Allocation(line_id=f"l{i}", sku=sku, location=location, quantity=quantity)
            for i, (sku, location, quantity) in enumerate(allocations)
        ),
        shipping_address=SHIP_TO,
        shipping_method="express",
    )


async def send(h: ComponentHarness, client: httpx.AsyncClient) -> int:
    return await dispatch.send_due(h.pool, settings_of(h), client)


async def dispatch_row(h: ComponentHarness, fulfilment_id: str) -> dict[str, Any]:
    [row] = await h.fetch(
        "SELECT dispatch_id, status, attempts, last_error, po_number, confirmed_at, overdue_at"
        " FROM partner_dispatches WHERE fulfilment_id = $1 AND request_kind <> 'cancellation'",
        fulfilment_id,
    )
    return dict(row)


async def cancellation_rows(h: ComponentHarness, fulfilment_id: str) -> list[dict[str, Any]]:
    rows = await h.fetch(
        "SELECT dispatch_id, status, attempts, po_number FROM partner_dispatches"
        " WHERE fulfilment_id = $1 AND request_kind = 'cancellation'",
        fulfilment_id,
    )
    return [dict(r) for r in rows]


def signed(
    body: Any, secret: str = SECRETS[THREE_PL], at: float | None = None
) -> tuple[bytes, dict[str, str]]:
    """The partner's side: sign `timestamp.body` with HMAC-SHA256 (computed here)."""
    raw = json.dumps(body).encode()
    timestamp = str(int(at if at is not None else time.time()))
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + raw, hashlib.sha256).hexdigest()
    return raw, {
        "Content-Type": "application/json",
        "X-OMS-Timestamp": timestamp,
        "X-OMS-Signature": f"sha256={digest}",
    }


async def post_confirmation(
    h: ComponentHarness, location: str, raw: bytes, headers: dict[str, str]
) -> httpx.Response:
    async with h.anonymous() as client:
        return await client.post(f"/v1/partners/{location}/shipments", content=raw, headers=headers)


def error_code(response: httpx.Response) -> str:
    code: str = response.json()["error"]["code"]
    return code


def webhook_connector(receiver: PartnerReceiver, deadline_hours: int = 24) -> dict[str, Any]:
    return {"kind": "webhook", "url": receiver.url, "deadline_hours": deadline_hours}


# --- outbound: one signed request per partner fulfilment -------------------------------------


async def test_a_3pl_receives_one_signed_request_however_often_it_is_asked(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    command = create_command("o-1", ("SKU-A", THREE_PL, 2), ("SKU-B", "WH-1", 1))
    envelope = await h.deliver(command, correlation_id="o-1")
    await h.deliver(command, correlation_id="o-1", envelope=envelope)  # redelivered
    await h.deliver(command, correlation_id="o-1")  # re-sent by the saga: a new message id

    # Two senders at once (two replicas), then more passes: one request.
    assert sorted(await asyncio.gather(send(h, http), send(h, http))) == [0, 1]
    assert await send(h, http) == 0
    assert await send(h, http) == 0

    [request] = receiver.received
    assert request.signature_valid
    fid = fulfilment_id_for("o-1", THREE_PL)
    assert request.headers["x-oms-dispatch-id"] == dispatch_id_for(fid)
    body = request.json()
    assert body["request_kind"] == "fulfilment_request"
    assert (body["order_id"], body["fulfilment_id"], body["location"]) == ("o-1", fid, THREE_PL)
    assert body["lines"] == [{"sku": "SKU-A", "quantity": 2}]
    assert body["ship_to"]["postal_code"] == "12345"
    assert body["shipping_method"] == "express"
    assert body["confirm_at"] == f"/v1/partners/{THREE_PL}/shipments"
    assert "purchase_order" not in body

    row = await dispatch_row(h, fid)
    assert (row["status"], row["attempts"], row["last_error"]) == ("sent", 1, None)
    # Only the partner's fulfilment has a request; the saga's answer is unchanged.
    assert len(await h.fetch("SELECT 1 FROM partner_dispatches")) == 1
    assert len(await h.emitted("FulfilmentCreated")) == 2


async def test_the_background_sender_delivers_by_itself(
    h: ComponentHarness, receiver: PartnerReceiver
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    assert h.runtime is not None
    job = asyncio.create_task(dispatch.dispatch_sender(settings_of(h))(h.runtime))
    try:
        await h.deliver(create_command("o-bg", ("SKU-A", THREE_PL, 1)), correlation_id="o-bg")
        for _ in range(200):
            if receiver.received:
                break
            await asyncio.sleep(0.05)
    finally:
        job.cancel()
        await asyncio.gather(job, return_exceptions=True)
    assert [r.signature_valid for r in receiver.received] == [True]


async def test_the_new_consumer_step_survives_a_crash_before_commit_and_a_redelivery_after(
    h: ComponentHarness,
    receiver: PartnerReceiver,
    http: httpx.AsyncClient,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Crash before the commit: the request is rolled back with the fulfilment and written once
    by the retry; a redelivery after the commit (offsets not committed) is dropped."""
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    real = dispatch.dispatch_new
    crashes = []

    async def crash_once(uow: Any, fulfilments: Any) -> None:
        await real(uow, fulfilments)
        if not crashes:
            crashes.append(True)
            raise ConnectionResetError("the process died before the commit")

    monkeypatch.setattr(handlers.partners, "dispatch_new", crash_once)
    command = create_command("o-crash", ("SKU-A", THREE_PL, 1))
    envelope = await h.deliver(command, correlation_id="o-crash")
    assert crashes and not h.dead_letters
    await h.deliver(command, correlation_id="o-crash", envelope=envelope)

    assert await send(h, http) == 1
    assert await send(h, http) == 0
    assert len(receiver.received) == 1
    assert len(await h.fetch("SELECT 1 FROM partner_dispatches")) == 1
    assert len(await h.emitted("FulfilmentCreated")) == 1


async def test_a_partner_that_is_down_is_retried_then_dead_then_retried_by_an_operator(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    receiver.stop()
    await h.deliver(create_command("o-2", ("SKU-A", THREE_PL, 1)), correlation_id="o-2")
    fid = fulfilment_id_for("o-2", THREE_PL)

    assert await send(h, http) == 1
    row = await dispatch_row(h, fid)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "ConnectError" in row["last_error"]
    for _ in range(100):  # the backoff is 10-20 ms here
        if (await dispatch_row(h, fid))["status"] == "dead":
            break
        await send(h, http)
        await asyncio.sleep(0.01)
    row = await dispatch_row(h, fid)
    assert (row["status"], row["attempts"]) == ("dead", 3)
    assert row["last_error"].startswith("after 3 attempts: ConnectError")
    assert await send(h, http) == 0  # dead is dead

    async with h.http() as client:
        dead = (await client.get("/v1/partners/dispatches", params={"status": "dead"})).json()
        assert [d["dispatch_id"] for d in dead["dispatches"]] == [row["dispatch_id"]]
        assert dead["dispatches"][0]["fulfilment_id"] == fid
        receiver.start()  # up again, on the same port
        retried = await client.post(f"/v1/partners/dispatches/{row['dispatch_id']}/retry")
        assert retried.status_code == 200, retried.text
        assert (retried.json()["status"], retried.json()["attempts"]) == ("pending", 0)
        assert await send(h, http) == 1
        assert [r.signature_valid for r in receiver.received] == [True]
        assert (await dispatch_row(h, fid))["status"] == "sent"
        again = await client.post(f"/v1/partners/dispatches/{row['dispatch_id']}/retry")
        assert (again.status_code, error_code(again)) == (409, "dispatch_sent")
        unknown = await client.post("/v1/partners/dispatches/nope/retry")
        assert (unknown.status_code, error_code(unknown)) == (404, "dispatch_not_found")
        assert (await client.get("/v1/partners/dispatches?status=dead")).json() == {
            "dispatches": []
        }


async def test_an_error_answer_is_retried_with_backoff(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    receiver.answer = 503
    await h.deliver(create_command("o-3", ("SKU-A", THREE_PL, 1)), correlation_id="o-3")
    fid = fulfilment_id_for("o-3", THREE_PL)
    assert await send(h, http) == 1
    row = await dispatch_row(h, fid)
    assert (row["status"], row["last_error"][:8]) == ("pending", "HTTP 503")
    receiver.answer = 200
    await asyncio.sleep(0.05)
    assert await send(h, http) == 1
    assert (await dispatch_row(h, fid))["status"] == "sent"
    assert len(receiver.received) == 2


async def test_a_request_whose_fulfilment_was_cancelled_first_is_withdrawn(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    await h.deliver(create_command("o-4", ("SKU-A", THREE_PL, 1)), correlation_id="o-4")
    await h.deliver(CancelFulfilment(order_id="o-4", reason="customer"), correlation_id="o-4")
    assert await send(h, http) == 1
    assert (await dispatch_row(h, fulfilment_id_for("o-4", THREE_PL)))["status"] == "withdrawn"
    assert receiver.received == []
    # Nothing went out, so there is nothing to cancel at the partner.
    assert await cancellation_rows(h, fulfilment_id_for("o-4", THREE_PL)) == []
    assert await send(h, http) == 0
    assert receiver.received == []


async def test_a_cancel_after_the_request_went_out_reaches_the_partner_once(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    await h.deliver(
        create_command("o-c", ("SKU-A", THREE_PL, 2), ("SKU-B", "WH-1", 1)), correlation_id="o-c"
    )
    assert await send(h, http) == 1
    cancel = CancelFulfilment(order_id="o-c", reason="customer changed their mind")
    envelope = await h.deliver(cancel, correlation_id="o-c")
    await h.deliver(cancel, correlation_id="o-c", envelope=envelope)  # redelivered
    await h.deliver(cancel, correlation_id="o-c")  # re-sent: a new message id

    # Two senders at once, then more passes: one cancellation.
    assert sorted(await asyncio.gather(send(h, http), send(h, http))) == [0, 1]
    assert await send(h, http) == 0

    first, cancellation = receiver.received
    assert first.json()["request_kind"] == "fulfilment_request"
    assert cancellation.signature_valid
    fid = fulfilment_id_for("o-c", THREE_PL)
    assert cancellation.headers["x-oms-dispatch-id"] == cancellation_id_for(fid)
    body = cancellation.json()
    assert body["request_kind"] == "cancellation"
    assert (body["order_id"], body["fulfilment_id"], body["location"]) == ("o-c", fid, THREE_PL)
    assert body["cancels_dispatch_id"] == dispatch_id_for(fid)
    assert body["reason"] == "customer changed their mind"
    assert "purchase_order" not in body
    [row] = await cancellation_rows(h, fid)
    assert (row["status"], row["attempts"]) == ("sent", 1)
    assert (await dispatch_row(h, fid))["status"] == "sent"  # the request stays as it went
    # The floor's fulfilment has no partner: nothing for it.
    assert (
        await h.fetch(
            "SELECT 1 FROM partner_dispatches WHERE fulfilment_id = $1",
            fulfilment_id_for("o-c", "WH-1"),
        )
        == []
    )


async def test_a_dropship_supplier_is_told_which_purchase_order_is_cancelled(
    h: ComponentHarness, http: httpx.AsyncClient
) -> None:
    supplier = PartnerReceiver(SECRETS[SUPPLIER].encode()).start()
    try:
        await add_partner(h, SUPPLIER, "dropship_supplier", webhook_connector(supplier))
        await h.deliver(create_command("o-pc", ("MUG-1", SUPPLIER, 1)), correlation_id="o-pc")
        assert await send(h, http) == 1
        await h.deliver(CancelFulfilment(order_id="o-pc", reason="fraud"), correlation_id="o-pc")
        assert await send(h, http) == 1
    finally:
        supplier.stop()
    fid = fulfilment_id_for("o-pc", SUPPLIER)
    po_number = (await dispatch_row(h, fid))["po_number"]
    _, cancellation = supplier.received
    assert cancellation.signature_valid
    body = cancellation.json()
    assert (body["request_kind"], body["reason"]) == ("cancellation", "fraud")
    assert body["purchase_order"] == {"number": po_number}


async def test_a_partner_without_a_connector_is_dead_at_once_until_one_is_configured(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", None)
    await h.deliver(create_command("o-5", ("SKU-A", THREE_PL, 1)), correlation_id="o-5")
    row = await dispatch_row(h, fulfilment_id_for("o-5", THREE_PL))
    assert row["status"] == "dead" and "no connector" in row["last_error"]
    async with h.http() as client:
        refused = await client.post(f"/v1/partners/dispatches/{row['dispatch_id']}/retry")
        assert (refused.status_code, error_code(refused)) == (409, "connector_missing")
        await client.put(f"/v1/locations/{THREE_PL}/connector", json=webhook_connector(receiver))
        retried = await client.post(f"/v1/partners/dispatches/{row['dispatch_id']}/retry")
        assert retried.status_code == 200, retried.text
    assert await send(h, http) == 1
    assert len(receiver.received) == 1


# --- dropship: the purchase order ------------------------------------------------------------


async def test_a_dropship_supplier_gets_a_purchase_order_with_its_pdf(
    h: ComponentHarness, http: httpx.AsyncClient
) -> None:
    supplier = PartnerReceiver(SECRETS[SUPPLIER].encode()).start()
    try:
        await add_partner(h, SUPPLIER, "dropship_supplier", webhook_connector(supplier))
        async with h.http() as client:
            await client.put(
                "/v1/items/MUG-1",
                json={
                    "barcode": "4006381333931",
                    "description": "Stoneware mug",
                    "dimensions": {"length_mm": 100, "width_mm": 90, "height_mm": 110},
                    "weight_g": 350,
                },
            )
        await h.deliver(
            create_command("o-po", ("MUG-1", SUPPLIER, 2), ("PEN-9", SUPPLIER, 5)),
            correlation_id="o-po",
        )
        assert await send(h, http) == 1
    finally:
        supplier.stop()
    [request] = supplier.received
    assert request.signature_valid
    body = request.json()
    row = await dispatch_row(h, fulfilment_id_for("o-po", SUPPLIER))
    assert body["request_kind"] == "purchase_order"
    assert body["purchase_order"]["number"] == row["po_number"]
    assert row["po_number"].startswith("PO-")
    assert body["purchase_order"]["supplier"]["code"] == SUPPLIER
    assert body["lines"] == [
        {"sku": "MUG-1", "quantity": 2, "description": "Stoneware mug"},
        {"sku": "PEN-9", "quantity": 5},
    ]
    pdf = base64.b64decode(body["purchase_order"]["pdf_base64"])
    document = pdfium.PdfDocument(pdf)
    try:
        text = document[0].get_textpage().get_text_range()
    finally:
        document.close()
    for expected in (row["po_number"], "MUG-1", "PEN-9", "Stoneware mug", "Springfield"):
        assert expected in text


async def test_a_kafka_connector_publishes_the_request_keyed_by_location(
    h: ComponentHarness, http: httpx.AsyncClient
) -> None:
    await add_partner(h, SUPPLIER, "dropship_supplier", {"kind": "kafka", "deadline_hours": 12})
    await h.deliver(create_command("o-k", ("SKU-A", SUPPLIER, 3)), correlation_id="o-k")
    fid = fulfilment_id_for("o-k", SUPPLIER)
    [published] = await h.emitted_contracts("PartnerFulfilmentRequested")
    assert isinstance(published, PartnerFulfilmentRequested)
    assert (published.fulfilment_id, published.location) == (fid, SUPPLIER)
    assert published.request_kind == "purchase_order"
    assert published.purchase_order is not None
    assert base64.b64decode(published.purchase_order.pdf_base64).startswith(b"%PDF")
    assert published.confirm_by - published.requested_at == timedelta(hours=12)
    [row] = await h.fetch(
        "SELECT topic, msg_key FROM outbox WHERE msg_type = 'PartnerFulfilmentRequested'"
    )
    assert (row["topic"], row["msg_key"]) == ("oms.fulfilment.partners.v1", SUPPLIER)
    assert (await dispatch_row(h, fid))["status"] == "published"
    assert await send(h, http) == 0


async def test_a_kafka_connector_publishes_one_cancellation(
    h: ComponentHarness, http: httpx.AsyncClient
) -> None:
    await add_partner(h, SUPPLIER, "dropship_supplier", {"kind": "kafka", "deadline_hours": 12})
    await h.deliver(create_command("o-kc", ("SKU-A", SUPPLIER, 3)), correlation_id="o-kc")
    fid = fulfilment_id_for("o-kc", SUPPLIER)
    cancel = CancelFulfilment(order_id="o-kc", reason="customer")
    envelope = await h.deliver(cancel, correlation_id="o-kc")
    await h.deliver(cancel, correlation_id="o-kc", envelope=envelope)  # redelivered
    await h.deliver(cancel, correlation_id="o-kc")  # re-sent

    [published] = await h.emitted_contracts("PartnerFulfilmentCancelled")
    assert isinstance(published, PartnerFulfilmentCancelled)
    assert published.dispatch_id == cancellation_id_for(fid)
    assert published.cancels_dispatch_id == dispatch_id_for(fid)
    assert (published.order_id, published.fulfilment_id) == ("o-kc", fid)
    assert (published.location, published.reason) == (SUPPLIER, "customer")
    po_number = (await dispatch_row(h, fid))["po_number"]
    assert po_number is not None
    assert published.po_number == po_number
    [row] = await h.fetch(
        "SELECT topic, msg_key FROM outbox WHERE msg_type = 'PartnerFulfilmentCancelled'"
    )
    assert (row["topic"], row["msg_key"]) == ("oms.fulfilment.partners.v1", SUPPLIER)
    [cancellation] = await cancellation_rows(h, fid)
    assert cancellation["status"] == "published"
    assert await send(h, http) == 0


# --- inbound: the signed shipment confirmation ----------------------------------------------


async def _partner_fulfilment(h: ComponentHarness, order_id: str) -> str:
    await add_partner(h, THREE_PL, "3pl", {"kind": "kafka"})
    await h.deliver(
        create_command(order_id, ("SKU-A", THREE_PL, 2), ("SKU-B", THREE_PL, 1)),
        correlation_id=order_id,
    )
    return fulfilment_id_for(order_id, THREE_PL)


def two_parcels(fid: str) -> dict[str, Any]:
    return {
        "fulfilment_id": fid,
        "parcels": [
            {
                "carrier": "DHL",
                "tracking_number": "JD0001",
                "tracking_url": "https://track.example/JD0001",
                "lines": [{"sku": "SKU-A", "quantity": 2}],
            },
            {
                "carrier": "ups",
                "tracking_number": "1Z0002",
                "lines": [{"sku": "SKU-B", "quantity": 1}],
            },
        ],
    }


async def test_a_signed_confirmation_ships_each_parcel_and_a_replay_changes_nothing(
    h: ComponentHarness,
) -> None:
    fid = await _partner_fulfilment(h, "o-6")
    raw, headers = signed(two_parcels(fid))
    answer = await post_confirmation(h, THREE_PL, raw, headers)
    assert answer.status_code == 200, answer.text
    assert answer.json()["fulfilment_status"] == "shipped"
    assert [p["tracking_number"] for p in answer.json()["parcels"]] == ["JD0001", "1Z0002"]

    first, second = await h.emitted_contracts("FulfilmentShipped")
    assert isinstance(first, FulfilmentShipped) and isinstance(second, FulfilmentShipped)
    assert first.shipment_id == parcel_id_for(fid, "JD0001")
    assert second.shipment_id == parcel_id_for(fid, "1Z0002")
    assert (first.carrier, first.tracking_number, first.fulfilment_complete) == (
        "dhl",
        "JD0001",
        False,
    )
    assert first.tracking_url == "https://track.example/JD0001"
    assert [(ln.sku, ln.quantity) for ln in first.lines] == [("SKU-A", 2)]
    assert (second.carrier, second.fulfilment_complete) == ("ups", True)
    assert (await dispatch_row(h, fid))["confirmed_at"] is not None

    replay = await post_confirmation(h, THREE_PL, raw, headers)
    assert (replay.status_code, replay.json()) == (200, answer.json())
    assert len(await h.emitted("FulfilmentShipped")) == 2
    [count] = await h.fetch("SELECT count(*) AS n FROM parcels WHERE fulfilment_id = $1", fid)
    assert count["n"] == 2
    async with h.http() as client:
        # The partner's parcels are parcels like any other: listed (in no box of ours) ...
        listed = await client.get(f"/v1/fulfilments/{fid}/parcels")
        assert listed.status_code == 200, listed.text
        assert [
            (p["tracking_number"], p["box"], p["status"]) for p in listed.json()["parcels"]
        ] == [
            ("JD0001", None, "shipped"),
            ("1Z0002", None, "shipped"),
        ]
        # ... and found by the carrier's tracking updates.
        update = await client.post(
            "/v1/carriers/dhl/events", json={"tracking_number": "JD0001", "status": "in_transit"}
        )
    assert update.status_code == 200, update.text


async def test_parcels_confirmed_one_at_a_time(h: ComponentHarness) -> None:
    fid = await _partner_fulfilment(h, "o-7")
    body = two_parcels(fid)
    first = {"fulfilment_id": fid, "parcels": body["parcels"][:1]}
    answer = await post_confirmation(h, THREE_PL, *signed(first))
    assert answer.json()["fulfilment_status"] == "partially_shipped"
    # The partner then sends the whole list: only the new parcel ships.
    answer = await post_confirmation(h, THREE_PL, *signed(body))
    assert answer.json()["fulfilment_status"] == "shipped"
    shipped = await h.emitted_contracts("FulfilmentShipped")
    assert [s.fulfilment_complete for s in shipped] == [False, True]


async def test_a_bad_or_missing_signature_is_refused_and_changes_nothing(
    h: ComponentHarness,
) -> None:
    fid = await _partner_fulfilment(h, "o-8")
    raw, headers = signed(two_parcels(fid), secret="not-the-secret")
    refused = await post_confirmation(h, THREE_PL, raw, headers)
    assert (refused.status_code, error_code(refused)) == (401, "invalid_signature")

    raw, headers = signed(two_parcels(fid))
    tampered = raw.replace(b"JD0001", b"JD0009")
    refused = await post_confirmation(h, THREE_PL, tampered, headers)
    assert (refused.status_code, error_code(refused)) == (401, "invalid_signature")
    unsigned = {k: v for k, v in headers.items() if k != "X-OMS-Signature"}
    refused = await post_confirmation(h, THREE_PL, raw, unsigned)
    assert (refused.status_code, error_code(refused)) == (401, "invalid_signature")
    # Signed with another partner's secret, posted as that partner: not its fulfilment.
    other = await post_confirmation(h, SUPPLIER, *signed(two_parcels(fid), SECRETS[SUPPLIER]))
    assert other.status_code == 404

    stale = await post_confirmation(h, THREE_PL, *signed(two_parcels(fid), at=time.time() - 600))
    assert (stale.status_code, error_code(stale)) == (401, "stale_signature")

    assert await h.emitted("FulfilmentShipped") == []
    assert await h.fetch("SELECT 1 FROM parcels") == []
    [row] = await h.fetch("SELECT status FROM fulfilments WHERE fulfilment_id = $1", fid)
    assert row["status"] == "created"


async def test_confirmations_that_do_not_fit_are_refused_with_a_stable_code(
    h: ComponentHarness,
) -> None:
    fid = await _partner_fulfilment(h, "o-9")
    too_many = {
        "fulfilment_id": fid,
        "parcels": [
            {"carrier": "dhl", "tracking_number": "T1", "lines": [{"sku": "SKU-A", "quantity": 1}]},
            {"carrier": "dhl", "tracking_number": "T2", "lines": [{"sku": "SKU-B", "quantity": 2}]},
        ],
    }
    refused = await post_confirmation(h, THREE_PL, *signed(too_many))
    assert (refused.status_code, error_code(refused)) == (422, "lines_exceed_fulfilment")
    assert refused.json()["error"]["details"]["sku"] == "SKU-B"
    assert "SKU-B" in refused.json()["error"]["message"]

    unknown = await post_confirmation(h, THREE_PL, *signed({**too_many, "fulfilment_id": "nope"}))
    assert (unknown.status_code, error_code(unknown)) == (404, "fulfilment_not_found")

    await h.deliver(create_command("o-10", ("SKU-A", "WH-1", 1)), correlation_id="o-10")
    elsewhere = fulfilment_id_for("o-10", "WH-1")
    body = {"fulfilment_id": elsewhere, "parcels": too_many["parcels"][:1]}
    refused = await post_confirmation(h, THREE_PL, *signed(body))
    assert (refused.status_code, error_code(refused)) == (404, "fulfilment_not_found")

    _, headers = signed(None)
    garbage = b"{not json"
    digest = hmac.new(
        SECRETS[THREE_PL].encode(),
        headers["X-OMS-Timestamp"].encode() + b"." + garbage,
        hashlib.sha256,
    ).hexdigest()
    headers["X-OMS-Signature"] = f"sha256={digest}"
    malformed = await post_confirmation(h, THREE_PL, garbage, headers)
    assert (malformed.status_code, error_code(malformed)) == (400, "malformed_json")

    for bad in (
        {"fulfilment_id": fid},
        {"fulfilment_id": fid, "parcels": []},
        {
            "fulfilment_id": fid,
            "parcels": [{"carrier": "dhl", "tracking_number": "T", "lines": []}],
        },
        {
            "fulfilment_id": fid,
            "parcels": [
                {
                    "carrier": "dhl",
                    "tracking_number": "T",
                    "lines": [{"sku": "SKU-A", "quantity": 0}],
                }
            ],
        },
        {
            "fulfilment_id": fid,
            "parcels": [
                {
                    "carrier": "dhl",
                    "tracking_number": "T",
                    "lines": [{"sku": "SKU-A", "quantity": 1}],
                },
                {
                    "carrier": "ups",
                    "tracking_number": "T",
                    "lines": [{"sku": "SKU-B", "quantity": 1}],
                },
            ],
        },
        [1, 2, 3],
        "text",
    ):
        answer = await post_confirmation(h, THREE_PL, *signed(bad))
        assert (answer.status_code, error_code(answer)) == (422, "validation_failed"), bad

    assert await h.emitted("FulfilmentShipped") == []

    await h.deliver(CancelFulfilment(order_id="o-9", reason="customer"), correlation_id="o-9")
    cancelled = await post_confirmation(h, THREE_PL, *signed(two_parcels(fid)))
    assert (cancelled.status_code, error_code(cancelled)) == (409, "fulfilment_cancelled")
    assert await h.fetch("SELECT 1 FROM parcels") == []


async def test_an_operator_may_confirm_with_a_token_instead_of_a_signature(
    h: ComponentHarness,
) -> None:
    fid = await _partner_fulfilment(h, "o-11")
    async with h.http("warehouse") as client:
        answer = await client.post(f"/v1/partners/{THREE_PL}/shipments", json=two_parcels(fid))
    assert answer.status_code == 200, answer.text
    async with h.http("viewer") as client:
        refused = await client.post(f"/v1/partners/{THREE_PL}/shipments", json=two_parcels(fid))
    assert (refused.status_code, error_code(refused)) == (403, "forbidden")
    assert len(await h.emitted("FulfilmentShipped")) == 2


# --- deadlines -----------------------------------------------------------------------------


async def test_an_overdue_partner_is_reported_once(h: ComponentHarness) -> None:
    await add_partner(h, THREE_PL, "3pl", {"kind": "kafka", "deadline_hours": 24})
    for order_id in ("o-late", "o-confirmed", "o-cancelled"):
        await h.deliver(create_command(order_id, ("SKU-A", THREE_PL, 1)), correlation_id=order_id)
    confirmed = fulfilment_id_for("o-confirmed", THREE_PL)
    body = {
        "fulfilment_id": confirmed,
        "parcels": [
            {"carrier": "dhl", "tracking_number": "C1", "lines": [{"sku": "SKU-A", "quantity": 1}]}
        ],
    }
    assert (await post_confirmation(h, THREE_PL, *signed(body))).status_code == 200
    await h.deliver(
        CancelFulfilment(order_id="o-cancelled", reason="customer"), correlation_id="o-cancelled"
    )
    settings = settings_of(h)

    assert await deadlines.sweep_overdue(h.pool, settings, datetime.now(UTC)) == 0
    later = datetime.now(UTC) + timedelta(hours=25)
    assert await deadlines.sweep_overdue(h.pool, settings, later) == 1
    assert await deadlines.sweep_overdue(h.pool, settings, later + timedelta(hours=1)) == 0

    [overdue] = await h.emitted_contracts("PartnerFulfilmentOverdue")
    assert isinstance(overdue, PartnerFulfilmentOverdue)
    late = fulfilment_id_for("o-late", THREE_PL)
    assert (overdue.order_id, overdue.fulfilment_id, overdue.location) == ("o-late", late, THREE_PL)
    assert overdue.deadline_at - overdue.requested_at == timedelta(hours=24)
    [envelope] = await h.emitted("PartnerFulfilmentOverdue")
    assert envelope.correlation_id == "o-late"
    assert (await dispatch_row(h, late))["overdue_at"] is not None
    # Alert, never cancel.
    [row] = await h.fetch("SELECT status FROM fulfilments WHERE fulfilment_id = $1", late)
    assert row["status"] == "created"


# --- connectors ----------------------------------------------------------------------------


async def test_connector_setup(h: ComponentHarness, receiver: PartnerReceiver) -> None:
    await add_partner(h, THREE_PL, "3pl", None)
    async with h.http() as client:
        await client.put(
            "/v1/locations/WH-1",
            json={"kind": "warehouse", "name": "Main", "address": PARTNER_ADDRESS},
        )
        created = await client.put(
            f"/v1/locations/{THREE_PL}/connector", json=webhook_connector(receiver)
        )
        assert created.status_code == 201, created.text
        replaced = await client.put(
            f"/v1/locations/{THREE_PL}/connector", json={"kind": "kafka", "deadline_hours": 6}
        )
        assert replaced.status_code == 200
        shown = (await client.get(f"/v1/locations/{THREE_PL}/connector")).json()
        assert shown == {
            "location": THREE_PL,
            "kind": "kafka",
            "url": None,
            "deadline_hours": 6,
            "secret_configured": True,
        }
        for body, code in (
            ({"kind": "webhook"}, "url_required"),
            ({"kind": "webhook", "url": "http://3pl.example.com/hook"}, "invalid_url"),
            ({"kind": "kafka", "url": "https://3pl.example.com/hook"}, "url_not_allowed"),
            ({"kind": "carrier-pigeon"}, "validation_failed"),
            ({"kind": "kafka", "deadline_hours": 0}, "validation_failed"),
        ):
            refused = await client.put(f"/v1/locations/{THREE_PL}/connector", json=body)
            assert (refused.status_code, error_code(refused)) == (422, code), body
        own = await client.put("/v1/locations/WH-1/connector", json={"kind": "kafka"})
        assert (own.status_code, error_code(own)) == (409, "location_not_a_partner")
        missing = await client.put("/v1/locations/nowhere/connector", json={"kind": "kafka"})
        assert (missing.status_code, error_code(missing)) == (404, "location_not_found")
    async with h.http("viewer") as client:
        forbidden = await client.put(f"/v1/locations/{THREE_PL}/connector", json={"kind": "kafka"})
        assert forbidden.status_code == 403


async def test_a_held_order_sends_its_partner_request_only_once_released(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    await h.deliver(
        HoldFulfilments(order_id="o-held", reason="address_check"), correlation_id="o-held"
    )
    await h.deliver(create_command("o-held", ("SKU-A", THREE_PL, 1)), correlation_id="o-held")
    assert await send(h, http) == 0
    assert receiver.received == [] and await h.fetch("SELECT 1 FROM partner_dispatches") == []

    await h.deliver(ReleaseFulfilments(order_id="o-held"), correlation_id="o-held")
    await h.deliver(ReleaseFulfilments(order_id="o-held"), correlation_id="o-held")  # re-sent
    assert await send(h, http) == 1
    assert len(receiver.received) == 1
    assert len(await h.fetch("SELECT 1 FROM partner_dispatches")) == 1


async def test_a_request_already_sent_is_not_recalled_by_a_hold(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    await h.deliver(create_command("o-sent", ("SKU-A", THREE_PL, 1)), correlation_id="o-sent")
    assert await send(h, http) == 1
    await h.deliver(HoldFulfilments(order_id="o-sent", reason="fraud"), correlation_id="o-sent")
    [held] = await h.emitted_contracts("FulfilmentsHeld")
    fid = fulfilment_id_for("o-sent", THREE_PL)
    assert held.held == (fid,) and held.not_recalled == (fid,)


async def test_a_pending_request_waits_while_held(
    h: ComponentHarness, receiver: PartnerReceiver, http: httpx.AsyncClient
) -> None:
    await add_partner(h, THREE_PL, "3pl", webhook_connector(receiver))
    await h.deliver(create_command("o-wait", ("SKU-A", THREE_PL, 1)), correlation_id="o-wait")
    await h.deliver(HoldFulfilments(order_id="o-wait", reason="fraud"), correlation_id="o-wait")
    [held] = await h.emitted_contracts("FulfilmentsHeld")
    assert held.not_recalled == (), "not sent yet: it waits"
    assert await send(h, http) == 0 and receiver.received == []
    await h.deliver(ReleaseFulfilments(order_id="o-wait"), correlation_id="o-wait")
    assert await send(h, http) == 1 and len(receiver.received) == 1
