"""Availability: what each channel may sell, announced whenever stock changes."""
