"""Recording an order's fraud signals when it is stored (in the caller's transaction)."""

from __future__ import annotations

from services.order_intake.domain.order import CanonicalOrder
from services.order_intake.risk import store
from services.order_intake.risk.domain import RiskSignals, RuleSet, signal_keys
from shared.platform.db import DbConnection


async def record_signals(
    conn: DbConnection,
    order_id: str,
    order: CanonicalOrder,
    client_ip: str | None,
    rules: RuleSet,
) -> RiskSignals:
    """Record the order's keys for the velocity rules and return what the rules will look at:
    the counts within each window (this order included), the client address and the billing
    country."""
    address = order.shipping_address
    keys = signal_keys(
        email=order.customer.email,
        card_token=order.payment_token,
        client_ip=client_ip,
        line1=address.line1,
        postal_code=address.postal_code,
        country=address.country,
    )
    counted = await store.record_and_count(conn, order_id, keys, rules)
    billing = order.billing_address.country if order.billing_address else None
    return counted.model_copy(update={"client_ip": client_ip, "billing_country": billing})
