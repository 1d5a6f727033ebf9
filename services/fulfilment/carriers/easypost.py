"""EasyPost as a carrier aggregator, through EasyPost's official Python SDK (`easypost` 10.x,
tested with 10.7.0; `easypost.EasyPostClient`, API version v2).

Endpoints used (all under the client's `api_base`, `https://api.easypost.com/v2` by default):

- `POST /shipments` (`client.shipment.create`): rates. One Shipment per `rates()` call, with
  `reference` = our parcel reference and `options.label_format = "PDF"`.
- `POST /shipments/{id}/buy` with `{"rate": {"id": ...}}` (`client.shipment.buy`): the label.
- `GET /shipments/{id}` (`client.shipment.retrieve`): a retried buy or void (see below).
- `GET /shipments/{id}/label?file_format=PDF` (`client.shipment.label`): only when a bought
  label has no PDF (EasyPost's label format conversion).
- `POST /shipments/{id}/refund` (`client.shipment.refund`): void.
- The label file itself: `postage_label.label_pdf_url` (else `label_url` when its
  `label_file_type` is `application/pdf`), downloaded with httpx **without** our API key (the
  files are public URLs on another host).
- Webhooks: `easypost.util.validate_webhook` checks `X-Hmac-Signature`
  (`hmac-sha256-hex=` + hex HMAC-SHA256 of the raw body, keyed by the NFKD-normalised secret).

The SDK is synchronous (requests); every call runs in a worker thread (`asyncio.to_thread`) and is
bounded by `timeout` seconds (one client, so one requests session and its connection pool, is
shared by those threads). Note that SDK 10 authenticates with `Authorization: Bearer <key>`
(the API also documents Basic auth with the key as user name).

Values:

- `Rate.carrier` is EasyPost's `rate.carrier` lower-cased (`USPS` -> `usps`), as is
  `TrackingUpdate.carrier` (the tracker's `carrier`), so a tracking update finds the fulfilment
  its label shipped; `Rate.rate_id` is `"<shipment id>:<rate id>"`, `Label.label_id` the
  shipment id (a void refunds the shipment).
- Units: EasyPost takes inches and ounces. Millimetres and grams are converted exactly
  (1 in = 25.4 mm, 1 oz = 28.349523125 g, in integer arithmetic) and rounded **up** to the next
  0.1: a parcel is never declared smaller or lighter than it is (a carrier adjusts and bills
  under-declared parcels). 100 mm -> 4.0 in (3.937...), 254 mm -> 10.0 in, 1000 g -> 35.3 oz.

Idempotency of `buy`: EasyPost buys a shipment once; buying a bought shipment answers 422
`SHIPMENT.POSTAGE.EXISTS`. On that answer the shipment is fetched and, when it was bought with
the same rate, its label is returned (a retry after a timeout, or after the label download
failed, buys nothing twice). Bought with another rate: `CarrierError("already_bought")`.
A new `rates()` call creates a new shipment: buying one of its rates is a new label.

Void: `refund_status` `submitted` or `refunded` is done; a refund EasyPost refuses (400, 409 or
422) is done too when the fetched shipment's `refund_status` says one was already requested;
`rejected` is retryable (EasyPost: "you may retry a refund with the rejected status"),
`not_applicable` is not.

SDK errors become `EasyPostRefusal`, a `CarrierError(code, message, retryable=...)` that also
keeps EasyPost's HTTP status and its own error code (in the message too). By HTTP status:
401 `unauthorized`, 402 `payment_required`, 403 `forbidden`, 404 `not_found`, other 4xx
`invalid_request` (none retryable); 429 `rate_limited`, 408 and a client-side timeout `timeout`,
5xx `carrier_unavailable`, no answer `communication_error` (all retryable); an answer that is not
EasyPost's JSON `bad_response` (retryable when 5xx). The label download maps the same way
(`label_download_failed` for an HTTP error status).

Tracking (only `tracker.updated` Events; any other Event gives no update). EasyPost status ->
`TrackingStatus`: `pre_transit`, `in_transit` -> IN_TRANSIT; `out_for_delivery`,
`available_for_pickup` -> OUT_FOR_DELIVERY (waiting at a pick-up point is the last leg, like a
van round; both are recorded only); `delivered` -> DELIVERED; `return_to_sender` ->
RETURNED_TO_SENDER; `failure`, `error` -> EXCEPTION. `unknown` (the carrier has no information
yet), `cancelled` (the label was voided; our own void already knows) and any status EasyPost adds
later are **ignored** (no update, logged): recording them as in transit would state something
the carrier did not say, and EasyPost's next update carries the full history anyway.
`at` and `description` come from the last `tracking_details` entry (its `datetime`, UTC when it
has no offset, and `message`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, NoReturn

import httpx
from easypost.easypost_client import EasyPostClient
from easypost.errors.api.json_error import JsonError
from easypost.errors.api.redirect_error import RedirectError
from easypost.errors.api.timeout_error import TimeoutError as EasyPostTimeout
from easypost.errors.general.easypost_error import EasyPostError
from easypost.errors.general.signature_verification_error import SignatureVerificationError
from easypost.util import validate_webhook

from services.fulfilment.carriers.base import (
    CarrierError,
    InvalidWebhookSignature,
    Label,
    ParcelSpec,
    PostalAddress,
    Rate,
    TrackingUpdate,
)
from services.fulfilment.domain import TrackingStatus

log = logging.getLogger(__name__)

NAME = "easypost"
SIGNATURE_HEADER = "X-Hmac-Signature"
TRACKER_UPDATED = "tracker.updated"
POSTAGE_EXISTS = "SHIPMENT.POSTAGE.EXISTS"
PDF = "application/pdf"

# EasyPost tracker status -> ours; statuses not here are ignored (module docstring).
STATUSES: dict[str, TrackingStatus] = {
    "pre_transit": TrackingStatus.IN_TRANSIT,
    "in_transit": TrackingStatus.IN_TRANSIT,
    "out_for_delivery": TrackingStatus.OUT_FOR_DELIVERY,
    "available_for_pickup": TrackingStatus.OUT_FOR_DELIVERY,
    "delivered": TrackingStatus.DELIVERED,
    "return_to_sender": TrackingStatus.RETURNED_TO_SENDER,
    "failure": TrackingStatus.EXCEPTION,
    "error": TrackingStatus.EXCEPTION,
}

_CLIENT_ERRORS: dict[int, str] = {
    401: "unauthorized",
    402: "payment_required",
    403: "forbidden",
    404: "not_found",
}

# A refund EasyPost refuses with one of these may be a repeat of one it took (void checks).
_REFUSED_REQUEST = frozenset({400, 409, 422})

_MM_PER_INCH_TENTHS = 254  # 25.4 mm = 1 in, so 254 mm = 10 tenths of an inch
_OZ_GRAMS_E9 = 28_349_523_125  # 1 oz = 28.349523125 g exactly


def inches(mm: int) -> Decimal:
    """Millimetres to inches, rounded up to the next 0.1 in."""
    return Decimal(_ceil_div(mm * 100, _MM_PER_INCH_TENTHS)) / 10


def ounces(grams: int) -> Decimal:
    """Grams to ounces, rounded up to the next 0.1 oz."""
    return Decimal(_ceil_div(grams * 10 * 10**9, _OZ_GRAMS_E9)) / 10


def _ceil_div(numerator: int, denominator: int) -> int:
    return -(-numerator // denominator)


class EasyPostCarrier:
    """The `Carrier` for EasyPost. `api_base` is the versioned API root (the SDK's default
    `https://api.easypost.com/v2` when None); `timeout` bounds each HTTP call in seconds."""

    name = NAME

    def __init__(
        self,
        api_key: str,
        webhook_secret: str,
        *,
        api_base: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        if not api_key:
            raise ValueError("an EasyPost API key is required")
        if not webhook_secret:
            # An empty HMAC key would make any sender's signature verifiable.
            raise ValueError("an EasyPost webhook secret is required")
        self._webhook_secret = webhook_secret
        self._timeout = timeout
        options: dict[str, Any] = {"timeout": timeout}
        if api_base is not None:
            options["api_base"] = api_base.rstrip("/")
        # (`timeout` goes to requests, which takes a float; the SDK annotates it as int.)
        self._client = EasyPostClient(api_key, **options)

    # --- rates and labels ----------------------------------------------------------------------

    async def rates(self, parcel: ParcelSpec) -> Sequence[Rate]:
        shipment = await self._call(
            self._client.shipment.create,
            reference=parcel.reference,
            from_address=_address(parcel.from_address),
            to_address=_address(parcel.to_address),
            parcel=_parcel(parcel),
            options={"label_format": "PDF"},
        )
        shipment_id = _text(shipment, "id")
        return [_rate(shipment_id, rate) for rate in _list(shipment, "rates")]

    async def buy(self, parcel: ParcelSpec, rate: Rate) -> Label:
        shipment_id, rate_id = _split_rate_id(rate.rate_id)
        try:
            shipment = await self._call(
                self._client.shipment.buy, shipment_id, rate={"id": rate_id}
            )
        except EasyPostRefusal as refused:
            if refused.easypost_code != POSTAGE_EXISTS:
                raise
            shipment = await self._call(self._client.shipment.retrieve, shipment_id)
            bought = _optional_obj(shipment, "selected_rate")
            if bought is None or bought.get("id") != rate_id:
                raise CarrierError(
                    "already_bought",
                    f"EasyPost shipment {shipment_id} (parcel {parcel.reference}) was already "
                    f"bought with another rate than {rate_id}",
                ) from refused
            log.info("EasyPost shipment %s was already bought: returning its label", shipment_id)
        return await self._label(shipment)

    async def void(self, label: Label) -> None:
        shipment_id = label.label_id
        try:
            shipment = await self._call(self._client.shipment.refund, shipment_id)
        except EasyPostRefusal as refused:
            if refused.http_status not in _REFUSED_REQUEST:
                raise
            current = await self._call(self._client.shipment.retrieve, shipment_id)
            if current.get("refund_status") not in ("submitted", "refunded"):
                raise
            shipment = current
        status = shipment.get("refund_status")
        if status in ("submitted", "refunded"):
            return
        if status == "rejected":
            raise CarrierError(
                "refund_rejected",
                f"EasyPost rejected the refund of {shipment_id} (it may be requested again)",
                retryable=True,
            )
        if status == "not_applicable":
            raise CarrierError(
                "refund_not_applicable",
                f"EasyPost: a refund does not apply to {shipment_id} ({label.carrier} bills on scan)",
            )
        _bad_response(f"refund of {shipment_id} answered refund_status {status!r}")

    async def _label(self, shipment: dict[str, Any]) -> Label:
        shipment_id = _text(shipment, "id")
        selected = _obj(shipment, "selected_rate")
        postage = _obj(shipment, "postage_label")
        pdf_url = _pdf_url(postage)
        if pdf_url is None:
            converted = await self._call(
                self._client.shipment.label, shipment_id, file_format="PDF"
            )
            pdf_url = _pdf_url(_obj(converted, "postage_label"))
            if pdf_url is None:
                _bad_response(f"shipment {shipment_id} has no PDF label after conversion")
        tracker = _optional_obj(shipment, "tracker")
        return Label(
            carrier=_text(selected, "carrier").lower(),
            service=_text(selected, "service"),
            tracking_number=_text(shipment, "tracking_code"),
            label_id=shipment_id,
            amount=_amount(selected, "rate"),
            currency=_text(selected, "currency"),
            pdf=await self._download(pdf_url, shipment_id),
            tracking_url=_optional_text(tracker, "public_url") if tracker else None,
        )

    async def _download(self, url: str, shipment_id: str) -> bytes:
        try:
            async with httpx.AsyncClient(timeout=self._timeout, follow_redirects=True) as http:
                response = await http.get(url)
        except httpx.TimeoutException as exc:
            raise CarrierError(
                "timeout", f"downloading the label of {shipment_id} timed out", retryable=True
            ) from exc
        except httpx.HTTPError as exc:
            raise CarrierError(
                "communication_error",
                f"downloading the label of {shipment_id} failed: {exc}",
                retryable=True,
            ) from exc
        if response.status_code != 200:
            raise CarrierError(
                "label_download_failed",
                f"the label of {shipment_id} answered HTTP {response.status_code}",
                retryable=response.status_code >= 500 or response.status_code == 429,
            )
        if not response.content.startswith(b"%PDF-"):
            _bad_response(f"the label of {shipment_id} is not a PDF")
        return response.content

    async def _call(self, method: Callable[..., Any], *args: Any, **kwargs: Any) -> dict[str, Any]:
        """Run one SDK call in a worker thread; its answer as plain JSON data."""
        try:
            answer = await asyncio.to_thread(method, *args, **kwargs)
        except EasyPostError as exc:
            raise _carrier_error(exc) from exc
        result: dict[str, Any] = answer.to_dict()
        return result

    # --- tracking webhooks ---------------------------------------------------------------------

    def tracking_updates(self, headers: Mapping[str, str], body: bytes) -> Sequence[TrackingUpdate]:
        signature = next(
            (value for key, value in headers.items() if key.lower() == SIGNATURE_HEADER.lower()),
            None,
        )
        if not signature:
            raise InvalidWebhookSignature(f"the EasyPost webhook has no {SIGNATURE_HEADER}")
        try:
            event = validate_webhook(body, {SIGNATURE_HEADER: signature}, self._webhook_secret)
        except SignatureVerificationError as exc:
            raise InvalidWebhookSignature(str(exc)) from exc
        except TypeError as exc:  # hmac.compare_digest refuses a non-ASCII header value
            raise InvalidWebhookSignature(f"{SIGNATURE_HEADER} is not ASCII") from exc
        except (ValueError, UnicodeDecodeError) as exc:  # signed, but not JSON
            raise CarrierError("invalid_webhook", f"EasyPost webhook body: {exc}") from exc
        if not isinstance(event, dict) or event.get("object") != "Event":
            raise CarrierError("invalid_webhook", "the EasyPost webhook is not an Event")
        if event.get("description") != TRACKER_UPDATED:
            return []
        tracker = event.get("result")
        if not isinstance(tracker, dict) or tracker.get("object") != "Tracker":
            raise CarrierError("invalid_webhook", "a tracker.updated Event without its Tracker")
        return [update] if (update := _tracking_update(tracker)) else []


class EasyPostRefusal(CarrierError):
    """A `CarrierError` from an EasyPost API call, with what EasyPost answered: its HTTP status
    (None when there was no answer) and its own error code (e.g. `SHIPMENT.POSTAGE.EXISTS`)."""

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool = False,
        http_status: int | None = None,
        easypost_code: str | None = None,
    ) -> None:
        super().__init__(code, message, retryable=retryable)
        self.http_status = http_status
        self.easypost_code = easypost_code


def _carrier_error(exc: EasyPostError) -> EasyPostRefusal:
    status: int | None = getattr(exc, "http_status", None)
    easypost_code: str | None = getattr(exc, "code", None)
    said = (
        f"EasyPost {easypost_code}: {exc.message}" if easypost_code else f"EasyPost: {exc.message}"
    )

    def refusal(code: str, *, retryable: bool) -> EasyPostRefusal:
        return EasyPostRefusal(
            code, said, retryable=retryable, http_status=status, easypost_code=easypost_code
        )

    if isinstance(exc, JsonError | RedirectError):
        return refusal("bad_response", retryable=status is None or status >= 500)
    if isinstance(exc, EasyPostTimeout) or status == 408:
        return refusal("timeout", retryable=True)
    if status is None:  # no answer: connection refused, reset, DNS
        return refusal("communication_error", retryable=True)
    if status == 429:
        return refusal("rate_limited", retryable=True)
    if status >= 500:
        return refusal("carrier_unavailable", retryable=True)
    return refusal(_CLIENT_ERRORS.get(status, "invalid_request"), retryable=False)


# --- request values ------------------------------------------------------------------------------


def _address(address: PostalAddress) -> dict[str, Any]:
    fields = {
        "name": address.name,
        "street1": address.line1,
        "street2": address.line2,
        "city": address.city,
        "state": address.region,
        "zip": address.postal_code,
        "country": address.country,
        "phone": address.phone,
        "email": address.email,
    }
    return {key: value for key, value in fields.items() if value is not None}


def _parcel(parcel: ParcelSpec) -> dict[str, float]:
    dimensions = parcel.dimensions
    return {
        "length": float(inches(dimensions.length_mm)),
        "width": float(inches(dimensions.width_mm)),
        "height": float(inches(dimensions.height_mm)),
        "weight": float(ounces(parcel.weight_g)),
    }


def _split_rate_id(rate_id: str) -> tuple[str, str]:
    shipment_id, _, easypost_rate_id = rate_id.partition(":")
    if not shipment_id.startswith("shp_") or not easypost_rate_id.startswith("rate_"):
        raise CarrierError(
            "invalid_rate", f"{rate_id!r} is not an EasyPost rate (shp_...:rate_...)"
        )
    return shipment_id, easypost_rate_id


# --- answer values -------------------------------------------------------------------------------


def _rate(shipment_id: str, rate: Any) -> Rate:
    if not isinstance(rate, dict):
        _bad_response(f"shipment {shipment_id} has a rate that is not an object")
    days = rate.get("delivery_days")
    return Rate(
        carrier=_text(rate, "carrier").lower(),
        service=_text(rate, "service"),
        amount=_amount(rate, "rate"),
        currency=_text(rate, "currency"),
        delivery_days=days if isinstance(days, int) and not isinstance(days, bool) else None,
        rate_id=f"{shipment_id}:{_text(rate, 'id')}",
    )


def _pdf_url(postage: dict[str, Any]) -> str | None:
    url = postage.get("label_pdf_url")
    if isinstance(url, str) and url:
        return url
    url = postage.get("label_url")
    if postage.get("label_file_type") == PDF and isinstance(url, str) and url:
        return url
    return None


def _tracking_update(tracker: dict[str, Any]) -> TrackingUpdate | None:
    tracking_code = _webhook_text(tracker, "tracking_code")
    easypost_status = _webhook_text(tracker, "status")
    status = STATUSES.get(easypost_status)
    if status is None:
        log.info(
            "EasyPost tracker %s status %r is not a tracking update: ignored",
            tracking_code,
            easypost_status,
        )
        return None
    details = tracker.get("tracking_details") or []
    last = details[-1] if isinstance(details, list) and details else None
    at: datetime | None = None
    description: str | None = None
    if isinstance(last, dict):
        at = _instant(last.get("datetime"))
        message = last.get("message")
        description = message if isinstance(message, str) and message else None
    return TrackingUpdate(
        carrier=_webhook_text(tracker, "carrier").lower(),
        tracking_number=tracking_code,
        status=status,
        at=at,
        description=description,
    )


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    try:
        instant = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        instant = None
    if instant is None:
        raise CarrierError("invalid_webhook", f"tracking detail datetime {value!r}")
    return instant if instant.tzinfo else instant.replace(tzinfo=UTC)


def _webhook_text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        raise CarrierError("invalid_webhook", f"the EasyPost tracker has no {key}")
    return value


def _text(obj: dict[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str) or not value:
        _bad_response(f"{obj.get('object', 'object')} without {key}")
    return value


def _optional_text(obj: dict[str, Any], key: str) -> str | None:
    value = obj.get(key)
    return value if isinstance(value, str) and value else None


def _amount(obj: dict[str, Any], key: str) -> Decimal:
    try:
        return Decimal(_text(obj, key))
    except InvalidOperation:
        _bad_response(f"{key} {obj.get(key)!r} is not an amount")


def _obj(obj: dict[str, Any], key: str) -> dict[str, Any]:
    value = _optional_obj(obj, key)
    if value is None:
        _bad_response(f"{obj.get('object', 'object')} {obj.get('id', '')} without {key}")
    return value


def _optional_obj(obj: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = obj.get(key)
    return value if isinstance(value, dict) else None


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if not isinstance(value, list):
        _bad_response(f"{obj.get('object', 'object')} without {key}")
    return value


def _bad_response(what: str) -> NoReturn:
    raise CarrierError("bad_response", f"unexpected EasyPost answer: {what}")
