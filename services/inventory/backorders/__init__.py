"""Backorders and pre-orders: an order short of a SKU the seller lets customers backorder (or
pre-order) is accepted; what is there is reserved, the rest waits in the SKU's queue, oldest
order first, and is reserved as stock arrives (receipts, transfers, released or returned
stock). `domain` decides (the reservation with a queue, the fill, expected dates), `store` holds
the SQL, `service` is what the stock commands and every stock change call."""
