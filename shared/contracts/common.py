"""Value types used by several contracts, and the field groups several contracts open with
(a contract inherits one next to Command or Event; its JSON is the same as with the fields
written out). Money is always a Decimal plus an ISO 4217 code."""

from __future__ import annotations

from decimal import Decimal

from pydantic import BaseModel, ConfigDict, Field

from shared.envelope import Contract


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
    """Stock reserved for one order line at one location. A kit's components are reserved
    under lines of their own (`{kit line id}/{component}`): those name the kit, its line and
    the units of the component in one kit."""

    line_id: str
    sku: str
    location: str
    quantity: int = Field(gt=0)
    kit_sku: str | None = None
    kit_line_id: str | None = None
    per_kit: int | None = Field(default=None, gt=0)


class ShortLine(Value):
    """An order line inventory cannot fill. A kit line short of a component names it
    (`component`); `requested` and `available` are then counted in kits."""

    line_id: str
    sku: str
    requested: int
    available: int
    component: str | None = None


class Money(Value):
    amount: Decimal
    currency: str = Field(min_length=3, max_length=3)


# --- field groups several contracts open with ----------------------------------------------


class FulfilmentLines(Contract):
    """What one fulfilment of an order takes from one location (CommitStock, StockCommitted,
    FulfilmentShipped)."""

    order_id: str
    fulfilment_id: str
    location: str
    lines: tuple[SkuQuantity, ...]


class ReturnedLines(Contract):
    """The items of one return at one location (the returns saga's stock commands and
    inventory's answers to them)."""

    return_id: str
    order_id: str
    location: str
    lines: tuple[SkuQuantity, ...]


class ShortUnits(Contract):
    """Units of one SKU a fulfilment did not get at its location because the bin was empty (a
    short pick, named by `short_id`): the order saga's ReallocateStock and WriteOffShortPick."""

    order_id: str
    short_id: str
    fulfilment_id: str
    location: str
    sku: str
    quantity: int = Field(gt=0)
    bin: str | None = None


class ShortWrittenOff(Contract):
    """Units of one SKU inventory wrote off at the `location` of a short pick (`short_id`):
    what its answers to ReallocateStock and WriteOffShortPick open with."""

    order_id: str
    short_id: str
    sku: str
    location: str
    written_off: int


class OrderAmount(Contract):
    """An amount of money for an order (the payment commands, PaymentRefunded)."""

    order_id: str
    amount: Decimal
    currency: str
