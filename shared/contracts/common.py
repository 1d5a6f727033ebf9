"""Value types used by several contracts. Money is always a Decimal plus an ISO 4217 code."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field


class Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")


class Address(Value):
    line1: str
    line2: str | None = None
    city: str
    region: str | None = None
    postal_code: str
    country: str = Field(min_length=2, max_length=2)


class Customer(Value):
    email: str | None = None
    name: str | None = None
    phone: str | None = None


class OrderLineRef(Value):
    line_id: str
    sku: str
    quantity: int = Field(gt=0)


class SkuQuantity(Value):
    sku: str
    quantity: int = Field(gt=0)


class Allocation(Value):
    """Stock reserved for one order line at one location."""

    line_id: str
    sku: str
    location: str
    quantity: int = Field(gt=0)


class ShortLine(Value):
    line_id: str
    sku: str
    requested: int
    available: int


class Money(Value):
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)
