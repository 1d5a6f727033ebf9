"""What order-intake's routes are given (FastAPI `Depends`) besides the platform's `RuntimeDep`:
the service's typed settings, the saga policy, admission control and the request's refusals."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.order_intake.domain.saga import SagaPolicy
from services.order_intake.operators.admission import ADMISSION_STATE_KEY, Admission
from services.order_intake.orders.service import policy_from
from services.order_intake.rejected_requests.refusal import Refusals
from services.order_intake.settings import OrderIntakeSettings
from shared.platform.service import RuntimeDep, service_settings

SettingsDep = Annotated[OrderIntakeSettings, Depends(service_settings(OrderIntakeSettings))]


def saga_policy(settings: SettingsDep) -> SagaPolicy:
    return policy_from(settings)


PolicyDep = Annotated[SagaPolicy, Depends(saga_policy)]


def admission(runtime: RuntimeDep) -> Admission | None:
    """Admission control, once its background task installed it (None: no limit)."""
    found = runtime.state.get(ADMISSION_STATE_KEY)
    return found if isinstance(found, Admission) else None


AdmissionDep = Annotated[Admission | None, Depends(admission)]


def refusals(request: Request, runtime: RuntimeDep, settings: SettingsDep) -> Refusals:
    return Refusals(runtime.pool, request, settings.rejected_request_body_max_bytes)


RefusalsDep = Annotated[Refusals, Depends(refusals)]
