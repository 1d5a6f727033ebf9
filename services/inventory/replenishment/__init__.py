"""Replenishment: safety stock per SKU and channel (overriding the channel's default), reorder
points per SKU and location (explicit, or from the sales velocity of the last 7 / 30 days), the
low-stock watcher that emits `LowStock` once per crossing, and the suggestions of what to order.
`domain` decides, `store` holds the SQL, `watcher` runs on every stock change, `routes` is the
HTTP API."""
