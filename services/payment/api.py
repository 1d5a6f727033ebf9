"""Payment's HTTP API (DESIGN.md §9): an order's authorisations, captures, voids and refunds."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Annotated

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from services.payment import store
from shared.platform.auth import Permission, requires
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["payment"])


class OperationOut(BaseModel):
    kind: str = Field(description="authorize, capture, void or refund")
    idempotency_key: str
    amount: Decimal
    outcome: str = Field(
        description="succeeded, declined, or timed_out (ambiguous: retried under the same key)"
    )
    at: datetime
    gateway_reference: str | None
    decline_code: str | None
    reason: str | None
    fulfilment_id: str | None
    shipment_id: str | None = Field(
        description="the parcel a capture was for (null: the whole fulfilment)"
    )
    return_id: str | None


class PaymentOut(BaseModel):
    payment_id: str
    status: str = Field(
        description="requires_action (waiting for the customer's 3-D Secure), authorized,"
        " declined, voided, partially_captured, captured, partially_refunded or refunded"
    )
    amount: Decimal = Field(description="the amount authorised (or asked for, when declined)")
    currency: str
    captured_total: Decimal
    refunded_total: Decimal
    gateway: str = Field(description="the gateway that authorised it (test, stripe, paypal)")
    gateway_reference: str | None
    decline_code: str | None
    decline_reason: str | None
    method: str | None
    created_at: datetime
    operations: list[OperationOut]


class PaymentsOut(BaseModel):
    order_id: str
    payments: list[PaymentOut] = Field(
        description="one per authorisation attempt, oldest first; at most one is not declined"
    )


@router.get(
    "/payments", response_model=PaymentsOut, dependencies=[requires(Permission.PAYMENTS_READ)]
)
async def list_payments(
    runtime: RuntimeDep,
    order_id: Annotated[str, Query(min_length=1, description="the order's id")],
) -> PaymentsOut:
    """Every payment of an order with the gateway operations made for it."""
    async with runtime.pool.acquire() as conn:
        views = await store.payments_of_order(conn, order_id)
    return PaymentsOut(
        order_id=order_id,
        payments=[
            PaymentOut(
                payment_id=view.payment.payment_id,
                status=view.payment.status.value,
                amount=view.payment.amount,
                currency=view.payment.currency,
                captured_total=view.payment.captured_total,
                refunded_total=view.payment.refunded_total,
                gateway=view.payment.gateway,
                gateway_reference=view.payment.gateway_reference,
                decline_code=view.payment.decline_code,
                decline_reason=view.payment.decline_reason,
                method=view.method,
                created_at=view.created_at,
                operations=[
                    OperationOut.model_validate(op, from_attributes=True) for op in view.operations
                ],
            )
            for view in views
        ],
    )
