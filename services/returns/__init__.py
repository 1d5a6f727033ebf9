"""Returns: Return authorisations, inspection, restock, refunds and exchanges."""
