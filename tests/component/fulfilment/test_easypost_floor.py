"""EasyPost as fulfilment's aggregator, against the local EasyPost double: a packed parcel is
rated and labelled through EasyPost, voided and labelled again, shipped, and delivered by
EasyPost's signed tracker webhook; a bad signature is 401 and changes nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
from pydantic import SecretStr

from services.fulfilment.app import build
from services.fulfilment.settings import FulfilmentSettings
from shared.contracts.common import Address, Allocation
from shared.contracts.order_intake import CreateFulfilment
from tests.support.component import ComponentHarness, start_harness
from tests.support.easypost_double import TEST_API_KEY, EasyPostDouble, event_body, sign
from tests.support.env import Infra
from tests.support.floor import ITEMS, pick_everything, set_up_floor

pytestmark = pytest.mark.component

WEBHOOK_SECRET = "easypost-webhook-secret"
ADDRESS = Address(line1="1 Main St", city="Charleston", postal_code="29401", country="US")


@pytest.fixture(scope="module")
def double() -> Iterator[EasyPostDouble]:
    with EasyPostDouble().serving() as running:
        yield running


@pytest.fixture
async def h(infra: Infra, double: EasyPostDouble) -> AsyncIterator[ComponentHarness]:
    settings = FulfilmentSettings(
        easypost_api_key=SecretStr(TEST_API_KEY),
        easypost_webhook_secret=SecretStr(WEBHOOK_SECRET),
        easypost_api_base=double.api_base,
    )
    async for harness in start_harness(infra, build(settings)):
        yield harness


async def test_a_parcel_labelled_voided_and_delivered_through_easypost(
    h: ComponentHarness, double: EasyPostDouble
) -> None:
    await h.deliver(
        CreateFulfilment(
            order_id="o-ep-1",
            allocations=(Allocation(line_id="l1", sku="MUG-1", location="berlin", quantity=2),),
            shipping_address=ADDRESS,
            shipping_method="standard",
        ),
        correlation_id="o-ep-1",
    )
    async with h.http() as client:
        await set_up_floor(client)
        [pick_list] = (await client.post("/v1/locations/berlin/pick-lists", json={})).json()[
            "pick_lists"
        ]
        await pick_everything(client, pick_list)
        fulfilment_id = pick_list["stops"][0]["puts"][0]["fulfilment_id"]
        [parcel] = (await client.post(f"/v1/fulfilments/{fulfilment_id}/parcels")).json()["parcels"]
        parcel_id = parcel["parcel_id"]
        await client.post(
            f"/v1/parcels/{parcel_id}/scan",
            json={"barcode": ITEMS["MUG-1"]["barcode"], "quantity": 2},
        )
        await client.post(f"/v1/parcels/{parcel_id}/close")

        ambiguous = await client.post(f"/v1/parcels/{parcel_id}/label")
        assert ambiguous.status_code == 422  # EUR table rates and USD EasyPost rates
        assert ambiguous.json()["error"]["code"] == "carrier_required"

        first = await client.post(f"/v1/parcels/{parcel_id}/label", json={"carrier": "easypost"})
        assert first.status_code == 200, first.text
        voided = await client.post(f"/v1/parcels/{parcel_id}/void")
        assert voided.json()["status"] == "packed" and voided.json()["tracking_number"] is None
        label = (
            await client.post(f"/v1/parcels/{parcel_id}/label", json={"carrier": "easypost"})
        ).json()
        assert label["tracking_number"] != first.json()["tracking_number"]
        pdf = await client.get(f"/v1/parcels/{parcel_id}/label.pdf")
        assert pdf.content.startswith(b"%PDF")
        assert (await client.post(f"/v1/parcels/{parcel_id}/ship")).status_code == 200

    refunds = [r for r in double.requests if r[1].endswith("/refund")]
    assert len(refunds) == 1
    [shipment_id] = [
        s
        for s, found in double.shipments.items()
        if found.get("tracking_code") == label["tracking_number"]
    ]
    body = event_body(double.tracker_updated(shipment_id, "delivered", "Delivered"))
    async with h.anonymous() as easypost:
        forged = await easypost.post(
            "/v1/carriers/easypost/webhooks",
            content=body,
            headers={"X-Hmac-Signature": sign(body, "not-the-secret")},
        )
        assert forged.status_code == 401
        assert not await h.emitted("FulfilmentDelivered")
        signed = await easypost.post(
            "/v1/carriers/easypost/webhooks",
            content=body,
            headers={"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)},
        )
        assert signed.status_code == 200, signed.text
        assert signed.json()["outcomes"] == ["delivered"]
    assert len(await h.emitted("FulfilmentDelivered")) == 1
