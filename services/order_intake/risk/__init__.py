"""Fraud rules: a configurable rule set scoring each order the shop takes payment for, before its
payment is authorised (`domain`: the rules and the scoring, pure; `store`: the velocity signals
recorded when an order is stored and counted within each rule's window)."""
