"""Channel intake: orders from sales channels (Shopify, WooCommerce, Amazon, eBay) in their own
payloads, mapped by the channel's adapter (`adapters/`) and taken in by `service` the same way
from both ingress paths: the HTTP webhook endpoint (`webhook_routes`) and the Kafka topic
`oms.channel.orders.v1` (`kafka_ingress`). `store` has the SQL of deliveries and early
cancellations."""
