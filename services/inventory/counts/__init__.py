"""Cycle counts: what an operator counted at a location becomes `count` adjustments in the
stock ledger (counted - on hand per SKU), all or nothing. `domain` decides, `routes` is the
HTTP API, `store` keeps each count's answer (a repeat with its Idempotency-Key gets it again)."""
