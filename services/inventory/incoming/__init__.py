"""Incoming stock: purchase orders (or advance shipping notices) from suppliers, expected at a
location on a date and received there in full or in part. What is still to come gives
backorders their expected dates and, for SKUs that may be backordered, is available to promise;
a receipt is a stock adjustment (ledger reason `receipt`) that fills the backorder queues."""
