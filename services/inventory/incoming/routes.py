"""HTTP API of purchase orders: create, list, receive (in full or in part), cancel."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, StringConstraints, field_validator

from services.inventory import api
from services.inventory.incoming.domain import (
    CANCELLED,
    OPEN,
    PurchaseLine,
    ReceiptRefused,
    receive,
)
from services.inventory.incoming.store import PurchaseOrder, PurchaseOrderStore, same_order
from services.inventory.stock.domain import StockChange
from services.inventory.stock.store import InventoryStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1/purchase-orders", tags=["inventory"])

Id = Annotated[str, StringConstraints(pattern=api.CODE_PATTERN)]
PurchaseOrderId = Annotated[str, Path(pattern=api.CODE_PATTERN)]


class LineIn(api.Body):
    sku: api.SkuName
    quantity: api.Units


def _one_line_per_sku(lines: list[LineIn]) -> list[LineIn]:
    skus = [line.sku for line in lines]
    if len(set(skus)) != len(skus):
        raise ValueError("each SKU appears once")
    return lines


class NewPurchaseOrder(api.Body):
    po_id: Id
    reference: api.Text | None = None
    supplier: api.Text | None = None
    location: api.Location
    expected_on: date
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]

    _unique = field_validator("lines")(_one_line_per_sku)


class Receipt(api.Body):
    receipt_id: Id
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]

    _unique = field_validator("lines")(_one_line_per_sku)


class LineView(BaseModel):
    sku: str
    quantity: int
    received: int
    outstanding: int


class PurchaseOrderView(BaseModel):
    po_id: str
    reference: str | None
    supplier: str | None
    location: str
    expected_on: str
    status: Literal["open", "received", "cancelled"]
    lines: list[LineView]


class PurchaseOrderList(BaseModel):
    purchase_orders: list[PurchaseOrderView]


@router.post(
    "",
    response_model=PurchaseOrderView,
    status_code=201,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        200: {"model": PurchaseOrderView, "description": "the same purchase order again"},
        404: {"description": "unknown_sku: define the SKU first"},
        409: {"description": "purchase_order_exists: the id holds another purchase order"},
    },
)
async def create_purchase_order(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    response: Response,
    body: NewPurchaseOrder,
) -> PurchaseOrderView:
    """Stock expected from a supplier at a location on a date. Sending the same one again
    answers 200 and changes nothing."""
    order = PurchaseOrder(
        po_id=body.po_id,
        reference=body.reference,
        supplier=body.supplier,
        location=body.location,
        expected_on=body.expected_on,
        status=OPEN,
        created_at=datetime.now(UTC),
        lines=tuple(PurchaseLine(line.sku, line.quantity) for line in body.lines),
    )
    async with runtime.uow() as uow:
        store = InventoryStore(uow.conn)
        skus = [line.sku for line in body.lines]
        unknown = sorted(set(skus) - await store.known_skus(skus))
        if unknown:
            raise ApiError(
                404, "unknown_sku", f"SKUs not defined: {', '.join(unknown)}", skus=unknown
            )
        orders = PurchaseOrderStore(uow.conn)
        if not await orders.create(order):
            existing = await orders.get(body.po_id)
            assert existing is not None
            if not same_order(existing, order):
                raise ApiError(
                    409,
                    "purchase_order_exists",
                    f"purchase order {body.po_id} exists with other content",
                    po_id=body.po_id,
                )
            response.status_code = 200
            return _view(existing)
        await availability.announce(uow, store, [], skus=skus, correlation_id=body.po_id)
        created = await orders.get(body.po_id)
    assert created is not None
    return _view(created)


@router.get(
    "",
    response_model=PurchaseOrderList,
    dependencies=[requires(Permission.STOCK_READ)],
)
async def list_purchase_orders(
    runtime: RuntimeDep,
    status: Literal["open", "received", "cancelled"] | None = None,
    sku: api.SkuFilter = None,
    limit: api.Limit = 100,
) -> PurchaseOrderList:
    """Purchase orders, soonest expected first."""
    async with runtime.pool.acquire() as conn:
        found = await PurchaseOrderStore(conn).list(status=status, sku=sku, limit=limit)
    return PurchaseOrderList(purchase_orders=[_view(order) for order in found])


@router.get(
    "/{po_id}",
    response_model=PurchaseOrderView,
    dependencies=[requires(Permission.STOCK_READ)],
    responses={404: {"description": "unknown_purchase_order"}},
)
async def get_purchase_order(runtime: RuntimeDep, po_id: PurchaseOrderId) -> PurchaseOrderView:
    async with runtime.pool.acquire() as conn:
        found = await PurchaseOrderStore(conn).get(po_id)
    if found is None:
        raise _unknown(po_id)
    return _view(found)


@router.post(
    "/{po_id}/receipts",
    response_model=PurchaseOrderView,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        404: {"description": "unknown_purchase_order"},
        409: {
            "description": "purchase_order_closed, not_on_purchase_order, or"
            " receipt_id_in_use (the receipt id belongs to another purchase order)"
        },
    },
)
async def receive_purchase_order(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    po_id: PurchaseOrderId,
    body: Receipt,
) -> PurchaseOrderView:
    """Goods of the purchase order arrived (all or part): stock on hand goes up at its
    location (ledger reason `receipt`), and backorders waiting for the SKUs are served first.
    A receipt sent again (same `receipt_id`) is answered and not applied twice."""
    received = {line.sku: line.quantity for line in body.lines}
    async with runtime.uow() as uow:
        orders = PurchaseOrderStore(uow.conn)
        order = await orders.get(po_id, lock=True)
        if order is None:
            raise _unknown(po_id)
        applied = await orders.receipt(body.receipt_id)
        if applied is not None:
            if applied[0] != po_id:
                raise ApiError(
                    409,
                    "receipt_id_in_use",
                    f"receipt {body.receipt_id} belongs to purchase order {applied[0]}",
                    receipt_id=body.receipt_id,
                )
            return _view(order)
        try:
            plan = receive(order.status, order.lines, received)
        except ReceiptRefused as refused:
            raise ApiError(
                409, refused.code, refused.message, po_id=po_id, **refused.detail
            ) from None
        store = InventoryStore(uow.conn)
        await store.lock_stock_at(order.location, received)
        changes = [
            StockChange(sku, order.location, quantity, 0, "receipt")
            for sku, quantity in sorted(received.items())
        ]
        await store.apply_stock_changes(changes, reference=po_id, detail=body.receipt_id)
        await orders.record_receipt(body.receipt_id, po_id, received, plan.lines, plan.status)
        await availability.announce(uow, store, changes, correlation_id=po_id)
        updated = await orders.get(po_id)
    assert updated is not None
    return _view(updated)


@router.post(
    "/{po_id}/cancel",
    response_model=PurchaseOrderView,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        404: {"description": "unknown_purchase_order"},
        409: {"description": "purchase_order_closed: received in full already"},
    },
)
async def cancel_purchase_order(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    po_id: PurchaseOrderId,
) -> PurchaseOrderView:
    """Nothing more is coming on the purchase order (what was received stays)."""
    async with runtime.uow() as uow:
        orders = PurchaseOrderStore(uow.conn)
        order = await orders.get(po_id, lock=True)
        if order is None:
            raise _unknown(po_id)
        if order.status not in {OPEN, CANCELLED}:
            raise ApiError(
                409, "purchase_order_closed", f"purchase order {po_id} is {order.status}"
            )
        if order.status == OPEN:
            await orders.set_status(po_id, CANCELLED)
            await availability.announce(
                uow,
                InventoryStore(uow.conn),
                [],
                skus=[line.sku for line in order.lines],
                correlation_id=po_id,
            )
        updated = await orders.get(po_id)
    assert updated is not None
    return _view(updated)


def _unknown(po_id: str) -> ApiError:
    return ApiError(404, "unknown_purchase_order", f"no purchase order {po_id}", po_id=po_id)


def _view(order: PurchaseOrder) -> PurchaseOrderView:
    return PurchaseOrderView(
        po_id=order.po_id,
        reference=order.reference,
        supplier=order.supplier,
        location=order.location,
        expected_on=order.expected_on.isoformat(),
        status=order.status,
        lines=[
            LineView(
                sku=line.sku,
                quantity=line.quantity,
                received=line.received,
                outstanding=line.outstanding,
            )
            for line in order.lines
        ],
    )
