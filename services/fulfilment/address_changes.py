"""UpdateShippingAddress from the order saga: a sales channel changed the order's shipping
address before picking.

Under the order's lock, with its fulfilments locked (so a pick list release in flight either
took them first, and the change sees them released, or waits for it): the pure rule
(`domain.plan_address_change`) takes the change for every open fulfilment when none has started
picking and no partner has the request, else refuses it whole. The decision is stored by
`change_id` and is the answer to every re-send of the command (ShippingAddressUpdated or
ShippingAddressChangeRefused), even when the floor has moved on since. Labels, packing slips
and partner requests made later read the fulfilment's address, so they use the new one.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from services.fulfilment import store
from services.fulfilment.domain import AddressFacts, Status, plan_address_change
from services.fulfilment.partners import store as partners_store
from shared.contracts.fulfilment import ShippingAddressChangeRefused, ShippingAddressUpdated
from shared.contracts.order_intake import UpdateShippingAddress
from shared.envelope import Envelope
from shared.platform.outbox import UnitOfWork


async def on_update_shipping_address(
    uow: UnitOfWork, envelope: Envelope, command: UpdateShippingAddress
) -> None:
    await store.lock_order(uow.conn, command.order_id)
    decided = await store.address_change(uow.conn, command.change_id)
    if decided is None:
        decided = await _decide(uow, command)
        await store.insert_address_change(uow.conn, decided)
    _answer(uow, decided)


async def _decide(uow: UnitOfWork, command: UpdateShippingAddress) -> store.AddressChangeRecord:
    found = await store.lock_for_address_change(uow.conn, command.order_id)
    open_ids = [fid for fid, status, _, _ in found if status is Status.CREATED]
    requested = {d.fulfilment_id for d in await partners_store.requests_of(uow.conn, open_ids)}
    ships_to = ship_to(command)
    plan = plan_address_change(
        (
            AddressFacts(fid, status, released, fid in requested, address)
            for fid, status, released, address in found
        ),
        ships_to,
    )
    if plan.refused:
        return store.AddressChangeRecord(
            command.change_id,
            command.order_id,
            "refused",
            plan.code,
            plan.reason,
            plan.blocking,
        )
    if plan.to_update:
        await store.save_shipping_address(uow.conn, plan.to_update, ships_to, datetime.now(UTC))
    return store.AddressChangeRecord(
        command.change_id, command.order_id, "updated", None, None, plan.updated
    )


def ship_to(command: UpdateShippingAddress) -> dict[str, Any]:
    """The address as fulfilments keep it: with the recipient's name when the order has one."""
    address: dict[str, Any] = command.shipping_address.model_dump(mode="json")
    if command.recipient_name:
        address["name"] = command.recipient_name
    return address


def _answer(uow: UnitOfWork, decided: store.AddressChangeRecord) -> None:
    if decided.outcome == "updated":
        uow.emit(
            ShippingAddressUpdated(
                order_id=decided.order_id,
                change_id=decided.change_id,
                updated=decided.fulfilments,
            ),
            key=decided.order_id,
        )
        return
    uow.emit(
        ShippingAddressChangeRefused(
            order_id=decided.order_id,
            change_id=decided.change_id,
            code=decided.code or "refused",
            reason=decided.reason or "the address can no longer be changed",
            fulfilments=decided.fulfilments,
        ),
        key=decided.order_id,
    )
