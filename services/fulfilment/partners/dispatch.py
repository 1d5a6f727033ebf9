"""Requests to partners: written with the fulfilment, sent after the commit.

- `dispatch_new` runs in the CreateFulfilment transaction: for each new fulfilment at a `3pl`
  or `dropship_supplier` location it records one request in `partner_dispatches` (the
  fulfilment request, or the purchase order with its PDF). A `kafka` connector publishes it at
  once through the outbox (`PartnerFulfilmentRequested`, keyed by the location); a `webhook`
  connector leaves it `pending` for the sender; a location without a connector gets it `dead`
  at once, for an operator to configure the connector and retry. One request per fulfilment
  (its id derives from the fulfilment's; a second insert is a no-op), so a re-sent or
  redelivered CreateFulfilment sends nothing twice.
- `dispatch_cancellations` runs in the CancelFulfilment transaction: a fulfilment cancelled
  after its request went out (`sent` or `published`) gets a `cancellation` written the same way
  (published at once as `PartnerFulfilmentCancelled`, or left `pending` for the sender); one per
  fulfilment (its id derives from the fulfilment's). A request not sent yet is withdrawn by the
  sender instead, and nothing is cancelled at the partner.
- `send_due` (the background sender) claims due webhooks under `FOR UPDATE SKIP LOCKED`, POSTs
  them signed (signing.py) and records every outcome in the same transaction: replicas never
  send one row at the same time, and a row is sent again only after a crash between the
  partner's 2xx and our commit (at-least-once: partners dedupe on `X-OMS-Dispatch-Id`). A
  failure is retried with exponential backoff up to `partner_max_attempts`, then `dead`.
- `retry` is the operator's re-send of a dead request, with the connector as it is now.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx

from services.fulfilment import store as fulfilments_store
from services.fulfilment.domain import Status
from services.fulfilment.partners import store
from services.fulfilment.partners.model import (
    Connector,
    ConnectorKind,
    DispatchStatus,
    RequestKind,
    cancellation_id_for,
    dispatch_id_for,
    request_kind_for,
    retry_delay_s,
)
from services.fulfilment.partners.purchase_order import PoLine, PurchaseOrder, purchase_order_pdf
from services.fulfilment.partners.signing import signed_headers
from services.fulfilment.settings import FulfilmentSettings
from services.fulfilment.store import Fulfilment
from services.fulfilment.warehouse import store as warehouse
from services.fulfilment.warehouse.model import LocationKind
from shared.contracts.common import Address, SkuQuantity
from shared.contracts.fulfilment import (
    PartnerFulfilmentCancelled,
    PartnerFulfilmentRequested,
    PurchaseOrderRef,
)
from shared.platform.outbox import UnitOfWork
from shared.platform.service import Runtime
from shared.platform.telemetry import continue_trace, current_trace_headers

log = logging.getLogger(__name__)

BATCH = 20
DEFAULT_DEADLINE_HOURS = 48
"""The deadline of a request to a location without a connector (it is `dead` until one is
configured; the deadline still runs, so the overdue alert still comes)."""

NO_CONNECTOR = (
    "no connector is configured for location {location}: PUT"
    " /v1/locations/{location}/connector, then retry"
)


# --- writing requests (in the fulfilment's transaction) ------------------------------------


async def dispatch_new(uow: UnitOfWork, fulfilments: Sequence[Fulfilment]) -> None:
    """Record (and for kafka connectors publish) the partner request of each fulfilment at a
    partner location; fulfilments on our own floor are left alone (one statement finds them).
    Held fulfilments wait: their requests go out when the hold is released."""
    fulfilments = [f for f in fulfilments if f.hold_reason is None]
    if not fulfilments:
        return
    partners = await store.partner_locations(uow.conn, sorted({f.location for f in fulfilments}))
    for fulfilment in fulfilments:
        location = partners.get(fulfilment.location)
        if location is not None:
            await _dispatch(uow, fulfilment, location)


async def dispatch_released(uow: UnitOfWork, fulfilment_ids: Sequence[str]) -> None:
    """Released from a hold: the partner requests held back (none recorded yet) go out now."""
    requested = {d.fulfilment_id for d in await store.requests_of(uow.conn, fulfilment_ids)}
    waiting = []
    for fulfilment_id in fulfilment_ids:
        if fulfilment_id not in requested:
            found = await fulfilments_store.get_fulfilment(uow.conn, fulfilment_id)
            if found is not None and found.status is Status.CREATED:
                waiting.append(found)
    await dispatch_new(uow, waiting)


async def requests_gone_out(uow: UnitOfWork, fulfilment_ids: Sequence[str]) -> tuple[str, ...]:
    """Of these held fulfilments, the ones whose request a partner has already received (sent
    or published): a hold does not recall it."""
    gone = {DispatchStatus.SENT, DispatchStatus.PUBLISHED}
    found = await store.requests_of(uow.conn, fulfilment_ids)
    return tuple(sorted({d.fulfilment_id for d in found if d.status in gone}))


async def _dispatch(
    uow: UnitOfWork, fulfilment: Fulfilment, location: store.PartnerLocation
) -> None:
    kind = request_kind_for(LocationKind(location.kind))
    assert kind is not None
    connector = await store.get_connector(uow.conn, location.code)
    now = datetime.now(UTC)
    hours = connector.deadline_hours if connector is not None else DEFAULT_DEADLINE_HOURS
    deadline = now + timedelta(hours=hours)
    dispatch_id = dispatch_id_for(fulfilment.fulfilment_id)
    descriptions = await warehouse.item_descriptions(
        uow.conn, [line.sku for line in fulfilment.lines]
    )
    po_number = await store.next_po_number(uow.conn) if kind is RequestKind.PURCHASE_ORDER else None
    request = _request_document(
        dispatch_id, kind, fulfilment, location, po_number, descriptions, now, deadline
    )
    pdf = None
    if po_number is not None:
        pdf = purchase_order_pdf(
            PurchaseOrder(
                number=po_number,
                issued_at=now,
                confirm_by=deadline,
                supplier_code=location.code,
                supplier_name=location.name,
                supplier_address=location.address,
                ship_to=fulfilment.shipping_address,
                shipping_method=fulfilment.shipping_method,
                order_id=fulfilment.order_id,
                fulfilment_id=fulfilment.fulfilment_id,
                dispatch_id=dispatch_id,
                lines=tuple(
                    PoLine(line.sku, line.quantity, descriptions.get(line.sku) or None)
                    for line in fulfilment.lines
                ),
            )
        )
    await _enqueue(
        uow,
        connector,
        request,
        po_number=po_number,
        po_pdf=pdf,
        created_at=now,
        deadline_at=deadline,
    )


def _request_document(
    dispatch_id: str,
    kind: RequestKind,
    fulfilment: Fulfilment,
    location: store.PartnerLocation,
    po_number: str | None,
    descriptions: dict[str, str],
    now: datetime,
    deadline: datetime,
) -> dict[str, Any]:
    """What the partner is asked for (the PO's PDF is added when it is sent)."""
    document: dict[str, Any] = {
        "dispatch_id": dispatch_id,
        "request_kind": kind.value,
        "order_id": fulfilment.order_id,
        "fulfilment_id": fulfilment.fulfilment_id,
        "location": location.code,
        "lines": [
            {
                "sku": line.sku,
                "quantity": line.quantity,
                **({"description": descriptions[line.sku]} if descriptions.get(line.sku) else {}),
            }
            for line in fulfilment.lines
        ],
        "ship_to": fulfilment.shipping_address,
        "shipping_method": fulfilment.shipping_method,
        "requested_at": now.isoformat(),
        "confirm_by": deadline.isoformat(),
        "confirm_at": f"/v1/partners/{location.code}/shipments",
    }
    if po_number is not None:
        document["purchase_order"] = {
            "number": po_number,
            "supplier": {"code": location.code, "name": location.name},
        }
    return document


# --- cancellations (in the CancelFulfilment transaction) ----------------------------------


async def dispatch_cancellations(
    uow: UnitOfWork, fulfilment_ids: Sequence[str], reason: str
) -> None:
    """Tell the partner of each of these (just cancelled) fulfilments whose request already
    went out; fulfilments on our own floor have no request and are left alone."""
    if not fulfilment_ids:
        return
    for request in await store.requests_of(uow.conn, fulfilment_ids):
        if request.status in (DispatchStatus.SENT, DispatchStatus.PUBLISHED):
            await _cancel(uow, request, reason)


async def _cancel(uow: UnitOfWork, request: store.Dispatch, reason: str) -> None:
    connector = await store.get_connector(uow.conn, request.location)
    now = datetime.now(UTC)
    dispatch_id = cancellation_id_for(request.fulfilment_id)
    document: dict[str, Any] = {
        "dispatch_id": dispatch_id,
        "request_kind": RequestKind.CANCELLATION.value,
        "cancels_dispatch_id": request.dispatch_id,
        "order_id": request.order_id,
        "fulfilment_id": request.fulfilment_id,
        "location": request.location,
        "reason": reason,
        "cancelled_at": now.isoformat(),
    }
    if request.po_number is not None:
        document["purchase_order"] = {"number": request.po_number}
    await _enqueue(
        uow, connector, document, po_number=None, po_pdf=None, created_at=now, deadline_at=now
    )


async def _enqueue(
    uow: UnitOfWork,
    connector: Connector | None,
    request: dict[str, Any],
    *,
    po_number: str | None,
    po_pdf: bytes | None,
    created_at: datetime,
    deadline_at: datetime,
) -> None:
    """Write a request or cancellation (its ids, order, location and kind as its document names
    them) for the location's connector: pending for a webhook (the sender posts it), published
    at once on Kafka, dead when the location has none."""
    if connector is None:
        status = DispatchStatus.DEAD
        error: str | None = NO_CONNECTOR.format(location=request["location"])
    elif connector.kind is ConnectorKind.KAFKA:
        status, error = DispatchStatus.PUBLISHED, None
    else:
        status, error = DispatchStatus.PENDING, None
    new = store.NewDispatch(
        dispatch_id=request["dispatch_id"],
        fulfilment_id=request["fulfilment_id"],
        order_id=request["order_id"],
        location=request["location"],
        request_kind=RequestKind(request["request_kind"]),
        po_number=po_number,
        request=request,
        po_pdf=po_pdf,
        status=status,
        last_error=error,
        created_at=created_at,
        deadline_at=deadline_at,
    )
    if not await store.insert_dispatch(uow.conn, new):
        return
    if status is DispatchStatus.PUBLISHED:
        publish(uow, new.request, new.po_pdf)
    elif status is DispatchStatus.DEAD:
        log.warning(
            "partner %s %s is dead at once: %s", new.request_kind.value, new.dispatch_id, error
        )


def webhook_body(request: dict[str, Any], pdf: bytes | None) -> bytes:
    """The JSON a webhook carries: the request, with the PO's PDF in base64 where there is one."""
    document = dict(request)
    if pdf is not None and "purchase_order" in document:
        document["purchase_order"] = {
            **document["purchase_order"],
            "pdf_base64": base64.b64encode(pdf).decode(),
        }
    return json.dumps(document, separators=(",", ":"), sort_keys=True).encode()


def publish(uow: UnitOfWork, request: dict[str, Any], pdf: bytes | None) -> None:
    """The request (or cancellation) as an event on oms.fulfilment.partners.v1, keyed by the
    location."""
    po = request.get("purchase_order")
    names = {k: request[k] for k in ("dispatch_id", "order_id", "fulfilment_id", "location")}
    event: PartnerFulfilmentCancelled | PartnerFulfilmentRequested
    if request["request_kind"] == RequestKind.CANCELLATION:
        event = PartnerFulfilmentCancelled(
            **names,
            cancels_dispatch_id=request["cancels_dispatch_id"],
            reason=request["reason"],
            cancelled_at=datetime.fromisoformat(request["cancelled_at"]),
            po_number=po["number"] if po is not None else None,
        )
    else:
        event = PartnerFulfilmentRequested(
            **names,
            request_kind=request["request_kind"],
            lines=tuple(
                SkuQuantity(sku=line["sku"], quantity=line["quantity"]) for line in request["lines"]
            ),
            ship_to=Address.model_validate(request["ship_to"]),
            shipping_method=request["shipping_method"],
            requested_at=datetime.fromisoformat(request["requested_at"]),
            confirm_by=datetime.fromisoformat(request["confirm_by"]),
            purchase_order=PurchaseOrderRef(
                number=po["number"], pdf_base64=base64.b64encode(pdf or b"").decode()
            )
            if po is not None
            else None,
        )
    uow.emit(event, key=request["location"], correlation_id=request["order_id"])


# --- the operator's retry -------------------------------------------------------------------


class DispatchNotFound(Exception):
    def __init__(self, dispatch_id: str) -> None:
        super().__init__(f"no partner request {dispatch_id!r}")
        self.dispatch_id = dispatch_id


class RetryRefused(Exception):
    """`code` is stable (the HTTP code, a 409)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


async def retry(uow: UnitOfWork, dispatch_id: str) -> store.Dispatch:
    """Send a dead (or still pending) request again through the location's connector as it is
    now: published at once over Kafka, or due now with a fresh round of webhook attempts. A
    cancellation is sent again whatever its fulfilment's status."""
    dispatch = await store.get_dispatch(uow.conn, dispatch_id, lock=True)
    if dispatch is None:
        raise DispatchNotFound(dispatch_id)
    if dispatch.status not in (DispatchStatus.DEAD, DispatchStatus.PENDING):
        raise RetryRefused(
            f"dispatch_{dispatch.status.value}",
            f"the request is {dispatch.status.value}: only a dead or pending one is retried",
        )
    status = await store.fulfilment_status(uow.conn, dispatch.fulfilment_id)
    if dispatch.request_kind is not RequestKind.CANCELLATION and status != "created":
        raise RetryRefused(
            "fulfilment_not_waiting",
            f"the fulfilment is {status}: the partner has nothing to do for it any more",
        )
    connector = await store.get_connector(uow.conn, dispatch.location)
    if connector is None:
        raise RetryRefused("connector_missing", NO_CONNECTOR.format(location=dispatch.location))
    now = datetime.now(UTC)
    if connector.kind is ConnectorKind.KAFKA:
        request, pdf = await store.dispatch_document(uow.conn, dispatch_id)
        publish(uow, request, pdf)
        await store.save_published(uow.conn, dispatch_id, now)
    else:
        await store.save_requeued(uow.conn, dispatch_id, now)
    found = await store.get_dispatch(uow.conn, dispatch_id)
    assert found is not None
    return found


# --- sending webhooks (the background job) --------------------------------------------------


@dataclass(frozen=True)
class _Outcome:
    status: DispatchStatus
    error: str | None = None
    retry_in_s: float | None = None


async def send_due(
    pool: asyncpg.Pool,
    settings: FulfilmentSettings,
    client: httpx.AsyncClient,
    *,
    limit: int = BATCH,
) -> int:
    """Send the webhooks that are due, up to `limit`, in one transaction; the number handled."""
    async with pool.acquire() as conn, conn.transaction():
        now = datetime.now(UTC)
        due = await store.claim_due(conn, now, limit)
        if not due:
            return 0
        outcomes = await asyncio.gather(*(_send(settings, client, d) for d in due))
        finished = datetime.now(UTC)
        await store.finish_attempts(
            conn,
            [
                store.AttemptOutcome(
                    d.dispatch_id,
                    o.status,
                    o.error,
                    finished + timedelta(seconds=o.retry_in_s) if o.retry_in_s else None,
                )
                for d, o in zip(due, outcomes, strict=True)
            ],
            finished,
        )
    return len(due)


async def _send(
    settings: FulfilmentSettings, client: httpx.AsyncClient, due: store.DueDispatch
) -> _Outcome:
    """One attempt (no database work here: the sends of a batch run side by side)."""
    if due.fulfilment_status == "cancelled" and due.request_kind is not RequestKind.CANCELLATION:
        log.info("partner request %s withdrawn: its fulfilment was cancelled", due.dispatch_id)
        return _Outcome(DispatchStatus.WITHDRAWN, "the fulfilment was cancelled before sending")
    connector = due.connector
    secret = settings.partner_secrets.get(due.location)
    error: str | None
    if connector is None or connector.kind is not ConnectorKind.WEBHOOK or not connector.url:
        error = f"location {due.location} has no webhook connector any more"
    elif secret is None:
        error = f"no secret for location {due.location} in OMS_PARTNER_SECRETS"
    else:
        error = await _post(client, connector.url, secret.get_secret_value().encode(), due)
        if error is None:
            log.info("partner request %s sent to %s", due.dispatch_id, due.location)
            return _Outcome(DispatchStatus.SENT)
    attempts = due.attempts + 1
    if attempts >= settings.partner_max_attempts:
        log.error(
            "partner request %s to %s is dead after %d attempts: %s",
            due.dispatch_id,
            due.location,
            attempts,
            error,
        )
        return _Outcome(DispatchStatus.DEAD, f"after {attempts} attempts: {error}")
    delay = retry_delay_s(attempts, settings.partner_retry_initial_s, settings.partner_retry_max_s)
    log.warning(
        "partner request %s to %s failed (attempt %d, retry in %.0fs): %s",
        due.dispatch_id,
        due.location,
        attempts,
        delay,
        error,
    )
    return _Outcome(DispatchStatus.PENDING, error, delay)


async def _post(
    client: httpx.AsyncClient, url: str, secret: bytes, due: store.DueDispatch
) -> str | None:
    """POST the signed request; None when the partner took it (2xx), else what went wrong."""
    body = webhook_body(due.request, due.po_pdf)
    with continue_trace(due.trace_context, "partner webhook") as span:
        span.set_attribute("oms.order_id", due.order_id)
        span.set_attribute("oms.location", due.location)
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "oms-fulfilment",
            "X-OMS-Dispatch-Id": due.dispatch_id,
            "Idempotency-Key": due.dispatch_id,
            **signed_headers(secret, body, time.time()),
            **current_trace_headers(),
        }
        try:
            response = await client.post(url, content=body, headers=headers)
        except Exception as exc:  # unreachable, timed out, refused, a URL httpx will not take
            return f"{type(exc).__name__}: {exc}"[:500]
        span.set_attribute("http.response.status_code", response.status_code)
    if 200 <= response.status_code < 300:
        return None
    return f"HTTP {response.status_code}: {response.text[:300]}"


def dispatch_sender(
    settings: FulfilmentSettings,
) -> Callable[[Runtime], Coroutine[Any, Any, None]]:
    """The background job (ServiceSpec.background): send what is due, then wait a poll interval
    unless a full batch suggests there is more."""

    async def partner_dispatch_sender(runtime: Runtime) -> None:
        async with httpx.AsyncClient(
            timeout=settings.partner_http_timeout_s, follow_redirects=False
        ) as client:
            while True:
                try:
                    handled = await send_due(runtime.pool, settings, client)
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("partner dispatch pass failed")
                    handled = 0
                if handled < BATCH:
                    await asyncio.sleep(settings.partner_poll_interval_s)

    return partner_dispatch_sender
