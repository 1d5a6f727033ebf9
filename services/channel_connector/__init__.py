"""The channel connector: the OMS's side of the conversation with each sales channel's API.

One process per deployment serves the channel accounts it is configured with
(`OMS_CONNECTOR_ACCOUNTS`; in Kubernetes one deployment per account). It

- keeps a projection of the channel orders it serves (order id → channel, external id) from
  `OrderStatusChanged`;
- turns events into work, in the consumer's transaction: `ChannelAvailabilityChanged` into the
  stock level to push (coalesced: the last value wins, at most one push per SKU and account per
  `stock_push_interval_s`), `FulfilmentShipped` into one shipment push per parcel,
  `ChannelRefundRequested` and cancelled marketplace orders into refund / cancellation pushes;
- sends that work from background jobs through each channel's client (`clients/`), with the
  API's rate limit, OAuth token refresh, 429 Retry-After, bounded retries, then `dead` with an
  operator alert;
- polls the channels that do not push orders (Amazon, eBay, OTTO, Magento) by a last-updated
  cursor kept in Postgres, and fetches the orders of id-only webhooks (BigCommerce), handing
  each order to order-intake as a `ChannelOrderReceived` on `oms.channel.orders.v1` — the same
  adapters, validation and dedupe as a webhook.

`domain.py` holds the pure decisions, `store.py` all SQL, `handlers.py` the event handlers,
`workers.py` the background jobs, `http.py` what every client shares (rate limit, tokens,
errors), `clients/` one module per channel.
"""
