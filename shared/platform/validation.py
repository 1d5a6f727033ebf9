"""Field types for HTTP request bodies that more than one service accepts, with stable error
codes (the services' error handlers turn them into 422 answers naming the field)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field
from pydantic_core import PydanticCustomError

MAX_QUANTITY = 100_000
MAX_UNIT_PRICE = Decimal(1_000_000_000)
"""Money columns are numeric(18, 4): a unit price up to 10^9 times MAX_QUANTITY still fits."""


def _positive_quantity(value: int) -> int:
    if value <= 0:
        raise PydanticCustomError("invalid_quantity", "quantity must be positive")
    if value > MAX_QUANTITY:
        raise PydanticCustomError("invalid_quantity", "quantity is too large")
    return value


def _no_float(value: Any) -> Any:
    if isinstance(value, float):
        raise PydanticCustomError(
            "invalid_amount", 'money must be a decimal string such as "19.90", not a float'
        )
    return value


def _not_negative_unit_price(value: Decimal) -> Decimal:
    if not value.is_finite() or value < 0:
        raise PydanticCustomError("invalid_amount", "unit_price must not be negative")
    if value > MAX_UNIT_PRICE:
        raise PydanticCustomError(
            "invalid_amount", "unit_price is too large: at most {limit}", {"limit": MAX_UNIT_PRICE}
        )
    return value


def first_nul_character(value: Any, path: str = "") -> str | None:
    """The path (`lines.0.sku`) of the first string in a parsed JSON document that holds a NUL
    character, which Postgres text cannot store; None when there is none."""
    if isinstance(value, str):
        return path or "body" if "\x00" in value else None
    if isinstance(value, dict):
        for key, item in value.items():
            here = f"{path}.{key}" if path else str(key)
            if "\x00" in str(key):
                return here
            found = first_nul_character(item, here)
            if found is not None:
                return found
    if isinstance(value, list):
        for index, item in enumerate(value):
            found = first_nul_character(item, f"{path}.{index}" if path else str(index))
            if found is not None:
                return found
    return None


Quantity = Annotated[
    int,
    Field(strict=True, description="a positive whole number"),
    AfterValidator(_positive_quantity),
]
"""A positive whole number of units (not a string, not a float), at most MAX_QUANTITY."""

UnitPrice = Annotated[Decimal, BeforeValidator(_no_float), AfterValidator(_not_negative_unit_price)]
"""Money as a decimal string (never a float), finite and not negative."""
