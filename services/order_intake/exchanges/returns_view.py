"""The order view's returns: what returns' events say about an order's returns.

Order-intake keeps the latest revision of each return of the order (`ReturnStatusChanged` on
`oms.returns.events.v1`, `service.record_return_status`) and summarises it for `GET /v1/orders/{id}`:

- `state`: `returned` when every unit of the order came back, `partially_returned` when some
  did, `return_requested` while a return waits for its goods, else `none`;
- `refunded_amount`: refunded through payment; `to_be_executed_by_channel`: refunds recorded for
  a marketplace to execute; `amount_due`: what exchanges left for the customer to pay.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from services.order_intake.exchanges import store
from shared.money import round_money
from shared.platform.db import DbConnection

OPEN = frozenset({"REQUESTED", "APPROVED"})
NOT_RETURNED = frozenset({"REQUESTED", "APPROVED", "REFUSED"})


def summarise(
    returns: Sequence[dict[str, Any]], lines: Sequence[dict[str, Any]], currency: str
) -> dict[str, Any]:
    ordered: dict[str, int] = {}
    for line in lines:
        ordered[line["sku"]] = ordered.get(line["sku"], 0) + int(line["quantity"])
    returned: dict[str, int] = {}
    for ret in returns:
        if ret["status"] in NOT_RETURNED:
            continue
        for item in ret["received"]:
            returned[item["sku"]] = returned.get(item["sku"], 0) + int(item["quantity"])
    if ordered and all(returned.get(sku, 0) >= qty for sku, qty in ordered.items()):
        state = "returned"
    elif any(returned.values()):
        state = "partially_returned"
    elif any(ret["status"] in OPEN for ret in returns):
        state = "return_requested"
    else:
        state = "none"

    def total(field: str, refund_status: str | None = None) -> str:
        amount = sum(
            (
                Decimal(ret[field] or 0)
                for ret in returns
                if refund_status is None or ret["refund_status"] == refund_status
            ),
            Decimal(0),
        )
        return str(round_money(amount, currency))

    return {
        "state": state,
        "returned_quantities": returned,
        "refunded_amount": total("refunded_amount"),
        "to_be_executed_by_channel": total("refund_amount", "to_be_executed_by_channel"),
        "amount_due": total("amount_due"),
        "returns": [
            {
                "return_id": ret["return_id"],
                "status": ret["status"],
                "refund_status": ret["refund_status"],
                "refund_amount": None
                if ret["refund_amount"] is None
                else str(round_money(Decimal(ret["refund_amount"]), currency)),
                "refunded_amount": str(round_money(Decimal(ret["refunded_amount"]), currency)),
                "replacement_order_id": ret["replacement_order_id"],
            }
            for ret in returns
        ],
    }


async def view_fields(conn: DbConnection, order: dict[str, Any]) -> dict[str, Any]:
    """The order view's fields about returns and exchanges."""
    returns = await store.order_returns(conn, order["order_id"])
    links = await store.replacement_links(conn, order["order_id"])
    return {
        "returns": summarise(returns, order["lines"], order["currency"]),
        **links,
    }
