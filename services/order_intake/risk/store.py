"""SQL of the fraud rules' velocity signals (`order_risk_signals`, migration 0005)."""

from __future__ import annotations

from datetime import datetime

from services.order_intake.risk.domain import RiskSignals, RuleSet, SignalKeys, VelocityKey
from shared.platform.db import DbConnection
from shared.platform.housekeeping import deleted

# Each key's column, and the statement's parameter holding the order's value of it.
_COLUMN = {
    VelocityKey.EMAIL: ("email_key", "$2"),
    VelocityKey.CARD: ("card_key", "$3"),
    VelocityKey.IP: ("ip_key", "$4"),
    VelocityKey.SHIPPING_ADDRESS: ("address_key", "$5"),
}


async def record_and_count(
    conn: DbConnection, order_id: str, keys: SignalKeys, rules: RuleSet
) -> RiskSignals:
    """Record the order's keys and count, in one statement, the earlier orders with the same
    key within each velocity rule's window, the different cards on its e-mail within each
    cards rule's window, and whether the e-mail ordered before (each count uses its key's
    index). The counts returned include this order. The row is written in the caller's
    transaction: orders stored concurrently do not see each other's until it commits."""
    args: list[object] = [order_id, keys.email, keys.card, keys.ip, keys.shipping_address]

    def param(value: object) -> str:
        args.append(value)
        return f"${len(args)}"

    columns = ["EXISTS (SELECT 1 FROM order_risk_signals WHERE email_key = $2) AS seen_email"]
    velocity = [r for r in rules.velocity_rules() if keys.of(r.key) is not None]
    for index, rule in enumerate(velocity):
        column, value = _COLUMN[rule.key]
        columns.append(
            f"(SELECT count(*) FROM order_risk_signals WHERE {column} = {value}"
            f" AND placed_at > now() - make_interval(secs => {param(rule.window_s)}))"
            f" AS velocity_{index}"
        )
    cards = rules.cards_rules() if keys.email is not None else ()
    for index, cards_rule in enumerate(cards):
        columns.append(
            "(SELECT count(DISTINCT card_key) FROM order_risk_signals WHERE email_key = $2"
            " AND card_key IS NOT NULL AND card_key IS DISTINCT FROM $3"
            f" AND placed_at > now() - make_interval(secs => {param(cards_rule.window_s)}))"
            f" AS cards_{index}"
        )
    row = await conn.fetchrow(
        "WITH recorded AS ("
        "  INSERT INTO order_risk_signals (order_id, email_key, card_key, ip_key, address_key)"
        "  VALUES ($1, $2, $3, $4, $5) ON CONFLICT (order_id) DO NOTHING"
        ")"
        f" SELECT {', '.join(columns)}",
        *args,
    )
    assert row is not None
    this_card = 1 if keys.card is not None else 0
    return RiskSignals(
        velocity={rule.name: row[f"velocity_{i}"] + 1 for i, rule in enumerate(velocity)},
        cards={rule.name: row[f"cards_{i}"] + this_card for i, rule in enumerate(cards)},
        earlier_orders_by_email=None if keys.email is None else int(row["seen_email"]),
    )


async def forget(conn: DbConnection, order_id: str) -> None:
    """The order was not stored after all (its channel had sent it before)."""
    await conn.execute("DELETE FROM order_risk_signals WHERE order_id = $1", order_id)


async def prune_risk_signals(conn: DbConnection, older_than: datetime, *, batch: int) -> int:
    """Delete up to `batch` signal rows older than `older_than` (beyond every rule's window)."""
    status = await conn.execute(
        "DELETE FROM order_risk_signals WHERE order_id = ANY(ARRAY("
        " SELECT order_id FROM order_risk_signals WHERE placed_at < $1"
        " ORDER BY placed_at LIMIT $2))",
        older_than,
        batch,
    )
    return deleted(status)
