"""What every channel adapter shares: the results of mapping a payload, errors that name the
field, exact money parsing, line totals split into unit prices, and webhook signatures.

Adapters are pure: they turn a channel's parsed payload (and its delivery headers) into a
`NewOrder`, a `CancelOrder` or an `Ignored`, or raise `ChannelPayloadError`. No I/O.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from services.order_intake.domain.order import CanonicalLine, CanonicalOrder
from shared.contracts.common import Address, Customer
from shared.money import fits_currency, is_currency, quantum

MAX_SKU_LENGTH = 64
MAX_QUANTITY = 100_000
MAX_AMOUNT = Decimal(10) ** 9
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_COUNTRY = re.compile(r"^[A-Z]{2}$")

Headers = Mapping[str, str]
"""Delivery headers with lower-cased names."""


# --- results -------------------------------------------------------------------------------


@dataclass(frozen=True)
class NewOrder:
    """A channel order to create (or to answer with the existing order when already known)."""

    external_id: str
    order: CanonicalOrder


@dataclass(frozen=True)
class CancelOrder:
    """The channel cancelled its order."""

    external_id: str
    reason: str


@dataclass(frozen=True)
class Ignored:
    """A delivery that asks nothing of the OMS (a ping, a status it does not act on). Answered
    with success so the channel does not retry it or disable the webhook."""

    reason: str
    external_id: str | None = None


ChannelResult = NewOrder | CancelOrder | Ignored


class ChannelPayloadError(ValueError):
    """The payload does not map to an order; `field` is the path in the payload (`line_items.0.sku`)."""

    def __init__(self, field: str, message: str, code: str = "invalid_payload") -> None:
        super().__init__(f"{field}: {message}" if field else message)
        self.field = field
        self.code = code
        self.message = message


@dataclass(frozen=True)
class ChannelAdapter:
    name: str
    parse: Callable[[Any, Headers], ChannelResult]
    # Webhook signature: base64(HMAC-SHA256(secret, raw body)) in this header; None: unsigned.
    signature_header: str | None = None
    # The channel's id of one webhook delivery (the same on its retries), if it sends one.
    delivery_id_header: str | None = None
    # A request that only checks the endpoint is reachable (answered before any signature check).
    is_ping: Callable[[bytes, Headers], bool] | None = None

    @property
    def signed(self) -> bool:
        return self.signature_header is not None


# --- raw body ------------------------------------------------------------------------------


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a valid JSON number")


def parse_json(raw: bytes | str) -> Any:
    """Parse a channel body with every JSON number with a fraction as an exact Decimal.

    Raises ValueError (json.JSONDecodeError, UnicodeDecodeError, RecursionError wrapped) when the
    body is not JSON.
    """
    try:
        return json.loads(raw, parse_float=Decimal, parse_constant=_reject_constant)
    except RecursionError as exc:
        raise ValueError("JSON nested too deeply") from exc


def verify_signature(secret: bytes, raw: bytes, given: str | None) -> bool:
    """True when `given` is base64(HMAC-SHA256(secret, raw)); compared in constant time."""
    if not given:
        return False
    try:
        given_digest = base64.b64decode(given.strip(), validate=True)
    except (binascii.Error, ValueError):
        return False
    expected = hmac.new(secret, raw, hashlib.sha256).digest()
    return hmac.compare_digest(expected, given_digest)


def sign(secret: bytes, raw: bytes) -> str:
    """The signature a channel would send for `raw` (for tests and local tools)."""
    return base64.b64encode(hmac.new(secret, raw, hashlib.sha256).digest()).decode()


def lower_keys(headers: Mapping[str, str]) -> dict[str, str]:
    return {str(k).lower(): str(v) for k, v in headers.items()}


# --- reading a payload ---------------------------------------------------------------------


class Reader:
    """Typed access to one JSON object; every error names the field by its full path."""

    def __init__(self, data: Any, path: str = "") -> None:
        if not isinstance(data, Mapping):
            raise ChannelPayloadError(path, "must be a JSON object")
        self.data: Mapping[str, Any] = data
        self.path = path

    @classmethod
    def root(cls, payload: Any) -> Reader:
        if not isinstance(payload, Mapping):
            raise ChannelPayloadError("", "the payload must be a JSON object")
        return cls(payload)

    def field(self, key: str | int) -> str:
        return f"{self.path}.{key}" if self.path else str(key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def raw(self, key: str) -> Any:
        return self.data.get(key)

    def obj(self, key: str) -> Reader:
        value = self.data.get(key)
        if value is None:
            raise ChannelPayloadError(self.field(key), "is required")
        return Reader(value, self.field(key))

    def optional_obj(self, key: str) -> Reader | None:
        value = self.data.get(key)
        if value is None:
            return None
        return Reader(value, self.field(key))

    def optional_timestamp(self, key: str) -> datetime | None:
        """An ISO 8601 date-time (without an offset: UTC), or None when absent."""
        text = self.optional_text(key, max_length=64)
        if text is None:
            return None
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError as exc:
            raise ChannelPayloadError(self.field(key), "must be an ISO 8601 date-time") from exc
        return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)

    def objects(self, key: str, *, required: bool = True) -> list[Reader]:
        value = self.data.get(key)
        if value is None:
            if required:
                raise ChannelPayloadError(self.field(key), "is required")
            return []
        if not isinstance(value, list):
            raise ChannelPayloadError(self.field(key), "must be a list")
        path = self.field(key)
        return [Reader(item, f"{path}.{index}") for index, item in enumerate(value)]

    def text(self, key: str, *, max_length: int = 200) -> str:
        value = self.optional_text(key, max_length=max_length)
        if value is None:
            raise ChannelPayloadError(self.field(key), "is required")
        return value

    def optional_text(self, key: str, *, max_length: int = 200) -> str | None:
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise ChannelPayloadError(self.field(key), "must be a string")
        text = str(value).strip()
        if not text:
            return None
        if "\x00" in text:
            raise ChannelPayloadError(self.field(key), "must not contain NUL characters")
        try:
            text.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ChannelPayloadError(self.field(key), "is not valid Unicode text") from exc
        if len(text) > max_length:
            raise ChannelPayloadError(self.field(key), f"is longer than {max_length} characters")
        return text

    def identifier(self, key: str) -> str:
        """An id the channel may send as a number or a string."""
        return self.text(key, max_length=128)

    def quantity(self, key: str) -> int:
        value = self.data.get(key)
        if value is None:
            raise ChannelPayloadError(self.field(key), "is required")
        if isinstance(value, str) and value.strip().isdigit():
            value = int(value.strip())
        if isinstance(value, bool) or not isinstance(value, int):
            raise ChannelPayloadError(self.field(key), "must be a whole number")
        if value < 0:
            raise ChannelPayloadError(self.field(key), "must not be negative")
        if value > MAX_QUANTITY:
            raise ChannelPayloadError(self.field(key), "is too large")
        return value

    def amount(self, key: str, currency: str) -> Decimal:
        value = self.optional_amount(key, currency)
        if value is None:
            raise ChannelPayloadError(self.field(key), "is required")
        return value

    def optional_decimal(self, key: str) -> Decimal | None:
        """An amount given as a decimal string or a JSON number, parsed exactly, of any number
        of decimal places; None when absent or empty."""
        value = self.data.get(key)
        if value is None or (isinstance(value, str) and not value.strip()):
            return None
        if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
            raise ChannelPayloadError(self.field(key), "must be a decimal amount")
        try:
            amount = Decimal(value.strip()) if isinstance(value, str) else Decimal(value)
        except InvalidOperation as exc:
            raise ChannelPayloadError(self.field(key), f"{value!r} is not an amount") from exc
        if not amount.is_finite():
            raise ChannelPayloadError(self.field(key), "must be a finite amount")
        if abs(amount) >= MAX_AMOUNT:
            raise ChannelPayloadError(self.field(key), "is too large")
        return amount

    def optional_amount(self, key: str, currency: str) -> Decimal | None:
        """A money amount given as a decimal string or a JSON number, parsed exactly."""
        amount = self.optional_decimal(key)
        if amount is None:
            return None
        if not fits_currency(amount, currency):
            raise ChannelPayloadError(
                self.field(key), f"{amount} has more decimal places than {currency} allows"
            )
        return amount

    def boolean(self, key: str) -> bool:
        value = self.data.get(key)
        if value is None:
            return False
        if not isinstance(value, bool):
            raise ChannelPayloadError(self.field(key), "must be true or false")
        return value


# --- the skeleton every adapter follows ----------------------------------------------------


@dataclass(frozen=True)
class WebhookTopics:
    """Where a channel's webhook names its topic (`header`), the topics its adapter handles, and
    a `hint` telling which topics to subscribe."""

    header: str
    handled: frozenset[str]
    hint: str

    def of(self, headers: Headers) -> str | None:
        """The delivery's topic, if sent; refused (`unsupported_topic`) when not handled."""
        topic = headers.get(self.header)
        if topic is not None and topic not in self.handled:
            raise ChannelPayloadError(
                f"headers.{self.header}",
                f"topic {topic!r} is not handled; {self.hint}",
                code="unsupported_topic",
            )
        return topic


def line_items(order: Reader, key: str) -> list[Reader]:
    """The order's items under `key`; refused when there are none."""
    items = order.objects(key)
    if not items:
        raise ChannelPayloadError(order.field(key), "must not be empty")
    return items


def order_lines(
    order: Reader, key: str, line: Callable[[Reader, int], list[CanonicalLine]]
) -> list[CanonicalLine]:
    """The canonical lines of the items under `key`: each item with a `quantity` mapped by
    `line(item, quantity)`, items with quantity 0 left out; refused when none is left."""
    lines: list[CanonicalLine] = []
    for item in line_items(order, key):
        quantity = item.quantity("quantity")
        if quantity:
            lines += line(item, quantity)
    if not lines:
        raise ChannelPayloadError(order.field(key), "no line has a quantity")
    return lines


def new_order(
    channel: str,
    external_id: str,
    *,
    customer: Customer,
    shipping_address: Address,
    billing_address: Address | None = None,
    currency: str,
    lines: Sequence[CanonicalLine],
    paid: bool,
    shipping_method: str,
    shipping: Decimal,
    tax: Decimal,
    changed_at: datetime | None = None,
) -> NewOrder:
    """A channel order to create, with the channel's own shipping and tax. `paid`: the channel
    took the money (paid externally); otherwise the payment service authorises it with method
    `<channel>` and token `<channel>:<external id>`. `changed_at`: when the channel last
    changed the order (this version of it), so an older version arriving late is not taken for
    an edit."""
    return NewOrder(
        external_id,
        CanonicalOrder(
            channel=channel,
            external_id=external_id,
            customer=customer,
            shipping_address=shipping_address,
            billing_address=billing_address,
            currency=currency,
            lines=tuple(lines),
            payment_method=channel,
            payment_token=None if paid else f"{channel}:{external_id}",
            paid_externally=paid,
            shipping_method=shipping_method,
            shipping_override=shipping,
            tax_override=tax,
            channel_changed_at=changed_at,
        ),
    )


# --- building the canonical order ----------------------------------------------------------


def currency_code(value: str, field: str) -> str:
    code = value.strip().upper()
    if not is_currency(code):
        raise ChannelPayloadError(field, f"{value!r} is not an ISO 4217 currency code")
    return code


def same_currency(given: str | None, currency: str, field: str) -> None:
    if given is not None and given.strip().upper() != currency:
        raise ChannelPayloadError(field, f"is in {given}, the order is in {currency}")


def sku_of(reader: Reader, key: str) -> str:
    sku = reader.optional_text(key, max_length=MAX_SKU_LENGTH)
    if sku is None:
        raise ChannelPayloadError(
            reader.field(key), "is required: every line needs the seller's SKU"
        )
    return sku


def split_line_total(
    sku: str, quantity: int, line_total: Decimal, currency: str, field: str
) -> list[CanonicalLine]:
    """Unit prices for a line the channel gave as a total, keeping the total exact.

    The total is divided to the currency's minor unit. When it does not divide evenly the line
    becomes two lines of the same SKU: `quantity - r` units at the rounded-down price and `r`
    units one minor unit dearer, where `r` is the remainder in minor units. 10.00 for 3 units:
    2 at 3.33 and 1 at 3.34.
    """
    if quantity <= 0:
        raise ChannelPayloadError(field, "quantity must be positive")
    if line_total < 0:
        raise ChannelPayloadError(field, "the line total must not be negative")
    step = quantum(currency)
    minor = line_total / step
    if minor != minor.to_integral_value():
        raise ChannelPayloadError(field, f"{line_total} is not a whole amount of {currency}")
    base, remainder = divmod(int(minor), quantity)
    lines = [CanonicalLine(sku=sku, quantity=quantity - remainder, unit_price=base * step)]
    if remainder:
        lines.append(CanonicalLine(sku=sku, quantity=remainder, unit_price=(base + 1) * step))
    return [line for line in lines if line.quantity > 0]


def line_from_unit_price(
    sku: str, quantity: int, unit_price: Decimal, adjustments: Decimal, currency: str, field: str
) -> list[CanonicalLine]:
    """A line priced per unit, less `adjustments` (discounts, included tax) on the whole line."""
    if adjustments == 0:
        if unit_price < 0:
            raise ChannelPayloadError(field, "the price must not be negative")
        return [CanonicalLine(sku=sku, quantity=quantity, unit_price=unit_price)]
    return split_line_total(sku, quantity, unit_price * quantity - adjustments, currency, field)


@dataclass(frozen=True)
class AddressKeys:
    """A channel's keys for the parts of an address, in `Address`'s order (line 1, line 2,
    city, region, postal code, country)."""

    line1: str
    line2: tuple[str, ...]
    city: str
    region: tuple[str, ...]
    postal_code: str
    country: str

    def read(self, reader: Reader) -> Address:
        """The address in `reader`: `line2` joins the keys given that are present, `region`
        takes the first present one. A missing line1, city, postal code or country is refused
        naming the channel's field."""
        values = {
            "line1": reader.optional_text(self.line1),
            "city": reader.optional_text(self.city, max_length=100),
            "postal_code": reader.optional_text(self.postal_code, max_length=20),
            "country": reader.optional_text(self.country, max_length=2),
        }
        keys = {
            "line1": self.line1,
            "city": self.city,
            "postal_code": self.postal_code,
            "country": self.country,
        }
        for name, value in values.items():
            if not value:
                raise ChannelPayloadError(reader.field(keys[name]), "is required")
        code = str(values["country"]).upper()
        if not _COUNTRY.match(code):
            raise ChannelPayloadError(
                reader.field(self.country),
                f"{values['country']!r} is not an ISO 3166-1 alpha-2 country code",
            )
        second = ", ".join(t for t in (reader.optional_text(k) for k in self.line2) if t)
        regions = (reader.optional_text(k, max_length=100) for k in self.region)
        return Address(
            line1=str(values["line1"]),
            line2=second or None,
            city=str(values["city"]),
            region=next((r for r in regions if r), None),
            postal_code=str(values["postal_code"]),
            country=code,
        )

    def read_if_given(self, reader: Reader | None) -> Address | None:
        """The address in `reader`; None when the channel sent none (no object, or one without
        its first line, as a billing address often is)."""
        if reader is None or not reader.has(self.line1):
            return None
        return self.read(reader)


def customer(
    *, email: str | None, name: str | None, phone: str | None, email_field: str
) -> Customer:
    if email is not None and not _EMAIL.match(email):
        raise ChannelPayloadError(email_field, "is not a valid e-mail address")
    return Customer(email=email, name=name, phone=phone)


def recipient_customer(
    ship_to: Reader, billing: Reader | None, *, email: str | None, email_field: str
) -> Customer:
    """The customer with `email`, and the recipient's name (`first_name`, `last_name`) and
    `phone`: the ship-to address's, else the billing address's."""

    def name_of(reader: Reader) -> str | None:
        return full_name(reader.optional_text("first_name"), reader.optional_text("last_name"))

    def phone_of(reader: Reader) -> str | None:
        return reader.optional_text("phone", max_length=40)

    return customer(
        email=email,
        name=name_of(ship_to) or (name_of(billing) if billing else None),
        phone=phone_of(ship_to) or (phone_of(billing) if billing else None),
        email_field=email_field,
    )


def full_name(*parts: str | None) -> str | None:
    joined = " ".join(p.strip() for p in parts if p and p.strip())
    return joined or None


def not_negative(value: Decimal, field: str) -> Decimal:
    if value < 0:
        raise ChannelPayloadError(field, "must not be negative")
    return value
