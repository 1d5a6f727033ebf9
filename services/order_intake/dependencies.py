"""What order-intake's routes are given (FastAPI `Depends`) besides the platform's `RuntimeDep`:
the service's typed settings, the saga policy, the actions on an order, and what a route that takes orders in needs
(`Intake`: admission control, the request's refusals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.operators.admission import ADMISSION_STATE_KEY, Admission
from services.order_intake.orders.service import (
    Acted,
    HoldAction,
    OperatorAction,
    cancel_order,
    hold_action,
    operator_action,
    policy_from,
)
from services.order_intake.rejected_requests.refusal import Refusals
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.service import Runtime, RuntimeDep, service_settings

SettingsDep = Annotated[OrderIntakeSettings, Depends(service_settings(OrderIntakeSettings))]


async def saga_policy(settings: SettingsDep) -> SagaPolicy:
    return policy_from(settings)


PolicyDep = Annotated[SagaPolicy, Depends(saga_policy)]


@dataclass(frozen=True)
class OrderActions:
    """What a customer or an operator may ask of an order's saga, each in a transaction of its
    own (see orders/service.py)."""

    runtime: Runtime
    policy: SagaPolicy

    async def cancel(self, order_id: str, reason: str, *, subject: str) -> Acted:
        async with self.runtime.uow() as uow:
            return await cancel_order(uow, order_id, reason, self.policy, subject=subject)

    async def operator_action(
        self,
        order_id: str,
        action: OperatorAction,
        *,
        subject: str,
        by: str | None,
        note: str | None,
    ) -> Acted:
        async with self.runtime.uow() as uow:
            return await operator_action(
                uow, order_id, action, self.policy, subject=subject, by=by, note=note
            )

    async def hold_action(
        self,
        order_id: str,
        action: HoldAction,
        *,
        subject: str,
        by: str | None,
        note: str | None,
        reason: str | None = None,
    ) -> Acted:
        async with self.runtime.uow() as uow:
            return await hold_action(
                uow,
                order_id,
                action,
                self.policy,
                subject=subject,
                by=by,
                note=note,
                reason=reason,
            )


async def order_actions(runtime: RuntimeDep, policy: PolicyDep) -> OrderActions:
    return OrderActions(runtime, policy)


OrderActionsDep = Annotated[OrderActions, Depends(order_actions)]


@dataclass(frozen=True)
class Intake:
    """What a route that takes orders in (the native API, the channels' webhooks) is given."""

    runtime: Runtime
    settings: OrderIntakeSettings
    policy: SagaPolicy
    # Admission control, once its background task installed it (None: no limit).
    admission: Admission | None
    refusals: Refusals
    # The address the request came from (behind a proxy: as the server was told, see README).
    client_address: str | None = None

    async def read_body(self) -> bytes:
        """The request's body, refused (and kept) above the service's size limit."""
        return await self.refusals.read_body(self.settings.max_body_bytes)

    def admit(self) -> None:
        """Refuse a new order (429 intake_overloaded) while too many are in flight."""
        if self.admission is not None:
            self.admission.check()

    def accepted(self) -> None:
        """A new order was taken in (admission control counts it)."""
        if self.admission is not None:
            self.admission.accepted()


async def intake(
    request: Request, runtime: RuntimeDep, settings: SettingsDep, policy: PolicyDep
) -> Intake:
    found = runtime.state.get(ADMISSION_STATE_KEY)
    return Intake(
        runtime,
        settings,
        policy,
        admission=found if isinstance(found, Admission) else None,
        refusals=Refusals(runtime.pool, request, settings.rejected_request_body_max_bytes),
        client_address=request.client.host if request.client else None,
    )


IntakeDep = Annotated[Intake, Depends(intake)]
