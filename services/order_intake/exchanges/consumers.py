"""The exchanges' message handlers: returns' commands and events, handed to the service."""

from __future__ import annotations

from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.exchanges import service
from shared.contracts.returns import CreateReplacementOrder, ReturnStatusChanged
from shared.envelope import Envelope
from shared.platform.consumer import Handler
from shared.platform.outbox import UnitOfWork


def exchange_handlers(policy: SagaPolicy) -> dict[str, Handler]:
    async def on_create_replacement_order(
        uow: UnitOfWork, envelope: Envelope, command: CreateReplacementOrder
    ) -> None:
        await service.create_replacement_order(uow, command, policy)

    async def on_return_status_changed(
        uow: UnitOfWork, envelope: Envelope, event: ReturnStatusChanged
    ) -> None:
        await service.record_return_status(uow, event)

    return {
        CreateReplacementOrder.TYPE: on_create_replacement_order,
        ReturnStatusChanged.TYPE: on_return_status_changed,
    }
