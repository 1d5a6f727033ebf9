"""eBay's Sell APIs, the pure part: what the eBay client sends and how it reads eBay's answers
(no I/O here; `clients/ebay.py` does the HTTP).

- Polling: `getOrders` filtered by `lastmodifieddate:[<since>..]`, followed page by page by its
  `next` link; each order becomes a `PolledOrder` whose payload is the order JSON exactly as eBay
  sent it (order-intake's eBay adapter reads it), `updated_at` its `lastModifiedDate`.
- Shipments: the order's lines (`lineItems[]`: `lineItemId`, `sku`, `quantity`) less what its
  shipping fulfillments already cover are the open lines a parcel is assigned to
  (`domain.assign_to_channel_lines`); a fulfillment already carrying the parcel's tracking
  number is the parcel, sent before (its answer lost).
- Stock: `bulkUpdatePriceQuantity` sets `shipToLocationAvailability.quantity` of up to 25 SKUs;
  its answer has one `statusCode` per SKU.
- Cancellations (Post-Order API) and refunds (`issueRefund`): what an order already shows
  (cancelled, a seller's cancel request, a refund of the amount) is the push done before.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

from services.channel_connector.domain import ChannelLine, PolledOrder

ORDERS_PATH = "/sell/fulfillment/v1/order"
PAGE_LIMIT = 200  # getOrders' maximum page size
STOCK_BATCH = 25  # bulkUpdatePriceQuantity takes up to 25 requests
SELLER_CANCEL_REASON = "OUT_OF_STOCK_OR_CANNOT_FULFILL"
CANCELLED = "CANCELED"
# eBay's ShippingCarrierCodeType values for the carrier names the OMS uses.
DEFAULT_CARRIER_CODES = {
    "dhl": "DHL",
    "dhl_express": "DHL",
    "ups": "UPS",
    "usps": "USPS",
    "fedex": "FedEx",
    "dpd": "DPD",
    "gls": "GLS",
    "hermes": "Hermes",
    "evri": "Hermes",
    "royal_mail": "RoyalMail",
    "royalmail": "RoyalMail",
    "parcelforce": "Parcelforce",
    "deutsche_post": "DeutschePost",
    "colissimo": "Colissimo",
    "chronopost": "Chronopost",
    "postnl": "PostNL",
}
# What a fulfillment line without a quantity covers: the whole line.
_WHOLE_LINE = 1 << 30
# Cancel requests that no longer stand.
_DEAD_CANCEL_REQUESTS = frozenset({"REJECTED", "CLOSED"})
# eBay's refund reasons (ReasonForRefundEnum).
REFUND_REASONS = frozenset(
    {
        "BUYER_CANCEL",
        "BUYER_RETURN",
        "ITEM_NOT_RECEIVED",
        "SELLER_WRONG_ITEM",
        "SELLER_CANCEL",
        "FOUND_CHEAPER_PRICE",
        "ITEM_NOT_AS_DESCRIBED",
        "OTHER_ADJUSTMENT",
        "SHIPPING_DISCOUNT",
    }
)


class EbayAnswerError(ValueError):
    """An eBay answer without what the client needs from it; names the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"eBay answer: {field} {message}")
        self.field = field


# --- time ------------------------------------------------------------------------------------


def ebay_time(moment: datetime) -> str:
    """eBay's timestamp format: UTC, milliseconds, Z (2015-08-04T19:09:02.768Z)."""
    utc = moment.astimezone(UTC) if moment.tzinfo else moment.replace(tzinfo=UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def parse_ebay_time(value: Any, field: str) -> datetime:
    if not isinstance(value, str) or not value:
        raise EbayAnswerError(field, "is required")
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise EbayAnswerError(field, f"is not an ISO 8601 time: {value!r}") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


# --- polling ---------------------------------------------------------------------------------


def orders_query(since: datetime, limit: int = PAGE_LIMIT) -> dict[str, str]:
    """The first getOrders page of the orders changed since `since`."""
    return {
        "filter": f"lastmodifieddate:[{ebay_time(since)}..]",
        "limit": str(limit),
        "offset": "0",
    }


@dataclass(frozen=True)
class OrdersPage:
    orders: list[PolledOrder]
    next_path: str | None  # path and query of the next page, on the same host


def read_orders_page(body: Any) -> OrdersPage:
    """One getOrders answer (OrderSearchPagedCollection): its orders, and the next page."""
    if not isinstance(body, Mapping):
        raise EbayAnswerError("(body)", "is not an object")
    raw_orders = body.get("orders") or []
    if not isinstance(raw_orders, list):
        raise EbayAnswerError("orders", "is not a list")
    orders = [polled_order(order, f"orders[{i}]") for i, order in enumerate(raw_orders)]
    return OrdersPage(orders, next_page_path(body.get("next")))


def polled_order(order: Any, where: str = "order") -> PolledOrder:
    """An order as eBay sent it, for order-intake: its id, `lastModifiedDate`, and its JSON."""
    if not isinstance(order, Mapping):
        raise EbayAnswerError(where, "is not an object")
    order_id = order.get("orderId")
    if not isinstance(order_id, str) or not order_id:
        raise EbayAnswerError(f"{where}.orderId", "is required")
    updated = parse_ebay_time(order.get("lastModifiedDate"), f"{where}.lastModifiedDate")
    return PolledOrder(order_id, updated, json.dumps(order, separators=(",", ":")))


def next_page_path(next_link: Any) -> str | None:
    """`next` is a full URL on eBay's host; only its path and query are followed (against the
    account's own API base, never another host)."""
    if not isinstance(next_link, str) or not next_link:
        return None
    parts = urlsplit(next_link)
    if not parts.path:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


# --- shipments -------------------------------------------------------------------------------


def _line_items(order: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    items = order.get("lineItems")
    if not isinstance(items, list) or not items:
        raise EbayAnswerError("lineItems", "is required")
    for i, item in enumerate(items):
        if not isinstance(item, Mapping):
            raise EbayAnswerError(f"lineItems[{i}]", "is not an object")
    return items


def _quantity(value: Any, field: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise EbayAnswerError(field, "is not a whole number")
    try:
        return int(value)
    except ValueError:
        raise EbayAnswerError(field, "is not a whole number") from None


def _fulfillments(body: Any) -> list[Mapping[str, Any]]:
    """getShippingFulfillments' answer (ShippingFulfillmentPagedCollection)."""
    if not isinstance(body, Mapping):
        raise EbayAnswerError("(body)", "is not an object")
    found = body.get("fulfillments") or []
    if not isinstance(found, list):
        raise EbayAnswerError("fulfillments", "is not a list")
    return [f for f in found if isinstance(f, Mapping)]


def fulfillment_with_tracking(fulfillments_body: Any, tracking_number: str) -> str | None:
    """The id of a fulfillment of the order that carries this tracking number (the parcel was
    told before), else None. Tracking numbers compare without spaces, case-insensitively."""
    wanted = _tracking_key(tracking_number)
    for fulfillment in _fulfillments(fulfillments_body):
        number = fulfillment.get("shipmentTrackingNumber")
        if isinstance(number, str) and number and _tracking_key(number) == wanted:
            fulfillment_id = fulfillment.get("fulfillmentId")
            return str(fulfillment_id) if fulfillment_id else number
    return None


def _tracking_key(number: str) -> str:
    return "".join(number.split()).upper()


def open_lines(order: Mapping[str, Any], fulfillments_body: Any) -> list[ChannelLine]:
    """The order's lines with what eBay still expects shipped: the line's quantity less what
    its shipping fulfillments cover (a fulfillment line without a quantity covers the whole
    line, as eBay's older fulfillments did); a line eBay reports FULFILLED has nothing open."""
    covered: dict[str, int] = {}
    for f_index, fulfillment in enumerate(_fulfillments(fulfillments_body)):
        refs = fulfillment.get("lineItems") or []
        if not isinstance(refs, list):
            raise EbayAnswerError(f"fulfillments[{f_index}].lineItems", "is not a list")
        for r_index, ref in enumerate(refs):
            if not isinstance(ref, Mapping) or not ref.get("lineItemId"):
                raise EbayAnswerError(
                    f"fulfillments[{f_index}].lineItems[{r_index}].lineItemId", "is required"
                )
            ref_id = str(ref["lineItemId"])
            ref_quantity = ref.get("quantity")
            covered[ref_id] = covered.get(ref_id, 0) + (
                _quantity(ref_quantity, f"fulfillments[{f_index}].lineItems[{r_index}].quantity")
                if ref_quantity is not None
                else _WHOLE_LINE
            )
    lines = []
    for index, item in enumerate(_line_items(order)):
        line_id = item.get("lineItemId")
        if not isinstance(line_id, str) or not line_id:
            raise EbayAnswerError(f"lineItems[{index}].lineItemId", "is required")
        sku = item.get("sku")
        quantity = _quantity(item.get("quantity"), f"lineItems[{index}].quantity")
        open_quantity = max(0, quantity - covered.get(line_id, 0))
        if item.get("lineItemFulfillmentStatus") == "FULFILLED":
            open_quantity = 0
        lines.append(ChannelLine(line_id, str(sku or ""), open_quantity))
    return lines


def carrier_code(carrier: str, overrides: Mapping[str, str] | None = None) -> str:
    """eBay's code for the OMS's carrier: the account's own mapping, then the known ones, else
    the carrier's name as given."""
    key = carrier.strip().lower().replace("-", "_").replace(" ", "_")
    if overrides and key in overrides:
        return overrides[key]
    return DEFAULT_CARRIER_CODES.get(key, carrier.strip())


def parse_carrier_codes(option: str | None) -> dict[str, str]:
    """The `carrier_codes` option: `dhl=DHL,royal_mail=RoyalMail`."""
    codes: dict[str, str] = {}
    for pair in (option or "").split(","):
        if not pair.strip():
            continue
        name, sep, code = pair.partition("=")
        if not sep or not name.strip() or not code.strip():
            raise ValueError(f"options.carrier_codes: {pair.strip()!r} is not carrier=CODE")
        codes[name.strip().lower().replace("-", "_").replace(" ", "_")] = code.strip()
    return codes


def fulfillment_request(
    assigned: Sequence[tuple[str, int]],
    *,
    shipped_at: datetime,
    carrier: str,
    tracking_number: str,
) -> dict[str, Any]:
    """createShippingFulfillment's body (ShippingFulfillmentDetails)."""
    return {
        "lineItems": [
            {"lineItemId": line_id, "quantity": quantity} for line_id, quantity in assigned
        ],
        "shippedDate": ebay_time(shipped_at),
        "shippingCarrierCode": carrier,
        "trackingNumber": tracking_number,
    }


def fulfillment_id_from_location(location: str | None) -> str | None:
    """createShippingFulfillment answers 201 with `Location: .../shipping_fulfillment/{id}`."""
    if not location:
        return None
    path = urlsplit(location).path.rstrip("/")
    last = path.rsplit("/", 1)[-1]
    return last or None


# --- stock -----------------------------------------------------------------------------------


def stock_request(levels: Iterable[tuple[str, int]]) -> dict[str, Any]:
    """bulkUpdatePriceQuantity's body: each SKU's total ship-to-home quantity."""
    return {
        "requests": [
            {"sku": sku, "shipToLocationAvailability": {"quantity": max(0, quantity)}}
            for sku, quantity in levels
        ]
    }


@dataclass(frozen=True)
class SkuRejected:
    sku: str
    status: int
    message: str

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


def stock_rejections(body: Any, sent: Sequence[str]) -> list[SkuRejected]:
    """The SKUs of a bulkUpdatePriceQuantity answer (200 or 207) that were not updated, each with
    eBay's message; a sent SKU the answer does not mention counts as not updated."""
    if not isinstance(body, Mapping) or not isinstance(body.get("responses"), list):
        raise EbayAnswerError("responses", "is required")
    seen: set[str] = set()
    rejected: list[SkuRejected] = []
    for response in body["responses"]:
        if not isinstance(response, Mapping):
            continue
        sku = str(response.get("sku") or "")
        seen.add(sku)
        status = response.get("statusCode")
        status = status if isinstance(status, int) else 500
        if 200 <= status < 300:
            continue
        rejected.append(SkuRejected(sku, status, error_text(response) or f"status {status}"))
    rejected.extend(
        SkuRejected(sku, 500, "not in eBay's answer") for sku in sent if sku not in seen
    )
    return rejected


# --- errors ----------------------------------------------------------------------------------


def error_list(body: Any) -> list[Mapping[str, Any]]:
    """eBay's errors: `{"errors": [...]}` (REST APIs) or `{"errorMessage": {"error": [...]}}`
    (Post-Order API)."""
    if not isinstance(body, Mapping):
        return []
    errors = body.get("errors")
    if errors is None and isinstance(body.get("errorMessage"), Mapping):
        errors = body["errorMessage"].get("error")
    if not isinstance(errors, list):
        return []
    return [e for e in errors if isinstance(e, Mapping)]


def error_text(body: Any) -> str:
    """`errorId message` of each error, for logs and the push's last error."""
    parts = []
    for error in error_list(body):
        message = error.get("longMessage") or error.get("message") or ""
        parts.append(f"{error.get('errorId', '?')} {message}".strip())
    return "; ".join(parts)


# --- cancellations ---------------------------------------------------------------------------


def existing_cancellation(order: Mapping[str, Any]) -> str | None:
    """What an order shows of a cancellation already made: `cancelled` when eBay cancelled it,
    the id of a seller's cancel request that still stands, else None."""
    status = order.get("cancelStatus")
    if not isinstance(status, Mapping):
        return None
    if status.get("cancelState") == CANCELLED:
        return "cancelled"
    for request in status.get("cancelRequests") or []:
        if not isinstance(request, Mapping):
            continue
        if (
            request.get("cancelInitiator") == "SELLER"
            and request.get("cancelRequestState") not in _DEAD_CANCEL_REQUESTS
        ):
            return str(request.get("cancelRequestId") or "requested")
    return None


def cancellation_request(order: Mapping[str, Any]) -> dict[str, Any]:
    """The Post-Order API's create-cancellation body for a seller who cannot fulfil the order."""
    legacy = order.get("legacyOrderId")
    if not isinstance(legacy, str) or not legacy:
        raise EbayAnswerError("legacyOrderId", "is required to cancel through the Post-Order API")
    body: dict[str, Any] = {"legacyOrderId": legacy, "cancelReason": SELLER_CANCEL_REASON}
    paid = order.get("orderPaymentStatus") in ("PAID", "PARTIALLY_REFUNDED")
    body["buyerPaid"] = paid
    if paid:
        paid_at = _paid_at(order)
        if paid_at:
            body["buyerPaidDate"] = {"value": paid_at}
    return body


def _paid_at(order: Mapping[str, Any]) -> str | None:
    summary = order.get("paymentSummary")
    if isinstance(summary, Mapping):
        for payment in summary.get("payments") or []:
            if isinstance(payment, Mapping) and isinstance(payment.get("paymentDate"), str):
                return str(payment["paymentDate"])
    created = order.get("creationDate")
    return created if isinstance(created, str) else None


def already_cancelled_answer(body: Any) -> bool:
    """A create-cancellation answer saying the order has a cancellation already."""
    result = body.get("orderEligibilityResult") if isinstance(body, Mapping) else None
    reasons = result.get("failureReason") if isinstance(result, Mapping) else None
    if isinstance(reasons, list) and "CANCELLATION_EXIST" in reasons:
        return True
    return any(
        "already" in str(e.get("message", "")).lower() and "cancel" in str(e.get("message", ""))
        for e in error_list(body)
    )


def marketplace_of(order: Mapping[str, Any], default: str) -> str:
    """The order's marketplace (`EBAY_GB`...) for the Post-Order API's X-EBAY-C-MARKETPLACE-ID."""
    items = order.get("lineItems")
    if isinstance(items, list):
        for item in items:
            if isinstance(item, Mapping):
                found = item.get("purchaseMarketplaceId") or item.get("listingMarketplaceId")
                if isinstance(found, str) and found:
                    return found
    return default


# --- refunds ---------------------------------------------------------------------------------


def refund_reason(reason: str, return_id: str) -> str:
    """eBay's ReasonForRefundEnum for the OMS's refund: one of eBay's own values as given, a
    refund of a return as BUYER_RETURN, anything else as OTHER_ADJUSTMENT."""
    upper = reason.strip().upper()
    if upper in REFUND_REASONS:
        return upper
    return "BUYER_RETURN" if return_id else "OTHER_ADJUSTMENT"


def money(amount: Decimal, currency: str) -> dict[str, str]:
    """eBay's Amount: the value as a string with the currency's two decimals."""
    places = 0 if currency.upper() in ("JPY", "HUF", "TWD") else 2
    return {"value": f"{amount.quantize(Decimal(1).scaleb(-places)):f}", "currency": currency}


def refund_request(
    amount: Decimal, currency: str, reason: str, return_id: str, key: str
) -> dict[str, Any]:
    """issueRefund's body for an order-level refund."""
    return {
        "reasonForRefund": refund_reason(reason, return_id),
        "comment": f"OMS refund {key}"[:100],
        "orderLevelRefundAmount": money(amount, currency),
    }


def existing_refund(order: Mapping[str, Any], amount: Decimal, currency: str) -> str | None:
    """An order-level refund of exactly this amount already on the order and not failed (the
    refund was issued before and its answer lost): its id, else None."""
    summary = order.get("paymentSummary")
    refunds = summary.get("refunds") if isinstance(summary, Mapping) else None
    for refund in refunds or []:
        if not isinstance(refund, Mapping) or refund.get("refundStatus") == "FAILED":
            continue
        refund_amount = refund.get("amount")
        if not isinstance(refund_amount, Mapping):
            continue
        try:
            value = Decimal(str(refund_amount.get("value")))
        except ArithmeticError:
            continue
        if value == amount and refund_amount.get("currency") == currency:
            return str(refund.get("refundId") or refund.get("refundReferenceId") or "refunded")
    return None
