"""A parcel's life at the pack station and after (pure).

open     --close-->    packed | held     (held: the measured weight is off)
held     --release-->  packed            (re-weighed, or a supervisor accepts it)
packed   --label-->    labelled
labelled --void-->     packed            (the label is voided; a new one may be bought)
labelled --ship-->     shipped
shipped  --deliver-->  delivered
"""

from __future__ import annotations

from enum import StrEnum


class ParcelStatus(StrEnum):
    OPEN = "open"
    PACKED = "packed"
    HELD = "held"
    LABELLED = "labelled"
    SHIPPED = "shipped"
    DELIVERED = "delivered"


class ParcelAction(StrEnum):
    CLOSE = "close"
    RELEASE = "release"
    LABEL = "label"
    VOID = "void"
    SHIP = "ship"
    DELIVER = "deliver"


_ALLOWED: dict[tuple[ParcelStatus, ParcelAction], frozenset[ParcelStatus]] = {
    (ParcelStatus.OPEN, ParcelAction.CLOSE): frozenset({ParcelStatus.PACKED, ParcelStatus.HELD}),
    (ParcelStatus.HELD, ParcelAction.CLOSE): frozenset({ParcelStatus.PACKED, ParcelStatus.HELD}),
    (ParcelStatus.HELD, ParcelAction.RELEASE): frozenset({ParcelStatus.PACKED}),
    (ParcelStatus.PACKED, ParcelAction.LABEL): frozenset({ParcelStatus.LABELLED}),
    (ParcelStatus.LABELLED, ParcelAction.VOID): frozenset({ParcelStatus.PACKED}),
    (ParcelStatus.LABELLED, ParcelAction.SHIP): frozenset({ParcelStatus.SHIPPED}),
    (ParcelStatus.SHIPPED, ParcelAction.DELIVER): frozenset({ParcelStatus.DELIVERED}),
}


class ParcelRefused(Exception):
    """The action is not allowed in the parcel's status; `code` is stable (the HTTP code)."""

    def __init__(self, status: ParcelStatus, action: ParcelAction) -> None:
        super().__init__(f"cannot {action.value} a parcel that is {status.value}")
        self.code = f"parcel_{status.value}"
        self.status = status
        self.action = action


def check(status: ParcelStatus, action: ParcelAction, to: ParcelStatus) -> None:
    """Raises ParcelRefused unless `action` may take a parcel from `status` to `to`."""
    if to not in _ALLOWED.get((status, action), frozenset()):
        raise ParcelRefused(status, action)
