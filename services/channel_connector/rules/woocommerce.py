"""The WooCommerce client's decisions, pure (no I/O): which product or variation a SKU is, what a
stock batch sends, what a tracking note says and whether the order already has it, when every
line has shipped, whether a cancellation covers the whole order, which refund a push made."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from services.channel_connector.domain import Quantity

REFUND_KEY_META = "oms_refund_key"
COMPLETABLE = frozenset({"pending", "processing", "on-hold"})
CANCELLED_ALREADY = frozenset({"cancelled", "refunded", "failed", "trash"})


@dataclass(frozen=True)
class ProductRef:
    """A SKU's product in WooCommerce: a product (`parent_id` None) or a variation of
    `parent_id`."""

    product_id: int
    parent_id: int | None


def product_refs(found: Iterable[Mapping[str, Any]], skus: Iterable[str]) -> dict[str, ProductRef]:
    """The products `GET /products?sku=` returned, by the SKUs asked for (exact match; a
    variable product's variations come back as `type: variation` with their `parent_id`)."""
    wanted = set(skus)
    refs: dict[str, ProductRef] = {}
    for product in found:
        sku = product.get("sku")
        if not isinstance(sku, str) or sku not in wanted or sku in refs:
            continue
        parent = int(product.get("parent_id") or 0)
        is_variation = product.get("type") == "variation" and parent > 0
        refs[sku] = ProductRef(int(product["id"]), parent if is_variation else None)
    return refs


@dataclass(frozen=True)
class StockBatches:
    products: list[dict[str, Any]]  # for POST /products/batch
    variations: dict[int, list[dict[str, Any]]]  # parent id -> for its variations/batch


def stock_batches(
    levels: Iterable[tuple[str, int]], refs: Mapping[str, ProductRef]
) -> StockBatches:
    """`update` entries setting each known SKU's stock (`manage_stock` on, so WooCommerce keeps
    the quantity and the stock status follows it); SKUs without a product are left out."""
    products: list[dict[str, Any]] = []
    variations: dict[int, list[dict[str, Any]]] = {}
    for sku, quantity in levels:
        ref = refs.get(sku)
        if ref is None:
            continue
        update = {"id": ref.product_id, "manage_stock": True, "stock_quantity": max(0, quantity)}
        if ref.parent_id is None:
            products.append(update)
        else:
            variations.setdefault(ref.parent_id, []).append(update)
    return StockBatches(products, variations)


def batch_errors(answer: Mapping[str, Any]) -> list[tuple[int, str]]:
    """The entries of a batch answer that failed: (id, "code: message")."""
    failed = []
    for entry in answer.get("update") or []:
        error = entry.get("error") if isinstance(entry, Mapping) else None
        if isinstance(error, Mapping):
            failed.append(
                (int(entry.get("id") or 0), f"{error.get('code')}: {error.get('message')}")
            )
    return failed


# --- shipments -------------------------------------------------------------------------------


def tracking_note(carrier: str, tracking_number: str, tracking_url: str | None) -> str:
    note = f"Your order has shipped with {carrier}. Tracking number: {tracking_number}"
    return f"{note} ({tracking_url})" if tracking_url else note


def has_tracking_note(notes: Iterable[Mapping[str, Any]], tracking_number: str) -> int | None:
    """The id of a note already telling this tracking number, if the order has one."""
    needle = f"Tracking number: {tracking_number}"
    for note in notes:
        text = str(note.get("note") or "")
        at = text.find(needle)
        if at < 0:
            continue
        end = at + len(needle)
        if end == len(text) or not text[end].isalnum():
            return int(note.get("id") or 0)
    return None


def ordered_by_sku(line_items: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    ordered: dict[str, int] = {}
    for item in line_items:
        sku = item.get("sku")
        quantity = int(item.get("quantity") or 0)
        if sku and quantity > 0:
            ordered[str(sku)] = ordered.get(str(sku), 0) + quantity
    return ordered


def fully_shipped(line_items: Iterable[Mapping[str, Any]], shipped: Iterable[Quantity]) -> bool:
    """Every unit of every line with a SKU has shipped (this parcel and the earlier ones)."""
    ordered = ordered_by_sku(line_items)
    sent: dict[str, int] = {}
    for item in shipped:
        sent[item.sku] = sent.get(item.sku, 0) + item.quantity
    return bool(ordered) and all(sent.get(sku, 0) >= qty for sku, qty in ordered.items())


def should_complete(
    status: str, line_items: Sequence[Mapping[str, Any]], shipped: Iterable[Quantity]
) -> bool:
    """Set the order `completed`: everything shipped and the order is still open (an order
    already completed, or cancelled or refunded on the channel, is left as it is)."""
    return status in COMPLETABLE and fully_shipped(line_items, shipped)


def covers_order(line_items: Iterable[Mapping[str, Any]], cancelled: Iterable[Quantity]) -> bool:
    """The cancellation is of every unit the order has (nothing of it shipped)."""
    ordered = ordered_by_sku(line_items)
    left: dict[str, int] = {}
    for item in cancelled:
        left[item.sku] = left.get(item.sku, 0) + item.quantity
    return all(left.get(sku, 0) >= qty for sku, qty in ordered.items())


def cancellation_note(reason: str, lines: Iterable[Quantity]) -> str:
    what = ", ".join(f"{item.quantity} x {item.sku}" for item in lines)
    return f"Cancelled by the order management system ({reason}): {what}"


# --- refunds ---------------------------------------------------------------------------------


def refund_made(refunds: Iterable[Mapping[str, Any]], key: str) -> int | None:
    """The id of the refund this push already made (its key is in the refund's meta data)."""
    for refund in refunds:
        for meta in refund.get("meta_data") or []:
            if meta.get("key") == REFUND_KEY_META and str(meta.get("value")) == key:
                return int(refund.get("id") or 0)
    return None
