"""The native order API's request and answer bodies, and reading an order from a request body:
JSON parsed, checked for NUL characters and validated, every refusal naming the field."""

from __future__ import annotations

import re
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_core import PydanticCustomError

from services.order_intake.channels.adapters import RESERVED_CHANNELS
from services.order_intake.domain.order import CanonicalLine, CanonicalOrder
from services.order_intake.rejected_requests.refusal import IntakeRefused
from shared.contracts.common import Address, Customer
from shared.money import fits_currency, is_currency
from shared.platform.validation import Quantity, UnitPrice, first_nul_character

_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_SLUG = re.compile(r"^[a-z][a-z0-9_-]{1,31}$")


class AddressIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    line1: str = Field(min_length=1, max_length=200)
    line2: str | None = Field(default=None, max_length=200)
    city: str = Field(min_length=1, max_length=100)
    region: str | None = Field(default=None, max_length=100)
    postal_code: str = Field(min_length=1, max_length=20)
    country: str = Field(description="ISO 3166-1 alpha-2 country code, e.g. DE")

    @field_validator("country")
    @classmethod
    def _country(cls, value: str) -> str:
        if not re.fullmatch(r"[A-Z]{2}", value):
            raise PydanticCustomError(
                "invalid_country", "country must be an ISO 3166-1 alpha-2 code such as DE"
            )
        return value


class CustomerIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    email: str = Field(max_length=254)
    name: str | None = Field(default=None, max_length=200)
    phone: str | None = Field(default=None, max_length=40)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.match(value):
            raise PydanticCustomError("invalid_email", "email is not a valid e-mail address")
        return value


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    sku: str = Field(min_length=1, max_length=64)
    quantity: Quantity
    unit_price: UnitPrice = Field(
        description='a decimal string such as "19.90", in the order currency'
    )


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    method: str = Field(default="card", pattern=r"^[a-z_]{2,32}$")
    token: str = Field(min_length=1, max_length=200)


class OrderIn(BaseModel):
    """A native order (web shop, app, phone)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    channel: str = Field(default="web", description="web, app, phone, ... (a lowercase slug)")
    external_id: str | None = Field(default=None, max_length=128)
    customer: CustomerIn
    shipping_address: AddressIn
    billing_address: AddressIn | None = None
    currency: str = Field(description="ISO 4217 code, e.g. EUR")
    lines: list[LineIn] = Field(min_length=1)
    payment: PaymentIn
    shipping_method: str = "standard"
    promo_code: str | None = Field(default=None, max_length=64)

    @field_validator("channel")
    @classmethod
    def _channel(cls, value: str) -> str:
        if not _SLUG.match(value):
            raise PydanticCustomError("invalid_channel", "channel must be a lowercase slug")
        if value in RESERVED_CHANNELS:
            raise PydanticCustomError(
                "reserved_channel",
                "channel {channel} is integrated: its orders come through"
                " /v1/channels/{channel}/orders",
                {"channel": value},
            )
        return value

    @field_validator("currency")
    @classmethod
    def _currency(cls, value: str) -> str:
        if not is_currency(value):
            raise PydanticCustomError(
                "invalid_currency", "currency must be an ISO 4217 code such as EUR"
            )
        return value

    @model_validator(mode="after")
    def _amounts_fit_currency(self) -> OrderIn:
        for index, line in enumerate(self.lines):
            if not fits_currency(line.unit_price, self.currency):
                raise PydanticCustomError(
                    "invalid_amount",
                    "lines.{index}.unit_price has more decimal places than {currency} allows",
                    {"index": index, "currency": self.currency},
                )
        return self

    def canonical(self) -> CanonicalOrder:
        return CanonicalOrder(
            channel=self.channel,
            external_id=self.external_id,
            customer=Customer(**self.customer.model_dump()),
            shipping_address=Address(**self.shipping_address.model_dump()),
            billing_address=Address(**self.billing_address.model_dump())
            if self.billing_address
            else None,
            currency=self.currency,
            lines=tuple(
                CanonicalLine(sku=li.sku, quantity=li.quantity, unit_price=li.unit_price)
                for li in self.lines
            ),
            payment_method=self.payment.method,
            payment_token=self.payment.token,
            shipping_method=self.shipping_method,
            promo_code=self.promo_code,
        )


class OrderAccepted(BaseModel):
    order_id: str
    status: str
    duplicate: bool = False


class CancelIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    reason: str = Field(default="requested by customer", max_length=500)


class UnitsOut(BaseModel):
    sku: str
    quantity: int


class CancelAccepted(BaseModel):
    """The answer to a cancel: what it takes, and whether it is done."""

    order_id: str
    status: str = Field(description="the order's status after the request")
    cancel: Literal["pending", "done"] = Field(
        description="`done` once the order is CANCELLED; `pending` while the cancel waits for"
        " the step in flight or for the warehouse's answer"
    )
    scope: Literal["order", "unshipped_rest"] = Field(
        description="`order`: nothing has shipped, the whole order is cancelled (the money"
        " authorised is released); `unshipped_rest`: part of the order has shipped — the"
        " parcels that left stay shipped and charged, what has not left is cancelled and not"
        " charged, and the order completes when what shipped is delivered"
    )
    unshipped: list[UnitsOut] = Field(
        default_factory=list,
        description="`unshipped_rest`: the units the cancel takes, as far as known now (a parcel"
        " that leaves before the warehouse sees the cancel still ships and is charged; the"
        " customer's e-mail `rest_cancelled` names what was cancelled in the end)",
    )
    not_charged: str | None = Field(
        default=None,
        description="`unshipped_rest`: what the order will not capture for those units (their"
        " price with their part of shipping, discount and tax), in `currency`",
    )
    currency: str | None = None


def _problems(exc: ValidationError) -> list[dict[str, str]]:
    return [
        {
            "field": ".".join(str(p) for p in err["loc"]),
            "code": err["type"],
            "message": err["msg"],
        }
        for err in exc.errors()
    ]


_OWN_CODES = {
    "invalid_currency",
    "invalid_amount",
    "invalid_quantity",
    "invalid_email",
    "invalid_country",
    "invalid_channel",
    "reserved_channel",
}


def read_order(raw: bytes) -> tuple[Any, OrderIn]:
    """The JSON payload of a request body and the order it validates to; raises IntakeRefused
    (400 malformed JSON, 422 naming the first invalid field)."""
    try:
        payload = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise IntakeRefused(400, "malformed_json", f"request body is not JSON: {exc}") from exc
    nul = first_nul_character(payload)
    if nul is not None:
        raise IntakeRefused(422, "invalid_character", f"{nul}: text must not contain NUL")
    try:
        return payload, OrderIn.model_validate(payload)
    except ValidationError as exc:
        problems = _problems(exc)
        first = problems[0]
        code = first["code"] if first["code"] in _OWN_CODES else "validation_failed"
        raise IntakeRefused(
            422, code, f"{first['field'] or 'body'}: {first['message']}", problems=problems
        ) from exc
