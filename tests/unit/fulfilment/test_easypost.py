"""The EasyPost carrier through the official SDK against a local EasyPost HTTP double (no
Kafka, no Postgres): rates, buying once, void, errors, and signed tracker webhooks."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import httpx
import pypdfium2
import pytest

from services.fulfilment.carriers.base import (
    CarrierError,
    InvalidWebhookSignature,
    ParcelSpec,
    PostalAddress,
    Rate,
)
from services.fulfilment.carriers.easypost import EasyPostCarrier, inches, ounces
from services.fulfilment.domain import TrackingStatus
from services.fulfilment.warehouse.model import Dimensions
from tests.support.easypost_double import (
    TEST_API_KEY,
    EasyPostDouble,
    event_body,
    sign,
    tracker_updated_event,
)
from tests.support.services import free_port

WEBHOOK_SECRET = "whsec-test-ﬁ-secret"  # the ligature is NFKD-normalised to "fi" when keying


@pytest.fixture(scope="module")
def double() -> Iterator[EasyPostDouble]:
    with EasyPostDouble().serving() as running:
        yield running


@pytest.fixture(autouse=True)
def fresh(double: EasyPostDouble) -> None:
    double.reset()


@pytest.fixture
def carrier(double: EasyPostDouble) -> EasyPostCarrier:
    return EasyPostCarrier(TEST_API_KEY, WEBHOOK_SECRET, api_base=double.api_base, timeout=5)


@pytest.fixture
def parcel() -> ParcelSpec:
    return ParcelSpec(
        reference="prc_7f3a9c",
        from_address=PostalAddress(
            name="OMS Warehouse Houston",
            line1="2800 Post Oak Blvd",
            line2="Dock 4",
            city="Houston",
            region="TX",
            postal_code="77056",
            country="US",
            phone="7135550100",
        ),
        to_address=PostalAddress(
            name="Ada Lovelace",
            line1="12 Meeting St",
            city="Charleston",
            region="SC",
            postal_code="29401",
            country="US",
            email="ada@example.com",
        ),
        dimensions=Dimensions(length_mm=300, width_mm=200, height_mm=100),
        weight_g=1000,
    )


@pytest.fixture
def tracker_updated_body() -> Callable[..., bytes]:
    """A realistic `tracker.updated` webhook body (raw bytes, as EasyPost posts it)."""

    def build(
        status: str = "delivered",
        message: str = "Delivered, In/At Mailbox",
        *,
        tracking_code: str = "9400100105442285876350",
        carrier: str = "USPS",
        at: datetime | None = None,
    ) -> bytes:
        return event_body(
            tracker_updated_event(
                tracking_code=tracking_code,
                status=status,
                message=message,
                carrier=carrier,
                shipment_id="shp_9af92e0bdd6a428f8aba267686ab9cae",
                earlier_details=[],
                at=at or datetime(2026, 3, 12, 14, 5, 9, tzinfo=UTC),
            )
        )

    return build


def shipment_id_of(rate: Rate) -> str:
    return rate.rate_id.partition(":")[0]


async def cheapest(carrier: EasyPostCarrier, parcel: ParcelSpec) -> Rate:
    return min(await carrier.rates(parcel), key=lambda rate: rate.amount)


# --- units ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mm", "expected"),
    [(254, "10"), (100, "4"), (300, "11.9"), (1, "0.1"), (25, "1"), (26, "1.1")],
)
def test_millimetres_become_inches_rounded_up_to_a_tenth(mm: int, expected: str) -> None:
    assert inches(mm) == Decimal(expected)


@pytest.mark.parametrize(
    ("grams", "expected"),
    [(1000, "35.3"), (28_349, "1000"), (28_350, "1000.1"), (1, "0.1"), (500, "17.7")],
)
def test_grams_become_ounces_rounded_up_to_a_tenth(grams: int, expected: str) -> None:
    assert ounces(grams) == Decimal(expected)


# --- rates ---------------------------------------------------------------------------------------


async def test_rates_come_from_one_shipment_in_inches_and_ounces(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    rates = await carrier.rates(parcel)

    [shipment] = double.shipments.values()
    assert shipment["reference"] == "prc_7f3a9c"
    assert shipment["options"]["label_format"] == "PDF"
    dims = {k: shipment["parcel"][k] for k in ("length", "width", "height", "weight")}
    assert dims == {"length": 11.9, "width": 7.9, "height": 4.0, "weight": 35.3}
    assert shipment["to_address"]["street1"] == "12 Meeting St"
    assert shipment["from_address"]["street2"] == "Dock 4"
    assert shipment["to_address"]["state"] == "SC"

    by_service = {(r.carrier, r.service): r for r in rates}
    assert set(by_service) == {("usps", "GroundAdvantage"), ("usps", "Priority"), ("ups", "Ground")}
    for easypost_rate in shipment["rates"]:
        ours = by_service[(easypost_rate["carrier"].lower(), easypost_rate["service"])]
        assert ours.amount == Decimal(easypost_rate["rate"])
        assert ours.currency == "USD"
        assert ours.rate_id == f"{shipment['id']}:{easypost_rate['id']}"
        assert ours.delivery_days == easypost_rate["delivery_days"]
    assert by_service[("usps", "GroundAdvantage")].amount == Decimal("7.72")  # 5.20 + 36 x 0.07
    assert by_service[("ups", "Ground")].delivery_days is None


# --- buy -----------------------------------------------------------------------------------------


async def test_buy_returns_the_pdf_label_and_tracking(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    rate = await cheapest(carrier, parcel)

    label = await carrier.buy(parcel, rate)

    shipment = double.shipments[shipment_id_of(rate)]
    assert double.purchases == [shipment["id"]]
    assert (label.carrier, label.service) == ("usps", "GroundAdvantage")
    assert label.tracking_number == shipment["tracking_code"]
    assert label.label_id == shipment["id"]
    assert (label.amount, label.currency) == (rate.amount, "USD")
    assert label.tracking_url == shipment["tracker"]["public_url"]
    assert label.tracking_url.startswith("https://track.easypost.com/")
    pdf = pypdfium2.PdfDocument(label.pdf)
    try:
        assert len(pdf) == 1
        assert pdf[0].get_size() == pytest.approx((288, 432))  # 4 x 6 in
        text = pdf[0].get_textpage().get_text_range()
    finally:
        pdf.close()
    assert shipment["tracking_code"] in text and "Ada Lovelace" in text


async def test_a_retried_buy_returns_the_same_label_and_buys_once(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    rate = await cheapest(carrier, parcel)

    first = await carrier.buy(parcel, rate)
    again = await carrier.buy(parcel, rate)

    assert again == first
    shipment_id = shipment_id_of(rate)
    assert double.purchases == [shipment_id]  # one label bought
    assert double.buy_requests(shipment_id) == 2  # the retry was refused: POSTAGE.EXISTS
    assert ("GET", f"/v2/shipments/{shipment_id}") in double.requests


async def test_a_buy_that_timed_out_after_buying_is_retried_without_a_second_label(
    double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    carrier = EasyPostCarrier(TEST_API_KEY, WEBHOOK_SECRET, api_base=double.api_base, timeout=1)
    rate = await cheapest(carrier, parcel)
    double.fail_next("/buy", None, delay_s=1.6)  # bought, but the answer comes too late

    with pytest.raises(CarrierError) as timed_out:
        await carrier.buy(parcel, rate)
    assert (timed_out.value.code, timed_out.value.retryable) == ("timeout", True)
    assert double.purchases == [shipment_id_of(rate)]

    label = await carrier.buy(parcel, rate)

    assert double.purchases == [shipment_id_of(rate)]
    assert label.tracking_number == double.shipments[shipment_id_of(rate)]["tracking_code"]


async def test_buying_another_rate_of_a_bought_shipment_is_refused(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    rates = sorted(await carrier.rates(parcel), key=lambda rate: rate.amount)
    await carrier.buy(parcel, rates[0])

    with pytest.raises(CarrierError) as refused:
        await carrier.buy(parcel, rates[1])

    assert (refused.value.code, refused.value.retryable) == ("already_bought", False)
    assert len(double.purchases) == 1


async def test_a_png_label_is_converted_to_pdf(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    double.png_labels = True
    rate = await cheapest(carrier, parcel)

    label = await carrier.buy(parcel, rate)

    assert label.pdf.startswith(b"%PDF-")
    shipment_id = shipment_id_of(rate)
    assert ("GET", f"/v2/shipments/{shipment_id}/label") in double.requests
    assert double.downloads[-1].endswith(".pdf")


async def test_a_rate_id_that_is_not_easypost_s_is_refused(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    bogus = Rate("usps", "Priority", Decimal("7.00"), "USD", 2, "rate_123")
    with pytest.raises(CarrierError) as refused:
        await carrier.buy(parcel, bogus)
    assert refused.value.code == "invalid_rate"
    assert double.requests == []


async def test_a_label_download_that_fails_is_retryable_and_the_retry_buys_nothing(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    rate = await cheapest(carrier, parcel)
    double.fail_next("/files/postage_label/", 503)

    with pytest.raises(CarrierError) as failed:
        await carrier.buy(parcel, rate)
    assert (failed.value.code, failed.value.retryable) == ("label_download_failed", True)

    label = await carrier.buy(parcel, rate)
    assert label.pdf.startswith(b"%PDF-")
    assert double.purchases == [shipment_id_of(rate)]


# --- void ----------------------------------------------------------------------------------------


async def test_void_refunds_the_shipment_once(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    label = await carrier.buy(parcel, await cheapest(carrier, parcel))

    await carrier.void(label)
    await carrier.void(label)  # a repeat: EasyPost refuses a second refund, the first holds

    assert double.shipments[label.label_id]["refund_status"] == "submitted"
    assert double.refunds == [label.label_id]


@pytest.mark.parametrize(
    ("refund_status", "code", "retryable"),
    [("rejected", "refund_rejected", True), ("not_applicable", "refund_not_applicable", False)],
)
async def test_a_refund_easypost_does_not_take_is_a_carrier_error(
    carrier: EasyPostCarrier,
    double: EasyPostDouble,
    parcel: ParcelSpec,
    refund_status: str,
    code: str,
    retryable: bool,
) -> None:
    label = await carrier.buy(parcel, await cheapest(carrier, parcel))
    double.refund_status = refund_status

    with pytest.raises(CarrierError) as refused:
        await carrier.void(label)

    assert (refused.value.code, refused.value.retryable) == (code, retryable)


async def test_voiding_a_label_of_no_shipment_is_not_found(
    carrier: EasyPostCarrier, parcel: ParcelSpec
) -> None:
    label = await carrier.buy(parcel, await cheapest(carrier, parcel))
    gone = type(label)(**{**label.__dict__, "label_id": "shp_0000000000000000000000000000dead"})
    with pytest.raises(CarrierError) as refused:
        await carrier.void(gone)
    assert (refused.value.code, refused.value.retryable) == ("not_found", False)


# --- errors --------------------------------------------------------------------------------------


async def test_a_wrong_api_key_is_unauthorized_and_not_retryable(
    double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    carrier = EasyPostCarrier("EZTK_wrong", WEBHOOK_SECRET, api_base=double.api_base, timeout=5)

    with pytest.raises(CarrierError) as refused:
        await carrier.rates(parcel)

    assert (refused.value.code, refused.value.retryable) == ("unauthorized", False)
    assert "APIKEY.INACTIVE" in str(refused.value)
    assert double.shipments == {}


@pytest.mark.parametrize(
    ("status", "code", "retryable"),
    [
        (429, "rate_limited", True),
        (500, "carrier_unavailable", True),
        (503, "carrier_unavailable", True),
        (504, "carrier_unavailable", True),
        (402, "payment_required", False),
        (422, "invalid_request", False),
        (400, "invalid_request", False),
    ],
)
async def test_easypost_errors_map_to_carrier_errors(
    carrier: EasyPostCarrier,
    double: EasyPostDouble,
    parcel: ParcelSpec,
    status: int,
    code: str,
    retryable: bool,
) -> None:
    double.fail_next("/v2/shipments", status, code="SOME.EASYPOST.CODE", message="said so")

    with pytest.raises(CarrierError) as refused:
        await carrier.rates(parcel)

    assert (refused.value.code, refused.value.retryable) == (code, retryable)
    assert str(refused.value) == "EasyPost SOME.EASYPOST.CODE: said so"


async def test_a_parcel_easypost_finds_invalid_is_an_invalid_request(
    carrier: EasyPostCarrier, parcel: ParcelSpec
) -> None:
    weightless = ParcelSpec(**{**parcel.__dict__, "weight_g": 0})
    with pytest.raises(CarrierError) as refused:
        await carrier.rates(weightless)
    assert (refused.value.code, refused.value.retryable) == ("invalid_request", False)
    assert "PARAMETER.INVALID" in str(refused.value)


async def test_a_timeout_is_retryable(double: EasyPostDouble, parcel: ParcelSpec) -> None:
    carrier = EasyPostCarrier(TEST_API_KEY, WEBHOOK_SECRET, api_base=double.api_base, timeout=0.5)
    double.fail_next("/v2/shipments", None, delay_s=2.0)
    started = time.monotonic()

    with pytest.raises(CarrierError) as timed_out:
        await carrier.rates(parcel)

    assert (timed_out.value.code, timed_out.value.retryable) == ("timeout", True)
    assert time.monotonic() - started < 1.5  # did not wait for the late answer


async def test_no_answer_at_all_is_retryable(parcel: ParcelSpec) -> None:
    nobody = f"http://127.0.0.1:{free_port()}/v2"
    carrier = EasyPostCarrier(TEST_API_KEY, WEBHOOK_SECRET, api_base=nobody, timeout=2)

    with pytest.raises(CarrierError) as failed:
        await carrier.rates(parcel)

    assert (failed.value.code, failed.value.retryable) == ("communication_error", True)


@pytest.mark.parametrize(
    ("auth", "status", "code"),
    [
        ({"auth": (TEST_API_KEY, "")}, 404, "NOT_FOUND"),  # Basic, the key as user name: in
        ({"headers": {"Authorization": f"Bearer {TEST_API_KEY}"}}, 404, "NOT_FOUND"),
        ({"auth": ("EZTK_wrong", "")}, 401, "APIKEY.INACTIVE"),
        ({}, 401, "APIKEY.REQUIRED"),
    ],
)
async def test_the_double_authenticates_like_easypost(
    double: EasyPostDouble, auth: dict[str, Any], status: int, code: str
) -> None:
    async with httpx.AsyncClient(base_url=double.api_base) as http:
        response = await http.get("/shipments/shp_0000000000000000000000000000dead", **auth)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_the_carrier_needs_a_key_and_a_webhook_secret() -> None:
    with pytest.raises(ValueError, match="webhook secret"):
        EasyPostCarrier(TEST_API_KEY, "")
    with pytest.raises(ValueError, match="API key"):
        EasyPostCarrier("", WEBHOOK_SECRET)


# --- tracking webhooks ---------------------------------------------------------------------------


def test_a_signed_delivered_tracker_update_is_delivered(
    carrier: EasyPostCarrier, tracker_updated_body: Callable[..., bytes]
) -> None:
    body = tracker_updated_body("delivered", "Delivered, In/At Mailbox")

    [update] = carrier.tracking_updates({"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)}, body)

    assert update.carrier == "usps"
    assert update.tracking_number == "9400100105442285876350"
    assert update.status is TrackingStatus.DELIVERED
    assert update.at == datetime(2026, 3, 12, 14, 5, 9, tzinfo=UTC)
    assert update.description == "Delivered, In/At Mailbox"


def test_header_names_are_case_insensitive(
    carrier: EasyPostCarrier, tracker_updated_body: Callable[..., bytes]
) -> None:
    body = tracker_updated_body()
    updates = carrier.tracking_updates({"x-hmac-signature": sign(body, WEBHOOK_SECRET)}, body)
    assert [u.status for u in updates] == [TrackingStatus.DELIVERED]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(lambda body: {"X-Hmac-Signature": sign(body, "another-secret")}, id="other"),
        pytest.param(
            lambda body: {"X-Hmac-Signature": sign(body + b" ", WEBHOOK_SECRET)}, id="tampered"
        ),
        pytest.param(
            lambda body: {"X-Hmac-Signature": sign(body, WEBHOOK_SECRET).split("=", 1)[1]},
            id="no-scheme",
        ),
        pytest.param(lambda body: {"X-Hmac-Signature": ""}, id="empty"),
        pytest.param(lambda body: {"X-Hmac-Signature": "hmac-sha256-hex=ü"}, id="not-ascii"),
        pytest.param(lambda body: {}, id="missing"),
        pytest.param(
            lambda body: {"Content-Type": "application/json", "X-Signature": "x"}, id="other-header"
        ),
    ],
)
def test_a_bad_or_missing_signature_is_refused(
    carrier: EasyPostCarrier,
    tracker_updated_body: Callable[..., bytes],
    headers: Callable[[bytes], dict[str, str]],
) -> None:
    body = tracker_updated_body()
    with pytest.raises(InvalidWebhookSignature):
        carrier.tracking_updates(headers(body), body)


@pytest.mark.parametrize(
    ("easypost_status", "ours"),
    [
        ("pre_transit", TrackingStatus.IN_TRANSIT),
        ("in_transit", TrackingStatus.IN_TRANSIT),
        ("out_for_delivery", TrackingStatus.OUT_FOR_DELIVERY),
        ("available_for_pickup", TrackingStatus.OUT_FOR_DELIVERY),
        ("delivered", TrackingStatus.DELIVERED),
        ("return_to_sender", TrackingStatus.RETURNED_TO_SENDER),
        ("failure", TrackingStatus.EXCEPTION),
        ("error", TrackingStatus.EXCEPTION),
        ("unknown", None),
        ("cancelled", None),
        ("teleported", None),
    ],
)
def test_tracker_statuses_map_to_ours_or_are_ignored(
    carrier: EasyPostCarrier,
    tracker_updated_body: Callable[..., bytes],
    easypost_status: str,
    ours: TrackingStatus | None,
) -> None:
    body = tracker_updated_body(easypost_status, "Status update")
    updates = carrier.tracking_updates({"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)}, body)
    assert [u.status for u in updates] == ([ours] if ours else [])


def test_events_that_are_not_tracker_updates_give_nothing(carrier: EasyPostCarrier) -> None:
    event: dict[str, Any] = {
        "object": "Event",
        "id": "evt_0e1bd3b7a4e111eeb1d3ac1f6bc539ae",
        "mode": "test",
        "description": "batch.updated",
        "previous_attributes": {"state": "purchasing"},
        "result": {"id": "batch_5a1e7f5c", "object": "Batch", "state": "purchased"},
        "status": "pending",
    }
    body = event_body(event)
    assert carrier.tracking_updates({"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)}, body) == []


def test_a_signed_body_that_is_not_an_event_is_a_carrier_error(carrier: EasyPostCarrier) -> None:
    for body in (b"not json", b'{"object": "Tracker"}'):
        with pytest.raises(CarrierError) as refused:
            carrier.tracking_updates({"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)}, body)
        assert refused.value.code == "invalid_webhook"


async def test_a_bought_label_is_found_again_by_its_tracking_update(
    carrier: EasyPostCarrier, double: EasyPostDouble, parcel: ParcelSpec
) -> None:
    label = await carrier.buy(parcel, await cheapest(carrier, parcel))
    event = double.tracker_updated(label.label_id, "out_for_delivery", "Out for Delivery")
    body = event_body(event)

    [update] = carrier.tracking_updates({"X-Hmac-Signature": sign(body, WEBHOOK_SECRET)}, body)

    assert (update.carrier, update.tracking_number) == (label.carrier, label.tracking_number)
    assert update.status is TrackingStatus.OUT_FOR_DELIVERY
    assert update.description == "Out for Delivery"
