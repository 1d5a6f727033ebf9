"""Orders and their saga: the native order API (`routes`, with `schemas` for its bodies and
`views` for its answers), the operations routes and consumers call (`service`: place, cancel,
retry, compensate, start a new order's saga, the saga's deadline passes and scheduler on the
platform's saga kit), running the saga on consumer batches (`saga_runner`), the orders-by-state
gauges (`background`), and the orders' SQL (`store`, with the saga kit's `SAGAS` tables)."""
