"""A pick list on the floor, as a pure state machine.

    released --claim-->          claimed
    claimed  --confirm_pick-->   picking     (also --report_empty_bin-->)
    picking  --the last stop-->  picked      every unit found
                                 short       some bin lacked units (the shortages say which)

Every input goes through one function that returns a `PickDecision`: the list's new state, what
happened and the shortages it recorded. A refused input raises `PickRefused` with a stable code,
and nothing is recorded. The same picker claiming again is an unchanged repeat, not a refusal.

Confirming a pick needs the scan of the SKU's barcode and at most the units the stop still
waits for. Stops may be confirmed in any order, a stop in several scans. A stop's units go to
its puts in order (the first tote first), so when a bin is short the last puts lack the units.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from enum import StrEnum

from services.fulfilment.picking.strategies import PickList, PickStop, Put


class Status(StrEnum):
    RELEASED = "released"
    CLAIMED = "claimed"
    PICKING = "picking"
    PICKED = "picked"
    SHORT = "short"


FINISHED = frozenset({Status.PICKED, Status.SHORT})


class Refusal(StrEnum):
    """Stable codes for refused inputs (also the HTTP error codes)."""

    NOT_CLAIMED = "not_claimed"
    ALREADY_CLAIMED = "already_claimed"
    CLAIMED_BY_ANOTHER_PICKER = "claimed_by_another_picker"
    LIST_FINISHED = "list_finished"
    UNKNOWN_STOP = "unknown_stop"
    STOP_FINISHED = "stop_finished"
    INVALID_QUANTITY = "invalid_quantity"
    WRONG_BARCODE = "wrong_barcode"
    OVER_PICK = "over_pick"


class PickRefused(Exception):
    def __init__(self, code: Refusal, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Outcome(StrEnum):
    CLAIMED = "claimed"
    UNCHANGED = "unchanged"  # a repeat that already holds: the same picker claiming again
    PICKED = "picked"  # units confirmed at a stop
    SHORT_PICK = "short_pick"  # the bin was empty: the units still wanted there are missing


@dataclass(frozen=True)
class PutOutcome:
    put: Put
    picked: int
    missing: int


@dataclass(frozen=True)
class StopProgress:
    stop: PickStop
    barcode: str  # what a scan at this stop must read
    picked: int = 0
    missing: int = 0  # recorded when the bin was found empty

    @property
    def remaining(self) -> int:
        return self.stop.quantity - self.picked - self.missing

    @property
    def finished(self) -> bool:
        return self.remaining == 0

    def put_outcomes(self) -> tuple[PutOutcome, ...]:
        """Picked units shared out to the puts in order; missing units fall to the last puts.
        Units neither picked nor missing yet count as neither."""
        outcomes: list[PutOutcome] = []
        picked_left = self.picked
        missing_left = self.missing
        for put in self.stop.puts:
            picked = min(put.quantity, picked_left)
            missing = min(put.quantity - picked, missing_left)
            picked_left -= picked
            missing_left -= missing
            outcomes.append(PutOutcome(put, picked, missing))
        return tuple(outcomes)


@dataclass(frozen=True)
class Shortage:
    """Units a fulfilment did not get: its bin was empty."""

    stop_index: int
    bin_code: str
    sku: str
    fulfilment_id: str
    order_id: str
    tote: int | None
    missing: int


@dataclass(frozen=True)
class PickListState:
    list_id: str
    stops: tuple[StopProgress, ...]
    status: Status = Status.RELEASED
    picker_id: str | None = None

    @property
    def shortages(self) -> tuple[Shortage, ...]:
        return tuple(s for index in range(len(self.stops)) for s in _shortages(self, index))


@dataclass(frozen=True)
class PickDecision:
    state: PickListState
    outcome: Outcome
    previous: Status
    shortages: tuple[Shortage, ...] = ()  # recorded by this decision

    @property
    def status_changed(self) -> bool:
        return self.state.status != self.previous

    @property
    def finished(self) -> bool:
        """This decision finished the list (picked or short)."""
        return self.status_changed and self.state.status in FINISHED


def release(pick_list: PickList, barcodes: Mapping[str, str]) -> PickListState:
    """A planned list, ready to be claimed. `barcodes`: SKU -> barcode, for every SKU on it."""
    if not pick_list.stops:
        raise ValueError(f"pick list {pick_list.list_id} has no stops")
    missing = sorted({stop.sku for stop in pick_list.stops if stop.sku not in barcodes})
    if missing:
        raise ValueError(f"no barcode for {', '.join(missing)}")
    return PickListState(
        list_id=pick_list.list_id,
        stops=tuple(StopProgress(stop, barcodes[stop.sku]) for stop in pick_list.stops),
    )


def claim(state: PickListState, picker_id: str) -> PickDecision:
    """A picker takes a released list; the same picker again is an unchanged repeat."""
    _check_picker_id(picker_id)
    if state.status in FINISHED:
        raise _finished(state)
    if state.status is Status.RELEASED:
        claimed = replace(state, status=Status.CLAIMED, picker_id=picker_id)
        return PickDecision(claimed, Outcome.CLAIMED, state.status)
    if state.picker_id == picker_id:
        return PickDecision(state, Outcome.UNCHANGED, state.status)
    raise PickRefused(
        Refusal.ALREADY_CLAIMED,
        f"pick list {state.list_id} is already claimed by picker {state.picker_id}",
    )


def confirm_pick(
    state: PickListState, picker_id: str, stop_index: int, scanned_barcode: str, quantity: int
) -> PickDecision:
    """`quantity` units taken at stop `stop_index`, the SKU's barcode scanned."""
    progress = _stop_for(state, picker_id, stop_index)
    if quantity <= 0:
        raise PickRefused(Refusal.INVALID_QUANTITY, f"cannot pick {quantity} units")
    if scanned_barcode.strip() != progress.barcode:
        raise PickRefused(
            Refusal.WRONG_BARCODE,
            f"scanned {scanned_barcode!r}, stop {stop_index} is {progress.stop.sku} "
            f"({progress.barcode})",
        )
    if quantity > progress.remaining:
        raise PickRefused(
            Refusal.OVER_PICK,
            f"stop {stop_index} waits for {progress.remaining} units of {progress.stop.sku}, "
            f"not {quantity}",
        )
    updated = replace(progress, picked=progress.picked + quantity)
    return _recorded(state, stop_index, updated, Outcome.PICKED)


def report_empty_bin(state: PickListState, picker_id: str, stop_index: int) -> PickDecision:
    """The stop's bin holds no more units: whatever the stop still waits for is missing."""
    progress = _stop_for(state, picker_id, stop_index)
    if progress.finished:
        raise PickRefused(
            Refusal.STOP_FINISHED, f"stop {stop_index} of pick list {state.list_id} is done"
        )
    updated = replace(progress, missing=progress.missing + progress.remaining)
    return _recorded(state, stop_index, updated, Outcome.SHORT_PICK)


# --- helpers -------------------------------------------------------------------------------


def _check_picker_id(picker_id: str) -> None:
    if not picker_id.strip():
        raise ValueError("a picker id is needed")


def _finished(state: PickListState) -> PickRefused:
    return PickRefused(
        Refusal.LIST_FINISHED, f"pick list {state.list_id} is already {state.status.value}"
    )


def _stop_for(state: PickListState, picker_id: str, stop_index: int) -> StopProgress:
    """The stop a picker works at, once the list and the picker may work on it."""
    _check_picker_id(picker_id)
    if state.status in FINISHED:
        raise _finished(state)
    if state.status is Status.RELEASED:
        raise PickRefused(Refusal.NOT_CLAIMED, f"pick list {state.list_id} is not claimed")
    if state.picker_id != picker_id:
        raise PickRefused(
            Refusal.CLAIMED_BY_ANOTHER_PICKER,
            f"pick list {state.list_id} is claimed by picker {state.picker_id}",
        )
    if not 0 <= stop_index < len(state.stops):
        raise PickRefused(
            Refusal.UNKNOWN_STOP, f"pick list {state.list_id} has no stop {stop_index}"
        )
    return state.stops[stop_index]


def _recorded(
    state: PickListState, stop_index: int, progress: StopProgress, outcome: Outcome
) -> PickDecision:
    stops = (*state.stops[:stop_index], progress, *state.stops[stop_index + 1 :])
    status = Status.PICKING
    if all(stop.finished for stop in stops):
        status = Status.SHORT if any(stop.missing for stop in stops) else Status.PICKED
    after = replace(state, stops=stops, status=status)
    new_shortages = (
        _shortages(after, stop_index) if progress.missing != state.stops[stop_index].missing else ()
    )
    return PickDecision(after, outcome, state.status, new_shortages)


def _shortages(state: PickListState, stop_index: int) -> tuple[Shortage, ...]:
    progress = state.stops[stop_index]
    return tuple(
        Shortage(
            stop_index=stop_index,
            bin_code=progress.stop.bin.code,
            sku=progress.stop.sku,
            fulfilment_id=outcome.put.fulfilment_id,
            order_id=outcome.put.order_id,
            tote=outcome.put.tote,
            missing=outcome.missing,
        )
        for outcome in progress.put_outcomes()
        if outcome.missing
    )
