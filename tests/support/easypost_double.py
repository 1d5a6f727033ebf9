"""A local EasyPost API double: a real HTTP server (FastAPI under uvicorn, 127.0.0.1, a free
port, in a background thread) that the official `easypost` SDK talks to through `api_base`.

Built from EasyPost's documented shapes (docs.easypost.com: Shipment, Rate, PostageLabel,
Tracker, Event, Errors, Shipping Refund) and from the paths and bodies the SDK 10.x sends
(`easypost/services/shipment_service.py`, `easypost/requestor.py`):

- `POST /v2/shipments` `{"shipment": {...}}` -> 201, a Shipment (`shp_...`) with `rates`
  (`rate_...`, amounts as strings like `"7.58"`) from two carriers, three services.
- `POST /v2/shipments/{id}/buy` `{"rate": {"id": ...}}` -> the Shipment with `tracking_code`,
  `selected_rate`, `postage_label` (`label_url`, `label_pdf_url` when the shipment asked for
  `options.label_format: "PDF"`, pointing at a PDF this double serves) and `tracker`
  (`public_url`). Buying a bought shipment -> 422 `SHIPMENT.POSTAGE.EXISTS`.
- `GET /v2/shipments/{id}`, `GET /v2/shipments/{id}/label?file_format=PDF` (label conversion).
- `POST /v2/shipments/{id}/refund` -> the Shipment with `refund_status` (`submitted` unless a
  test sets `refund_status`).
- `GET /files/postage_label/...`: the label files, without authentication (EasyPost's are
  public URLs on another host).

Authentication: the API key as Basic auth user name (as documented) or as a Bearer token (what
SDK 10 sends). Errors use EasyPost's error object `{"error": {"code", "message", "errors"}}`.
Codes the docs show are used as shown (`PARAMETER.REQUIRED`, `SHIPMENT.POSTAGE.EXISTS`,
`NOT_FOUND`); for a missing or wrong key (`APIKEY.REQUIRED`, `APIKEY.INACTIVE`), an invalid
parameter (`PARAMETER.INVALID`) and refunds that cannot be made (`SHIPMENT.REFUND.UNAVAILABLE`)
the double picks codes of EasyPost's form that the docs do not list; the adapter keys on the
HTTP status, never on those.

What the double records for assertions: `requests` (method, path), `purchases` (one shipment id
per label bought), `refunds` (refunds accepted) and `downloads` (label files served). Faults:
`fail_next(...)` answers the next matching request with an error, or delays it.

`tracker_updated_event(...)` builds a `tracker.updated` Event as EasyPost posts it to a webhook,
`sign(...)` its `X-Hmac-Signature`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import hmac
import io
import json
import threading
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from reportlab.lib.units import inch
from reportlab.pdfgen import canvas

from tests.support.served_app import ServedApp

TEST_API_KEY = "EZTK_test_double_0123456789abcdef"

# (carrier, service, base amount, per started ounce, delivery days)
SERVICES: tuple[tuple[str, str, Decimal, Decimal, int | None], ...] = (
    ("USPS", "GroundAdvantage", Decimal("5.20"), Decimal("0.07"), 3),
    ("USPS", "Priority", Decimal("7.90"), Decimal("0.11"), 2),
    ("UPS", "Ground", Decimal("9.45"), Decimal("0.09"), None),
)
REQUIRED_ADDRESS_FIELDS = ("street1", "city", "zip", "country")


class ApiError(Exception):
    def __init__(
        self, status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.errors = errors or []


@dataclass
class Fault:
    path_contains: str
    method: str | None
    status: int | None  # None: no error, only the delay
    code: str
    message: str
    delay_s: float


def _id(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex}"


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EasyPostDouble:
    def __init__(self, api_key: str = TEST_API_KEY) -> None:
        self.api_key = api_key
        self.shipments: dict[str, dict[str, Any]] = {}
        self.files: dict[str, bytes] = {}
        self.requests: list[tuple[str, str]] = []
        self.purchases: list[str] = []
        self.refunds: list[str] = []
        self.downloads: list[str] = []
        self.refund_status = "submitted"
        self.png_labels = False  # True: ignore label_format, label as EasyPost's default PNG
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.app = self._build_app()
        self._served = ServedApp(self.app, "EasyPost double")
        self.port = self._served.port

    # --- for tests -----------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_base(self) -> str:
        return f"{self.base_url}/v2"

    def reset(self) -> None:
        with self._lock:
            self.shipments.clear()
            self.files.clear()
            self.requests.clear()
            self.purchases.clear()
            self.refunds.clear()
            self.downloads.clear()
            self._faults.clear()
            self.refund_status = "submitted"
            self.png_labels = False

    def fail_next(
        self,
        path_contains: str,
        status: int | None,
        *,
        method: str | None = None,
        code: str = "INTERNAL_SERVER_ERROR",
        message: str = "Something went wrong.",
        delay_s: float = 0.0,
    ) -> None:
        """Answer the next request whose path contains `path_contains` with `status` and
        EasyPost's error object (after `delay_s`). With `status` None the request is handled
        as usual and its answer sent `delay_s` late (a client timing out does not undo it)."""
        with self._lock:
            self._faults.append(Fault(path_contains, method, status, code, message, delay_s))

    def buy_requests(self, shipment_id: str) -> int:
        return self.requests.count(("POST", f"/v2/shipments/{shipment_id}/buy"))

    def tracker_updated(
        self, shipment_id: str, status: str, message: str, *, at: datetime | None = None
    ) -> dict[str, Any]:
        """The `tracker.updated` Event for a bought shipment's tracker, one detail added."""
        shipment = self.shipments[shipment_id]
        tracker = shipment["tracker"]
        return tracker_updated_event(
            tracking_code=tracker["tracking_code"],
            status=status,
            message=message,
            carrier=tracker["carrier"],
            shipment_id=shipment_id,
            tracker_id=tracker["id"],
            previous_status=tracker["status"],
            earlier_details=tracker["tracking_details"],
            at=at,
        )

    @contextlib.contextmanager
    def serving(self) -> Iterator[EasyPostDouble]:
        self.start()
        try:
            yield self
        finally:
            self.stop()

    def start(self) -> None:
        self._served.start()

    def stop(self) -> None:
        self._served.stop()

    # --- the app -------------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(title="EasyPost double", openapi_url=None, docs_url=None, redoc_url=None)

        @app.exception_handler(ApiError)
        async def api_error(request: Request, exc: ApiError) -> JSONResponse:
            return _error(exc.status, exc.code, exc.message, exc.errors)

        @app.middleware("http")
        async def record_and_fault(request: Request, call_next: Any) -> Response:
            path = request.url.path
            with self._lock:
                self.requests.append((request.method, path))
                fault = next(
                    (
                        f
                        for f in self._faults
                        if f.path_contains in path and f.method in (None, request.method)
                    ),
                    None,
                )
                if fault is not None:
                    self._faults.remove(fault)
            if fault is not None and fault.status is not None:
                await asyncio.sleep(fault.delay_s)
                return _error(fault.status, fault.code, fault.message)
            if path.startswith("/v2/"):
                try:
                    self._authenticate(request.headers.get("authorization"))
                except ApiError as exc:
                    return _error(exc.status, exc.code, exc.message)
            response: Response = await call_next(request)
            if fault is not None:  # handled, but answered late: the ambiguous timeout
                await asyncio.sleep(fault.delay_s)
            return response

        @app.post("/v2/shipments")
        async def create_shipment(request: Request) -> JSONResponse:
            body = await _json_body(request)
            params = body.get("shipment")
            if not isinstance(params, dict) or not params:
                raise ApiError(
                    422,
                    "PARAMETER.REQUIRED",
                    "Missing required parameter.",
                    [{"field": "shipment", "message": "cannot be blank"}],
                )
            shipment = self._new_shipment(params)
            with self._lock:
                self.shipments[shipment["id"]] = shipment
            return JSONResponse(shipment, status_code=201)

        @app.get("/v2/shipments/{shipment_id}")
        async def retrieve_shipment(shipment_id: str) -> JSONResponse:
            return JSONResponse(self._shipment(shipment_id))

        @app.post("/v2/shipments/{shipment_id}/buy")
        async def buy_shipment(shipment_id: str, request: Request) -> JSONResponse:
            body = await _json_body(request)
            with self._lock:
                shipment = self._shipment(shipment_id)
                if shipment["postage_label"] is not None:
                    raise ApiError(
                        422, "SHIPMENT.POSTAGE.EXISTS", "Postage already exists for this shipment."
                    )
                rate_param = body.get("rate")
                rate_id = rate_param.get("id") if isinstance(rate_param, dict) else None
                if not rate_id:
                    raise ApiError(
                        422,
                        "PARAMETER.REQUIRED",
                        "Missing required parameter.",
                        [{"field": "rate", "message": "cannot be blank"}],
                    )
                rate = next((r for r in shipment["rates"] if r["id"] == rate_id), None)
                if rate is None:
                    raise ApiError(
                        422,
                        "PARAMETER.INVALID",
                        "Invalid parameter.",
                        [
                            {
                                "field": "rate.id",
                                "message": f"{rate_id} is not a rate of {shipment_id}",
                            }
                        ],
                    )
                self._purchase(shipment, rate)
                self.purchases.append(shipment_id)
                return JSONResponse(shipment)

        @app.get("/v2/shipments/{shipment_id}/label")
        async def convert_label(shipment_id: str, file_format: str = "") -> JSONResponse:
            with self._lock:
                shipment = self._shipment(shipment_id)
                postage = shipment["postage_label"]
                if postage is None:
                    raise ApiError(422, "SHIPMENT.POSTAGE.NONE", "This shipment has no postage.")
                if file_format.upper() != "PDF":
                    raise ApiError(
                        422,
                        "PARAMETER.INVALID",
                        "Invalid parameter.",
                        [{"field": "file_format", "message": "the double converts to PDF only"}],
                    )
                if postage["label_pdf_url"] is None:
                    postage["label_pdf_url"] = self._label_file(shipment, "pdf")
                    postage["updated_at"] = _now()
                return JSONResponse(shipment)

        @app.post("/v2/shipments/{shipment_id}/refund")
        async def refund_shipment(shipment_id: str) -> JSONResponse:
            with self._lock:
                shipment = self._shipment(shipment_id)
                if shipment["postage_label"] is None:
                    raise ApiError(
                        422,
                        "SHIPMENT.REFUND.UNAVAILABLE",
                        "This shipment has no postage to refund.",
                    )
                if shipment["refund_status"] in ("submitted", "refunded"):
                    raise ApiError(
                        422,
                        "SHIPMENT.REFUND.UNAVAILABLE",
                        "A refund has already been requested for this shipment.",
                    )
                shipment["refund_status"] = self.refund_status
                shipment["updated_at"] = _now()
                if self.refund_status in ("submitted", "refunded"):
                    self.refunds.append(shipment_id)
                return JSONResponse(shipment)

        @app.get("/files/postage_label/{day}/{name}")
        async def label_file(day: str, name: str) -> Response:
            path = f"/files/postage_label/{day}/{name}"
            with self._lock:
                content = self.files.get(path)
                if content is not None:
                    self.downloads.append(path)
            if content is None:
                return Response(status_code=404)
            media_type = "application/pdf" if name.endswith(".pdf") else "image/png"
            return Response(content, media_type=media_type)

        return app

    def _authenticate(self, authorization: str | None) -> None:
        if not authorization:
            raise ApiError(
                401,
                "APIKEY.REQUIRED",
                "Missing or invalid API key. Please include a valid API key in the "
                "Authorization header.",
            )
        scheme, _, credentials = authorization.partition(" ")
        key: str | None = None
        if scheme.lower() == "bearer":
            key = credentials.strip()
        elif scheme.lower() == "basic":
            try:
                key = base64.b64decode(credentials.strip()).decode().partition(":")[0]
            except ValueError:
                key = None
        if key != self.api_key:
            raise ApiError(
                401,
                "APIKEY.INACTIVE",
                "This api key is no longer active. Please use a different api key or "
                "reactivate this key.",
            )

    def _shipment(self, shipment_id: str) -> dict[str, Any]:
        shipment = self.shipments.get(shipment_id)
        if shipment is None:
            raise ApiError(404, "NOT_FOUND", "The requested resource could not be found.")
        return shipment

    # --- shapes --------------------------------------------------------------------------------

    def _new_shipment(self, params: dict[str, Any]) -> dict[str, Any]:
        problems: list[dict[str, Any]] = []
        addresses = {}
        for role in ("to_address", "from_address"):
            given = params.get(role)
            if not isinstance(given, dict):
                problems.append({"field": f"shipment.{role}", "message": "cannot be blank"})
                continue
            problems += [
                {"field": f"shipment.{role}.{field}", "message": "cannot be blank"}
                for field in REQUIRED_ADDRESS_FIELDS
                if not given.get(field)
            ]
            addresses[role] = given
        parcel_params = params.get("parcel")
        if not isinstance(parcel_params, dict):
            problems.append({"field": "shipment.parcel", "message": "cannot be blank"})
        if problems:
            raise ApiError(422, "PARAMETER.REQUIRED", "Missing required parameter.", problems)
        assert isinstance(parcel_params, dict)
        parcel = self._parcel(parcel_params)
        now = _now()
        shipment_id = _id("shp")
        options = dict(params.get("options") or {})
        options.setdefault("currency", "USD")
        options.setdefault("payment", {"type": "SENDER"})
        options.setdefault("date_advance", 0)
        to_address = _address(addresses["to_address"], now)
        from_address = _address(addresses["from_address"], now)
        return {
            "id": shipment_id,
            "object": "Shipment",
            "mode": "test",
            "created_at": now,
            "updated_at": now,
            "reference": params.get("reference"),
            "is_return": bool(params.get("is_return", False)),
            "status": "unknown",
            "tracking_code": None,
            "options": options,
            "messages": [],
            "to_address": to_address,
            "from_address": from_address,
            "return_address": from_address,
            "buyer_address": to_address,
            "parcel": parcel,
            "customs_info": None,
            "insurance": None,
            "rates": [
                self._rate(shipment_id, service, parcel["weight"], now) for service in SERVICES
            ],
            "selected_rate": None,
            "postage_label": None,
            "tracker": None,
            "refund_status": None,
            "scan_form": None,
            "batch_id": None,
            "batch_status": None,
            "batch_message": None,
            "order_id": None,
            "forms": [],
            "fees": [],
        }

    def _parcel(self, params: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, float | None] = {}
        for field in ("length", "width", "height", "weight"):
            value = params.get(field)
            if value is None and field != "weight":
                values[field] = None
                continue
            if isinstance(value, bool) or not isinstance(value, int | float) or value <= 0:
                raise ApiError(
                    422,
                    "PARAMETER.INVALID",
                    "Invalid parameter.",
                    [{"field": f"shipment.parcel.{field}", "message": "must be greater than 0"}],
                )
            values[field] = float(value)
        now = _now()
        return {
            "id": _id("prcl"),
            "object": "Parcel",
            "mode": "test",
            "created_at": now,
            "updated_at": now,
            "predefined_package": None,
            **values,
        }

    def _rate(
        self,
        shipment_id: str,
        service: tuple[str, str, Decimal, Decimal, int | None],
        weight_oz: float,
        now: str,
    ) -> dict[str, Any]:
        carrier, name, base, per_oz, days = service
        started_oz = Decimal(str(weight_oz)).to_integral_value(rounding=ROUND_CEILING)
        amount = base + per_oz * started_oz
        retail = (amount * Decimal("1.18")).quantize(Decimal("0.01"))
        return {
            "id": _id("rate"),
            "object": "Rate",
            "mode": "test",
            "created_at": now,
            "updated_at": now,
            "service": name,
            "carrier": carrier,
            "rate": f"{amount:.2f}",
            "currency": "USD",
            "retail_rate": f"{retail:.2f}",
            "retail_currency": "USD",
            "list_rate": f"{amount:.2f}",
            "list_currency": "USD",
            "billing_type": "easypost",
            "delivery_days": days,
            "delivery_date": None,
            "delivery_date_guaranteed": False,
            "est_delivery_days": days,
            "shipment_id": shipment_id,
            "carrier_account_id": f"ca_{hashlib.md5(carrier.encode()).hexdigest()}",
        }

    def _purchase(self, shipment: dict[str, Any], rate: dict[str, Any]) -> None:
        now = _now()
        carrier = rate["carrier"]
        tracking_code = (
            "1Z" + uuid.uuid4().hex[:16].upper()
            if carrier == "UPS"
            else "9400" + str(uuid.uuid4().int)[:18]
        )
        shipment["tracking_code"] = tracking_code
        shipment["selected_rate"] = dict(rate)
        shipment["updated_at"] = now
        wants_pdf = (
            str(shipment["options"].get("label_format", "")).upper() == "PDF"
            and not self.png_labels
        )
        label_url = self._label_file(shipment, "pdf" if wants_pdf else "png")
        shipment["postage_label"] = {
            "id": _id("pl"),
            "object": "PostageLabel",
            "created_at": now,
            "updated_at": now,
            "date_advance": 0,
            "integrated_form": "none",
            "label_date": now,
            "label_resolution": 300,
            "label_size": "4x6",
            "label_type": "default",
            "label_file_type": "application/pdf" if wants_pdf else "image/png",
            "label_url": label_url,
            "label_pdf_url": label_url if wants_pdf else None,
            "label_zpl_url": None,
            "label_epl2_url": None,
            "label_file": None,
        }
        tracker_id = _id("trk")
        shipment["tracker"] = {
            "id": tracker_id,
            "object": "Tracker",
            "mode": "test",
            "tracking_code": tracking_code,
            "status": "pre_transit",
            "status_detail": "status_update",
            "created_at": now,
            "updated_at": now,
            "signed_by": None,
            "weight": None,
            "est_delivery_date": None,
            "shipment_id": shipment["id"],
            "carrier": carrier,
            "tracking_details": [
                _tracking_detail("pre_transit", "Shipping Label Created", now, carrier)
            ],
            "fees": [],
            "carrier_detail": None,
            "public_url": _public_url(tracker_id),
        }
        shipment["fees"] = [
            {
                "object": "Fee",
                "type": "LabelFee",
                "amount": "0.00000",
                "charged": True,
                "refunded": False,
            },
            {
                "object": "Fee",
                "type": "PostageFee",
                "amount": f"{Decimal(rate['rate']):.5f}",
                "charged": True,
                "refunded": False,
            },
        ]

    def _label_file(self, shipment: dict[str, Any], extension: str) -> str:
        path = f"/files/postage_label/{datetime.now(UTC):%Y%m%d}/{uuid.uuid4().hex}.{extension}"
        self.files[path] = (
            _label_pdf(shipment) if extension == "pdf" else b"\x89PNG\r\n\x1a\n(double)"
        )
        return f"{self.base_url}{path}"


# --- webhooks ------------------------------------------------------------------------------------


def tracker_updated_event(
    *,
    tracking_code: str,
    status: str,
    message: str,
    carrier: str = "USPS",
    shipment_id: str | None = None,
    tracker_id: str | None = None,
    previous_status: str = "in_transit",
    earlier_details: list[dict[str, Any]] | None = None,
    at: datetime | None = None,
    status_detail: str = "status_update",
) -> dict[str, Any]:
    """A `tracker.updated` Event as EasyPost posts it: the Tracker in `result`, its newest
    TrackingDetail last, the changed attributes in `previous_attributes`."""
    happened = at or datetime.now(UTC) - timedelta(minutes=3)
    when = happened.strftime("%Y-%m-%dT%H:%M:%SZ")
    tracker_id = tracker_id or _id("trk")
    details = [*(earlier_details or []), _tracking_detail(status, message, when, carrier)]
    details[-1]["status_detail"] = status_detail
    now = _now()
    return {
        "object": "Event",
        "id": _id("evt"),
        "mode": "test",
        "description": "tracker.updated",
        "previous_attributes": {"status": previous_status},
        "created_at": now,
        "updated_at": now,
        "pending_urls": ["https://oms.example.com/v1/carriers/easypost/events"],
        "completed_urls": [],
        "user_id": "user_060ab38db3c04ffaa60f262e5781a9be",
        "status": "pending",
        "result": {
            "id": tracker_id,
            "object": "Tracker",
            "mode": "test",
            "tracking_code": tracking_code,
            "status": status,
            "status_detail": status_detail,
            "created_at": details[0]["datetime"],
            "updated_at": now,
            "signed_by": "J SMITH" if status == "delivered" else None,
            "weight": None,
            "est_delivery_date": when,
            "shipment_id": shipment_id,
            "carrier": carrier,
            "tracking_details": details,
            "carrier_detail": {
                "object": "CarrierDetail",
                "service": None,
                "container_type": None,
                "est_delivery_date_local": None,
                "est_delivery_time_local": None,
                "origin_location": "HOUSTON TX, 77001",
                "destination_location": "CHARLESTON SC, 29401",
                "guaranteed_delivery_date": None,
                "alternate_identifier": None,
                "initial_delivery_attempt": None,
            },
            "fees": [],
            "public_url": _public_url(tracker_id),
        },
    }


def event_body(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode()


def sign(body: bytes, secret: str) -> str:
    """EasyPost's `X-Hmac-Signature`: HMAC-SHA256 of the raw body keyed by the NFKD-normalised
    secret, as `hmac-sha256-hex=<hex>`."""
    key = unicodedata.normalize("NFKD", secret).encode()
    return "hmac-sha256-hex=" + hmac.new(key, body, hashlib.sha256).hexdigest()


# --- helpers -------------------------------------------------------------------------------------


def _error(
    status: int, code: str, message: str, errors: list[dict[str, Any]] | None = None
) -> JSONResponse:
    return JSONResponse(
        {"error": {"code": code, "message": message, "errors": errors or []}}, status_code=status
    )


async def _json_body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = json.loads(raw) if raw else {}
    except ValueError as exc:
        raise ApiError(400, "BAD_REQUEST", "The request body is not valid JSON.") from exc
    if not isinstance(body, dict):
        raise ApiError(400, "BAD_REQUEST", "The request body must be a JSON object.")
    return body


def _address(params: dict[str, Any], now: str) -> dict[str, Any]:
    fields = (
        "name",
        "company",
        "street1",
        "street2",
        "city",
        "state",
        "zip",
        "country",
        "phone",
        "email",
    )
    return {
        "id": _id("adr"),
        "object": "Address",
        "mode": "test",
        "created_at": now,
        "updated_at": now,
        **{field: params.get(field) for field in fields},
        "residential": None,
        "carrier_facility": None,
        "federal_tax_id": None,
        "state_tax_id": None,
        "verifications": {},
    }


def _tracking_detail(status: str, message: str, when: str, carrier: str) -> dict[str, Any]:
    return {
        "object": "TrackingDetail",
        "message": message,
        "description": None,
        "status": status,
        "status_detail": "status_update",
        "datetime": when,
        "source": carrier,
        "carrier_code": None,
        "tracking_location": {
            "object": "TrackingLocation",
            "city": "CHARLESTON",
            "state": "SC",
            "country": "US",
            "zip": "29401",
        },
    }


def _public_url(tracker_id: str) -> str:
    token = base64.urlsafe_b64encode(f"v1:{tracker_id}".encode()).decode().rstrip("=")
    return f"https://track.easypost.com/{token}"


def _label_pdf(shipment: dict[str, Any]) -> bytes:
    """A 4x6 in label PDF naming the carrier, service, tracking code and addresses."""
    out = io.BytesIO()
    page = canvas.Canvas(out, pagesize=(4 * inch, 6 * inch))
    rate = shipment["selected_rate"]
    to = shipment["to_address"]
    lines = [
        f"{rate['carrier']} {rate['service']}",
        f"TRACKING # {shipment['tracking_code']}",
        "",
        "SHIP TO:",
        str(to.get("name") or ""),
        str(to.get("street1") or ""),
        f"{to.get('zip') or ''} {to.get('city') or ''} {to.get('country') or ''}",
        "",
        f"REF {shipment.get('reference') or ''}",
    ]
    y = 5.5 * inch
    for line in lines:
        page.drawString(0.3 * inch, y, line)
        y -= 0.3 * inch
    page.showPage()
    page.save()
    return out.getvalue()
