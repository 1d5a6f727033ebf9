"""Refused HTTP requests kept for an operator: a request the native order API or a channel
webhook refuses (not JSON, invalid, unsigned, too large, ...) is stored raw in
`rejected_requests` with the error it earned, its id named in the error answered, and pruned
after a retention period. `refusal` turns a refusal into that answer, `store` has the SQL."""
