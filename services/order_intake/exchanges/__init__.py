"""Exchanges and returns as order-intake sees them: replacement orders created on returns'
`CreateReplacementOrder` (`service`), the returns of an order kept from `ReturnStatusChanged`
and summarised in the order view (`returns_view`), the consumers' handlers (`consumers`) and
the SQL (`store`)."""
