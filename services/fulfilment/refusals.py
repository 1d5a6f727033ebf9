"""How the fulfilment service's refusals answer over HTTP, the same from every router that
meets them (fulfilments, the pack station, partners' confirmations)."""

from __future__ import annotations

from services.fulfilment.actions import UnknownTrackingNumber
from services.fulfilment.domain import FulfilmentOnHold, TransitionRefused
from services.fulfilment.store import TrackingNumberInUse
from shared.platform.errors import ApiError


def transition_refused(exc: TransitionRefused, fulfilment_id: str) -> ApiError:
    """409: the fulfilment's status refuses the action."""
    return ApiError(
        409,
        exc.code.value,
        str(exc),
        fulfilment_id=fulfilment_id,
        current_status=exc.status.value,
    )


def on_hold(exc: FulfilmentOnHold) -> ApiError:
    """409 `fulfilment_on_hold`: the order's hold stops the fulfilment."""
    return ApiError(
        409, exc.code, str(exc), fulfilment_id=exc.fulfilment_id, hold_reason=exc.reason
    )


def tracking_refusal(
    status: int, code: str, exc: TrackingNumberInUse | UnknownTrackingNumber
) -> ApiError:
    """A refusal about a carrier's tracking number, naming both."""
    return ApiError(
        status, code, str(exc), carrier=exc.carrier, tracking_number=exc.tracking_number
    )
