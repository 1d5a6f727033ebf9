"""What order-intake's routes are given (FastAPI `Depends`) besides the platform's `RuntimeDep`:
the service's typed settings, the saga policy, and what a route that takes orders in needs
(`Intake`: admission control, the request's refusals)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request

from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.operators.admission import ADMISSION_STATE_KEY, Admission
from services.order_intake.orders.service import policy_from
from services.order_intake.rejected_requests.refusal import Refusals
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.service import Runtime, RuntimeDep, service_settings

SettingsDep = Annotated[OrderIntakeSettings, Depends(service_settings(OrderIntakeSettings))]


def saga_policy(settings: SettingsDep) -> SagaPolicy:
    return policy_from(settings)


PolicyDep = Annotated[SagaPolicy, Depends(saga_policy)]


@dataclass(frozen=True)
class Intake:
    """What a route that takes orders in (the native API, the channels' webhooks) is given."""

    runtime: Runtime
    settings: OrderIntakeSettings
    policy: SagaPolicy
    # Admission control, once its background task installed it (None: no limit).
    admission: Admission | None
    refusals: Refusals

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


def intake(
    request: Request, runtime: RuntimeDep, settings: SettingsDep, policy: PolicyDep
) -> Intake:
    found = runtime.state.get(ADMISSION_STATE_KEY)
    return Intake(
        runtime,
        settings,
        policy,
        admission=found if isinstance(found, Admission) else None,
        refusals=Refusals(runtime.pool, request, settings.rejected_request_body_max_bytes),
    )


IntakeDep = Annotated[Intake, Depends(intake)]
