"""Inventory: SKUs, stock per location, reservations and the stock ledger."""
