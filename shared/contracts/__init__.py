"""Message contracts, grouped by the service that produces them (DESIGN.md §3).

Importing this package registers every message type with `shared.envelope`.
"""

from shared.contracts import channels, fulfilment, inventory, order_intake, payment, returns

__all__ = ["channels", "fulfilment", "inventory", "order_intake", "payment", "returns"]
