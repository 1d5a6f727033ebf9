"""Partner value types and rules, free of I/O: connectors, the request kinds, dispatch
statuses and their retry schedule, deterministic ids, and what a shipment confirmation may
ship."""

from __future__ import annotations

import ipaddress
import uuid
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from urllib.parse import urlsplit

from tenacity import AsyncRetrying, RetryCallState, wait_exponential

from services.fulfilment.warehouse.model import LocationKind


class ConnectorKind(StrEnum):
    WEBHOOK = "webhook"  # an HTTPS URL; the body signed with the location's secret
    KAFKA = "kafka"  # an event on oms.fulfilment.partners.v1, keyed by the location


class RequestKind(StrEnum):
    FULFILMENT_REQUEST = "fulfilment_request"  # to a 3PL
    PURCHASE_ORDER = "purchase_order"  # to a dropship supplier, with the PO's PDF
    CANCELLATION = "cancellation"  # either request withdrawn after it went out


class DispatchStatus(StrEnum):
    PENDING = "pending"  # a webhook to send
    SENT = "sent"  # the partner's webhook answered 2xx
    PUBLISHED = "published"  # handed to the outbox (kafka connector)
    DEAD = "dead"  # given up: shown to operators, who may retry it
    WITHDRAWN = "withdrawn"  # the fulfilment was cancelled before the request went out


@dataclass(frozen=True)
class Connector:
    location: str
    kind: ConnectorKind
    url: str | None
    deadline_hours: int


def request_kind_for(kind: LocationKind) -> RequestKind | None:
    """What a fulfilment at a location of this kind asks of the partner (None: our own floor)."""
    if kind is LocationKind.THIRD_PARTY_LOGISTICS:
        return RequestKind.FULFILMENT_REQUEST
    if kind is LocationKind.DROPSHIP_SUPPLIER:
        return RequestKind.PURCHASE_ORDER
    return None


PARTNER_KINDS = frozenset({LocationKind.THIRD_PARTY_LOGISTICS, LocationKind.DROPSHIP_SUPPLIER})

_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "urn:oms:fulfilment:partners")


def dispatch_id_for(fulfilment_id: str) -> str:
    """One request per fulfilment; the partner dedupes repeated deliveries on this id."""
    return str(uuid.uuid5(_NAMESPACE, f"dispatch\x1f{fulfilment_id}"))


def cancellation_id_for(fulfilment_id: str) -> str:
    """One cancellation per fulfilment, however often it is cancelled."""
    return str(uuid.uuid5(_NAMESPACE, f"cancellation\x1f{fulfilment_id}"))


def parcel_id_for(fulfilment_id: str, tracking_number: str) -> str:
    """A partner's parcel: the same confirmation again maps to the same parcels."""
    return str(uuid.uuid5(_NAMESPACE, f"parcel\x1f{fulfilment_id}\x1f{tracking_number}"))


def retry_delay_s(attempts: int, initial_s: float, max_s: float) -> float:
    """Exponential backoff after the `attempts`-th failed attempt: initial, 2x, 4x ... max."""
    state = RetryCallState(AsyncRetrying(), None, (), {})
    state.attempt_number = max(1, attempts)
    return float(wait_exponential(multiplier=initial_s, max=max_s)(state))


def webhook_url_problem(url: str, *, allow_loopback_http: bool) -> str | None:
    """Why `url` cannot be a partner's webhook (None: it can). HTTPS only; plain HTTP to a
    loopback address only where allowed (development and tests: a local receiver)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "not a URL"
    if not parts.hostname:
        return "the URL names no host"
    if parts.username or parts.password:
        return "the URL must not carry credentials"
    if parts.scheme == "https":
        return None
    if parts.scheme == "http" and allow_loopback_http and _is_loopback(parts.hostname):
        return None
    return "the URL must be https"


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# --- confirmations --------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfirmedParcel:
    parcel_id: str
    carrier: str
    tracking_number: str
    tracking_url: str | None
    lines: tuple[tuple[str, int], ...]  # (sku, quantity), by SKU


class LinesExceedFulfilment(Exception):
    def __init__(self, sku: str, confirmed: int, unshipped: int) -> None:
        super().__init__(
            f"{sku}: {confirmed} confirmed, but only {unshipped} of the fulfilment"
            " are not shipped yet"
        )
        self.sku = sku
        self.confirmed = confirmed
        self.unshipped = unshipped


class ConfirmationConflict(Exception):
    """A parcel confirmed before is confirmed again with other contents or carrier."""

    def __init__(self, tracking_number: str) -> None:
        super().__init__(
            f"tracking number {tracking_number!r} was confirmed before with other contents"
        )
        self.tracking_number = tracking_number


def units(lines: Iterable[tuple[str, int]]) -> Counter[str]:
    counted: Counter[str] = Counter()
    for sku, quantity in lines:
        counted[sku] += quantity
    return counted


def new_parcels(
    ordered: Iterable[tuple[str, int]],
    existing: Mapping[str, ConfirmedParcel],
    confirmed: Iterable[ConfirmedParcel],
) -> list[ConfirmedParcel]:
    """The confirmed parcels not recorded yet, in the order given. `ordered`: the
    fulfilment's lines; `existing`: its parcels so far by id. A parcel recorded before must be
    the same parcel (ConfirmationConflict otherwise); the new ones together may ship at most
    what no parcel holds yet (LinesExceedFulfilment, naming the first SKU by name)."""
    fresh: list[ConfirmedParcel] = []
    for parcel in confirmed:
        before = existing.get(parcel.parcel_id)
        if before is None:
            fresh.append(parcel)
        elif (before.carrier, before.lines) != (parcel.carrier, parcel.lines):
            raise ConfirmationConflict(parcel.tracking_number)
    held: Counter[str] = Counter()
    for parcel in existing.values():
        held += units(parcel.lines)
    wanted: Counter[str] = Counter()
    for parcel in fresh:
        wanted += units(parcel.lines)
    open_units = units(ordered)
    open_units.subtract(held)
    for sku in sorted(wanted):
        if wanted[sku] > max(0, open_units[sku]):
            raise LinesExceedFulfilment(sku, wanted[sku], max(0, open_units[sku]))
    return fresh
