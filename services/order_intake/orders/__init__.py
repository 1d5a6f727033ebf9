"""Orders and their saga: the native order API (`routes`, with `schemas` for its bodies and
`views` for its answers), the operations routes and consumers call (`service`: place, cancel,
retry, compensate, start a new order's saga, fire due deadlines), running the saga on consumer
batches (`saga_runner`), the deadline scheduler and gauges (`background`), and the orders' SQL
(`store`)."""
