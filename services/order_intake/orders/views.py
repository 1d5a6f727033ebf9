"""What the order API answers: an order in full (`GET /v1/orders/{id}`) and a row of the order
list. Money as strings rounded to the currency."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from services.order_intake.domain import saga as saga_domain
from services.order_intake.orders.schemas import CancelAccepted, UnitsOut
from shared.money import round_money
from shared.platform.saga.views import timeline_view


def order_view(row: dict[str, Any]) -> dict[str, Any]:
    saga = saga_domain.OrderSaga.model_validate(row["saga"])
    if saga.paid_externally:
        payment_status = "paid_externally"
    elif saga.captured_total > 0:
        captured_all = saga.captured_total >= saga_domain.capture_target(saga)
        payment_status = "captured" if captured_all else "partially_captured"
    elif saga.payment_voided:
        payment_status = "voided"
    elif saga.payment_authorized:
        payment_status = "authorized"
    elif saga.status == saga_domain.Status.AWAITING_CUSTOMER_ACTION:
        payment_status = "requires_action"
    elif saga.status in {saga_domain.Status.CANCELLED, saga_domain.Status.REJECTED}:
        payment_status = "not_taken"
    else:
        payment_status = "pending"
    traceparent = saga.trace_context.get("traceparent", "")
    parts = traceparent.split("-")
    return {
        "order_id": row["order_id"],
        "trace_id": parts[1] if len(parts) == 4 else None,
        "channel": row["channel"],
        "external_id": row["external_id"],
        "status": row["status"],
        "reason": saga.reason,
        "cancel_requested": saga.cancel_requested,
        "customer": row["customer"],
        "shipping_address": row["shipping_address"],
        "billing_address": row["billing_address"],
        "shipping_method": row["shipping_method"],
        "lines": [
            {
                "line_id": li["line_id"],
                "sku": li["sku"],
                "quantity": li["quantity"],
                "unit_price": _money(li["unit_price"], row["currency"]),
                "line_total": _money(li["line_total"], row["currency"]),
            }
            for li in row["lines"]
        ],
        "totals": {
            "currency": row["currency"],
            **{
                name: _money(row[name], row["currency"])
                for name in ("subtotal", "discount", "shipping", "tax", "total")
            },
        },
        "payment": {
            "status": payment_status,
            "authorized": saga.payment_authorized,
            "captured_total": _money(saga.captured_total, row["currency"]),
            # What it captures in all: the total less what was cancelled from the order.
            "capture_target": _money(saga_domain.capture_target(saga), row["currency"]),
            # What the shop front needs to let the customer authenticate (3-D Secure).
            "next_action": _next_action(saga),
            # Refunded at the provider (its dashboard), not through a return.
            "refunded_externally": _money(saga.refunded_externally, row["currency"]),
            "external_refunds": [
                {
                    "gateway_refund_id": r.gateway_refund_id,
                    "amount": _money(r.amount, row["currency"]),
                    "gateway": r.gateway,
                    "refunded_at": r.refunded_at.isoformat(),
                }
                for r in saga.external_refunds.values()
            ],
        },
        "disputes": [
            {
                "dispute_id": d.dispute_id,
                "amount": _money(d.amount, d.currency),
                "currency": d.currency,
                "reason": d.reason,
                "gateway": d.gateway,
                "opened_at": d.opened_at.isoformat(),
            }
            for d in saga.disputes.values()
        ],
        "fulfilment": {
            "fulfilments": [_fulfilment(f, row["currency"]) for f in saga.fulfilments.values()],
            "allocations": [a.model_dump() for a in saga.allocations],
            "short_picks": [_short(s, row["currency"]) for s in saga.shorts.values()],
        },
        "hold": saga.hold.model_dump(mode="json") if saga.hold is not None else None,
        "risk": _risk(saga),
        "saga": {
            "step": saga.step,
            "attempt": saga.attempt,
            "deadline_at": saga.deadline_at.isoformat() if saga.deadline_at else None,
            "sla_deadline_at": saga.sla_deadline_at.isoformat() if saga.sla_deadline_at else None,
            "pending_compensations": list(saga.pending_compensations),
        },
        "timeline": timeline_view(row["timeline"]),
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _next_action(saga: saga_domain.OrderSaga) -> dict[str, Any] | None:
    action = saga.customer_action
    if saga.status != saga_domain.Status.AWAITING_CUSTOMER_ACTION or action is None:
        return None
    return {
        "type": action.next_action,
        "client_secret": action.client_secret,
        "expires_at": action.expires_at.isoformat(),
    }


def _risk(saga: saga_domain.OrderSaga) -> dict[str, Any] | None:
    """The fraud rules' assessment (score, outcome, each rule's reason) and the address the
    order was posted from; None when the order was not scored."""
    if saga.risk is None and saga.risk_signals is None:
        return None
    assessed = saga.risk.detail() if saga.risk is not None else {}
    client_ip = saga.risk_signals.client_ip if saga.risk_signals is not None else None
    return {**assessed, "client_ip": client_ip}


def _fulfilment(f: saga_domain.SagaFulfilment, currency: str) -> dict[str, Any]:
    """One fulfilment and the shipments (parcels) it left in so far; carrier and tracking
    number at the top are the latest shipment's."""
    if f.cancelled:
        status = "cancelled"
    elif f.delivered:
        status = "delivered"
    elif f.shipped:
        status = "shipped"
    elif f.shipments:
        status = "partially_shipped"
    else:
        status = "open"
    last = f.last_shipment
    return {
        "fulfilment_id": f.fulfilment_id,
        "location": f.location,
        "status": status,
        "rest_cancelled": f.rest_cancelled,
        "carrier": last.carrier if last else None,
        "tracking_number": last.tracking_number if last else None,
        "lines": [line.model_dump() for line in f.lines],
        "short": [line.model_dump() for line in f.short],
        "ended_short": f.ended_short,
        "reallocated_for_short": f.reallocated_for_short,
        "unshipped": [{"sku": sku, "quantity": n} for sku, n in f.unshipped().items()]
        if not f.cancelled
        else [],
        "shipments": [
            {
                "shipment_id": s.shipment_id,
                "lines": [line.model_dump() for line in s.lines],
                "carrier": s.carrier,
                "tracking_number": s.tracking_number,
                "tracking_url": s.tracking_url,
                "shipped_at": s.shipped_at.isoformat() if s.shipped_at else None,
                "capture_amount": _money(s.capture_amount, currency)
                if s.capture_amount is not None
                else None,
                "captured": s.captured,
                "capture_failed": s.capture_failed,
                "delivered": s.delivered,
            }
            for s in f.shipments.values()
        ],
        "refused_shipments": list(f.refused_shipments),
    }


def _short(s: saga_domain.SagaShort, currency: str) -> dict[str, Any]:
    """A short pick: the units a bin did not hold, and what became of them (re-allocated to
    `fulfilments`, cancelled from the order for `value`, or still being decided)."""
    return {
        "short_id": s.short_id,
        "fulfilment_id": s.fulfilment_id,
        "location": s.location,
        "bin": s.bin,
        "sku": s.sku,
        "quantity": s.quantity,
        "state": s.state.value,
        "allocations": [a.model_dump() for a in s.allocations],
        "fulfilments": list(s.fulfilments),
        "value": _money(s.value, currency) if s.value is not None else None,
        "reason": s.reason,
    }


def cancel_answer(saga: saga_domain.OrderSaga, decision: saga_domain.Decision) -> CancelAccepted:
    """The answer to a cancel: its scope, and for the rest of a partly shipped order the units
    it takes and what is not charged (as the saga noted them when it took the request)."""
    status = saga.status
    answer = CancelAccepted(
        order_id=saga.order_id,
        status=status.value,
        cancel="done" if status == saga_domain.Status.CANCELLED else "pending",
        scope="unshipped_rest"
        if saga.cancel_rest or saga_domain.shipped_anything(saga)
        else "order",
    )
    requested = next((e.detail for e in decision.timeline if e.event == "cancel_requested"), {})
    if requested.get("scope") == "unshipped_rest":
        answer.unshipped = [UnitsOut(**line) for line in requested["unshipped"]]
        answer.not_charged = requested["not_charged"]
        answer.currency = requested["currency"]
    return answer


def order_row(row: dict[str, Any]) -> dict[str, Any]:
    """One order of `GET /v1/orders` (the customer as stored; the route masks it)."""
    return {
        "order_id": row["order_id"],
        "channel": row["channel"],
        "external_id": row["external_id"],
        "status": row["status"],
        "currency": row["currency"],
        "total": _money(row["total"], row["currency"]),
        "customer": row["customer"],
        "created_at": row["created_at"].isoformat(),
        "updated_at": row["updated_at"].isoformat(),
    }


def _money(value: Decimal, currency: str) -> str:
    return str(round_money(Decimal(value), currency))
