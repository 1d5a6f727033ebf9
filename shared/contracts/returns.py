"""Produced by returns. The returns saga is a later issue; only its topic exists so far."""

from __future__ import annotations
