"""Fulfilment: Fulfilment orders per location, shipping and delivery tracking."""
