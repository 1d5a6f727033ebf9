"""Transfers' HTTP API: create, ship, receive (in full or in part), cancel, read.

Each write locks the transfer's row, asks `domain`, saves, writes the stock changes to the
ledger and announces them. Retries are safe: creating honours `Idempotency-Key`; shipping or
cancelling again is a repeat that moves nothing; a receipt is applied once per receipt id (the
body's `receipt_id`, else the `Idempotency-Key`).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Annotated, Any

import asyncpg
from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, Field, ValidationInfo, field_validator

from services.inventory import api
from services.inventory.availability.channels import Availability
from services.inventory.stock.store import InventoryStore, LedgerEntry
from services.inventory.transfers import domain
from services.inventory.transfers.domain import Refusal, Status, Transfer, TransferLine
from services.inventory.transfers.store import Receipt, TransferRecord, TransferStore
from shared.platform.auth import Permission, requires
from shared.platform.errors import ApiError
from shared.platform.outbox import UnitOfWork
from shared.platform.saga.idempotency import request_hash
from shared.platform.service import RuntimeDep

router = APIRouter(prefix="/v1", tags=["transfers"])

TransferId = Annotated[str, Path(min_length=1, max_length=64)]

_STATUS = {
    Refusal.INSUFFICIENT_STOCK: 409,
    Refusal.NOT_SHIPPED: 409,
    Refusal.TRANSFER_CANCELLED: 409,
    Refusal.TRANSFER_RECEIVED: 409,
    Refusal.OVER_RECEIPT: 409,
    Refusal.SKU_NOT_IN_TRANSFER: 422,
}


class LineIn(api.Body):
    sku: api.SkuName
    quantity: api.Units


def _unique_skus(lines: list[LineIn]) -> list[LineIn]:
    domain.validate_lines([(line.sku, line.quantity) for line in lines])
    return lines


class TransferIn(api.Body):
    from_location: api.Location
    to_location: api.Location
    lines: list[LineIn] = Field(min_length=1, max_length=500)
    reference: api.Text | None = None
    expected_on: date | None = Field(default=None, description="when it should arrive")

    @field_validator("to_location")
    @classmethod
    def _elsewhere(cls, value: str, info: ValidationInfo) -> str:
        if value == info.data.get("from_location"):
            raise ValueError("must differ from from_location")
        return value

    @field_validator("lines")
    @classmethod
    def _each_sku_once(cls, lines: list[LineIn]) -> list[LineIn]:
        return _unique_skus(lines)


class ReceiptIn(api.Body):
    receipt_id: api.Text | None = Field(
        default=None, description="the client's id of this receipt: a repeat is applied once"
    )
    lines: list[LineIn] = Field(min_length=1, max_length=500)

    @field_validator("lines")
    @classmethod
    def _each_sku_once(cls, lines: list[LineIn]) -> list[LineIn]:
        return _unique_skus(lines)


class TransferLineView(BaseModel):
    sku: str
    quantity: int
    received: int
    returned: int = Field(description="put back at the source when cancelled in transit")
    in_transit: int


class LineView(BaseModel):
    sku: str
    quantity: int


class ReceiptView(BaseModel):
    receipt_id: str
    lines: list[LineView]
    received_at: datetime


class TransferView(BaseModel):
    transfer_id: str
    status: Status
    from_location: str
    to_location: str
    reference: str | None
    expected_on: date | None
    lines: list[TransferLineView]
    created_at: datetime
    shipped_at: datetime | None
    received_at: datetime | None
    cancelled_at: datetime | None


class TransferDetail(TransferView):
    receipts: list[ReceiptView]


class Movement(BaseModel):
    """One stock change of the request (one ledger row)."""

    ledger_id: int
    sku: str
    location: str
    delta: int
    reason: str


class TransferAction(TransferDetail):
    moved: list[Movement] = Field(description="what this request moved; none for a repeat")


class ReceiptResult(TransferAction):
    receipt: ReceiptView
    duplicate: bool = Field(description="a repeat of a receipt applied before: nothing moved")


class TransferList(BaseModel):
    transfers: list[TransferView]


NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"description": "transfer_not_found"}}


@router.post(
    "/transfers",
    status_code=201,
    response_model=TransferDetail,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        200: {"model": TransferDetail, "description": "a repeat (same Idempotency-Key)"},
        **api.UNKNOWN_SKU,
        409: {"description": "idempotency_key_reused: the key was used for another transfer"},
    },
)
async def create_transfer(
    runtime: RuntimeDep,
    response: Response,
    body: TransferIn,
    idempotency_key: api.IdempotencyKey = None,
) -> TransferDetail:
    """Ask to move stock from one location to another (`requested`: nothing moves until it
    ships). Honours `Idempotency-Key`."""
    body_hash = request_hash(body.model_dump(mode="json"))
    async with runtime.uow() as uow:
        transfers = TransferStore(uow.conn)
        if idempotency_key is not None:
            earlier = await _created_before(transfers, idempotency_key, body_hash)
            if earlier is not None:
                response.status_code = 200
                return await _detail(transfers, earlier)
        await api.require_skus(InventoryStore(uow.conn), [line.sku for line in body.lines])
        transfer = Transfer(
            transfer_id=f"tr_{uuid.uuid4().hex}",
            from_location=body.from_location,
            to_location=body.to_location,
            status=Status.REQUESTED,
            lines=tuple(TransferLine(line.sku, line.quantity) for line in body.lines),
        )
        await transfers.create(
            transfer,
            reference=body.reference,
            expected_on=body.expected_on,
            idempotency_key=idempotency_key,
            request_hash=body_hash if idempotency_key is not None else None,
        )
        return await _detail(transfers, transfer.transfer_id)


@router.post(
    "/transfers/{transfer_id}/ship",
    response_model=TransferAction,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        **NOT_FOUND,
        409: {
            "description": "insufficient_stock (the source's free stock, on hand less reserved,"
            " is short of a line) or transfer_cancelled"
        },
    },
)
async def ship_transfer(
    runtime: RuntimeDep, availability: api.Availabilities, transfer_id: TransferId
) -> TransferAction:
    """The goods leave the source (`transfer_out` in its ledger): in transit. Only free stock
    ships, never what orders reserved; all lines or none. Shipping again changes nothing."""
    async with runtime.uow() as uow:
        transfers, stock = TransferStore(uow.conn), InventoryStore(uow.conn)
        transfer = await _lock(transfers, transfer_id)
        levels = await stock.lock_stock(line.sku for line in transfer.lines)
        free = {lv.sku: lv.available for lv in levels if lv.location == transfer.from_location}
        decision = domain.ship(transfer, free)
        moved = await _apply(
            uow, availability, transfer, decision, detail=f"to {transfer.to_location}"
        )
        return TransferAction(**(await _detail(transfers, transfer_id)).model_dump(), moved=moved)


@router.post(
    "/transfers/{transfer_id}/receipts",
    status_code=201,
    response_model=ReceiptResult,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={
        200: {"model": ReceiptResult, "description": "a repeat of a receipt (same receipt id)"},
        **NOT_FOUND,
        409: {
            "description": "over_receipt (more than is in transit), not_shipped,"
            " transfer_received, transfer_cancelled, receipt_id_reused (the id was used for"
            " other lines)"
        },
        422: {"description": "sku_not_in_transfer, or an invalid request (names the field)"},
    },
)
async def receive_transfer(
    runtime: RuntimeDep,
    availability: api.Availabilities,
    response: Response,
    transfer_id: TransferId,
    body: ReceiptIn,
    idempotency_key: api.IdempotencyKey = None,
) -> ReceiptResult:
    """Units that arrived at the destination (`transfer_in` in its ledger; its stock row is
    created if missing): `partially_received`, or `received` once everything arrived. Applied
    once per receipt id (`receipt_id` in the body, else the `Idempotency-Key` header)."""
    if body.receipt_id and idempotency_key and body.receipt_id != idempotency_key:
        problem = "differs from the Idempotency-Key header: give one of them"
        raise ApiError(
            422,
            "validation_failed",
            f"receipt_id: {problem}",
            problems=[{"field": "receipt_id", "message": problem}],
        )
    receipt_id = body.receipt_id or idempotency_key or f"rcpt_{uuid.uuid4().hex}"
    arrived = [(line.sku, line.quantity) for line in body.lines]
    body_hash = request_hash(sorted(arrived))
    async with runtime.uow() as uow:
        transfers = TransferStore(uow.conn)
        transfer = await _lock(transfers, transfer_id)
        earlier = await transfers.receipt(transfer_id, receipt_id)
        if earlier is not None:
            if earlier.request_hash != body_hash:
                raise ApiError(
                    409,
                    "receipt_id_reused",
                    f"receipt {receipt_id} of transfer {transfer_id} had other lines",
                    transfer_id=transfer_id,
                    receipt_id=receipt_id,
                )
            response.status_code = 200
            return ReceiptResult(
                **(await _detail(transfers, transfer_id)).model_dump(),
                moved=[],
                receipt=_receipt_view(earlier),
                duplicate=True,
            )
        decision = domain.receive(transfer, arrived)
        if isinstance(decision, domain.Change):
            skus = [sku for sku, _ in arrived]
            stock = InventoryStore(uow.conn)
            await stock.lock_stock_at(transfer.to_location, skus)
        moved = await _apply(
            uow, availability, transfer, decision, detail=f"from {transfer.from_location}"
        )
        receipt = await transfers.record_receipt(transfer_id, receipt_id, body_hash, arrived)
        return ReceiptResult(
            **(await _detail(transfers, transfer_id)).model_dump(),
            moved=moved,
            receipt=_receipt_view(receipt),
            duplicate=False,
        )


@router.post(
    "/transfers/{transfer_id}/cancel",
    response_model=TransferAction,
    dependencies=[requires(Permission.STOCK_WRITE)],
    responses={**NOT_FOUND, 409: {"description": "transfer_received: it cannot be cancelled"}},
)
async def cancel_transfer(
    runtime: RuntimeDep, availability: api.Availabilities, transfer_id: TransferId
) -> TransferAction:
    """Cancel. Before it shipped nothing moves; in transit, the goods come back: the units not
    received yet go back on hand at the source (`transfer_returned`), what arrived stays.
    Cancelling again changes nothing."""
    async with runtime.uow() as uow:
        transfers = TransferStore(uow.conn)
        transfer = await _lock(transfers, transfer_id)
        decision = domain.cancel(transfer)
        if isinstance(decision, domain.Change) and decision.stock_changes:
            await InventoryStore(uow.conn).lock_stock(c.sku for c in decision.stock_changes)
        moved = await _apply(
            uow,
            availability,
            transfer,
            decision,
            detail=f"cancelled in transit to {transfer.to_location}",
        )
        return TransferAction(**(await _detail(transfers, transfer_id)).model_dump(), moved=moved)


@router.get(
    "/transfers",
    response_model=TransferList,
    dependencies=[requires(Permission.STOCK_READ)],
)
async def list_transfers(
    runtime: RuntimeDep,
    status: Status | None = None,
    location: api.LocationFilter = None,
    limit: api.Limit = 50,
) -> TransferList:
    """Transfers, newest first; `location`: from or to it."""
    async with runtime.pool.acquire() as conn:
        records = await TransferStore(conn).listing(status=status, location=location, limit=limit)
    return TransferList(transfers=[_view(record) for record in records])


@router.get(
    "/transfers/{transfer_id}",
    response_model=TransferDetail,
    dependencies=[requires(Permission.STOCK_READ)],
    responses=NOT_FOUND,
)
async def get_transfer(runtime: RuntimeDep, transfer_id: TransferId) -> TransferDetail:
    async with runtime.pool.acquire() as conn:
        return await _detail(TransferStore(conn), transfer_id)


# --- steps shared by the writes -----------------------------------------------------------------


async def _created_before(transfers: TransferStore, key: str, body_hash: str) -> str | None:
    """The transfer this Idempotency-Key created with the same request, if any (the key is
    locked until the transaction ends, so a concurrent repeat waits and then finds it)."""
    await transfers.lock_idempotency_key(key)
    known = await transfers.created_with_key(key)
    if known is None:
        return None
    transfer_id, earlier_hash = known
    api.refuse_reused_key(earlier_hash, body_hash, "transfer", transfer_id=transfer_id)
    return transfer_id


async def _lock(transfers: TransferStore, transfer_id: str) -> Transfer:
    transfer = await transfers.lock(transfer_id)
    if transfer is None:
        raise _not_found(transfer_id)
    return transfer


async def _apply(
    uow: UnitOfWork,
    availability: Availability,
    transfer: Transfer,
    decision: domain.Decision,
    *,
    detail: str,
) -> list[Movement]:
    """Save a decision: the transfer's new state, its stock changes (stock rows already locked)
    in the ledger under the transfer's id, announced to the channels. A refusal is an error."""
    if isinstance(decision, domain.Refused):
        raise ApiError(
            _STATUS[decision.code],
            decision.code.value,
            decision.message,
            transfer_id=transfer.transfer_id,
            **decision.details,
        )
    if isinstance(decision, domain.Repeat):
        return []
    await TransferStore(uow.conn).save(transfer.transfer_id, decision.status, decision.lines)
    stock = InventoryStore(uow.conn)
    try:
        entries = await stock.apply_stock_changes(
            decision.stock_changes, reference=transfer.transfer_id, detail=detail
        )
    except asyncpg.CheckViolationError as exc:  # the constraints as last line of defence
        raise ApiError(
            409, "insufficient_stock", f"transfer {transfer.transfer_id}: {exc}"
        ) from exc
    await availability.announce(
        uow, stock, decision.stock_changes, correlation_id=transfer.transfer_id
    )
    return [_movement(entry) for entry in entries]


def _movement(entry: LedgerEntry) -> Movement:
    return Movement(
        ledger_id=entry.id,
        sku=entry.sku,
        location=entry.location,
        delta=entry.on_hand_delta,
        reason=entry.reason,
    )


async def _detail(transfers: TransferStore, transfer_id: str) -> TransferDetail:
    record = await transfers.get(transfer_id)
    if record is None:
        raise _not_found(transfer_id)
    receipts = await transfers.receipts(transfer_id)
    return TransferDetail(
        **_view(record).model_dump(), receipts=[_receipt_view(r) for r in receipts]
    )


def _view(record: TransferRecord) -> TransferView:
    transfer = record.transfer
    return TransferView(
        transfer_id=transfer.transfer_id,
        status=transfer.status,
        from_location=transfer.from_location,
        to_location=transfer.to_location,
        reference=record.reference,
        expected_on=record.expected_on,
        lines=[
            TransferLineView(
                sku=line.sku,
                quantity=line.quantity,
                received=line.received,
                returned=line.returned,
                in_transit=transfer.in_transit(line),
            )
            for line in transfer.lines
        ],
        created_at=record.created_at,
        shipped_at=record.shipped_at,
        received_at=record.received_at,
        cancelled_at=record.cancelled_at,
    )


def _receipt_view(receipt: Receipt) -> ReceiptView:
    return ReceiptView(
        receipt_id=receipt.receipt_id,
        lines=[LineView(sku=sku, quantity=quantity) for sku, quantity in receipt.lines],
        received_at=receipt.received_at,
    )


def _not_found(transfer_id: str) -> ApiError:
    return ApiError(
        404, "transfer_not_found", f"no transfer {transfer_id}", transfer_id=transfer_id
    )
