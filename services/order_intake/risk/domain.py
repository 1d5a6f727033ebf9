"""The fraud rule set and the scoring of one order, as pure functions.

Every order the shop takes payment for (not `paid_externally`: a marketplace took it) is
scored once its stock is reserved, where the saga would ask payment to authorise it. Each rule
that matches adds its points with a reason; the sum decides: below `review_at` the order is
accepted (authorised as usual), from `review_at` it is authorised and then held for a person's
review (ON_HOLD, reason `fraud_review`: nothing is captured before shipment, so nothing is
taken), from `reject_at` it is cancelled before anything is authorised (`fraud_rejected`).

The rules (`kind`):
- `order_value`: the order total above an amount (per currency; other currencies: skipped).
- `velocity`: more than `max_orders` orders (this one included) within `window_s` with the same
  `key`: `email` (plus-tags and case ignored), `card` (the payment token, standing in for the
  card fingerprint until a gateway gives one), `ip` (the client address of `POST /v1/orders`;
  loopback and private addresses are not a customer's and are skipped), `shipping_address`.
- `cards_per_email`: more than `max_cards` different cards on one e-mail within `window_s`.
- `billing_country_mismatch`: the billing address is in another country than the shipping
  address (skipped without a billing address).
- `first_order_high_value`: no earlier order from this e-mail, and the total above an amount.
- `provider_risk`: the gateway's own risk verdict on the authorisation (`PaymentAuthorized.risk`,
  e.g. Stripe Radar's `elevated` / `highest`), points per level. It comes with the
  authorisation, so it can only hold (review) or reject-and-void what was already authorised.

The velocity counts are what the store counted when the order was stored (`RiskSignals`).
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class Outcome(StrEnum):
    ACCEPT = "accept"
    REVIEW = "review"
    REJECT = "reject"


class VelocityKey(StrEnum):
    EMAIL = "email"
    CARD = "card"
    IP = "ip"
    SHIPPING_ADDRESS = "shipping_address"


class _Rule(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(min_length=1, max_length=64)


class OrderValueRule(_Rule):
    kind: Literal["order_value"] = "order_value"
    above: dict[str, Decimal] = Field(description="the amount per currency (ISO 4217 code)")
    points: int


class VelocityRule(_Rule):
    kind: Literal["velocity"] = "velocity"
    key: VelocityKey
    window_s: float = Field(gt=0)
    max_orders: int = Field(ge=0, description="orders allowed in the window, this one included")
    points: int


class CardsPerEmailRule(_Rule):
    kind: Literal["cards_per_email"] = "cards_per_email"
    window_s: float = Field(gt=0)
    max_cards: int = Field(ge=1)
    points: int


class BillingCountryMismatchRule(_Rule):
    kind: Literal["billing_country_mismatch"] = "billing_country_mismatch"
    points: int


class FirstOrderHighValueRule(_Rule):
    kind: Literal["first_order_high_value"] = "first_order_high_value"
    above: dict[str, Decimal]
    points: int


class ProviderRiskRule(_Rule):
    kind: Literal["provider_risk"] = "provider_risk"
    points: dict[str, int] = Field(description="points per risk level the gateway reports")


Rule = Annotated[
    OrderValueRule
    | VelocityRule
    | CardsPerEmailRule
    | BillingCountryMismatchRule
    | FirstOrderHighValueRule
    | ProviderRiskRule,
    Field(discriminator="kind"),
]

_HOUR = 3600.0
_HIGH_VALUE = {
    "EUR": Decimal(1000),
    "USD": Decimal(1000),
    "GBP": Decimal(900),
    "CHF": Decimal(1000),
}
_FIRST_ORDER_HIGH_VALUE = {k: v / 2 for k, v in _HIGH_VALUE.items()}

DEFAULT_RULES: tuple[Rule, ...] = (
    OrderValueRule(name="high_value", above=_HIGH_VALUE, points=20),
    VelocityRule(
        name="email_velocity", key=VelocityKey.EMAIL, window_s=_HOUR, max_orders=3, points=30
    ),
    VelocityRule(
        name="card_velocity", key=VelocityKey.CARD, window_s=_HOUR, max_orders=3, points=30
    ),
    VelocityRule(name="ip_velocity", key=VelocityKey.IP, window_s=_HOUR, max_orders=5, points=25),
    VelocityRule(
        name="address_velocity",
        key=VelocityKey.SHIPPING_ADDRESS,
        window_s=_HOUR,
        max_orders=5,
        points=20,
    ),
    CardsPerEmailRule(name="cards_per_email", window_s=24 * _HOUR, max_cards=2, points=30),
    BillingCountryMismatchRule(name="billing_country_mismatch", points=15),
    FirstOrderHighValueRule(
        name="first_order_high_value", above=_FIRST_ORDER_HIGH_VALUE, points=20
    ),
    ProviderRiskRule(name="provider_risk", points={"elevated": 40, "highest": 100}),
)


class RuleSet(BaseModel):
    """The fraud rules and the outcome thresholds (`OMS_FRAUD_RULES`, JSON; fields left out
    keep their defaults, `rules` given replaces the whole list)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    review_at: int = Field(default=50, ge=1)
    reject_at: int = Field(default=150, ge=1)
    rules: tuple[Rule, ...] = DEFAULT_RULES

    @model_validator(mode="after")
    def _consistent(self) -> RuleSet:
        if self.reject_at < self.review_at:
            raise ValueError("reject_at must not be below review_at")
        names = [rule.name for rule in self.rules]
        if len(names) != len(set(names)):
            raise ValueError("every rule needs a name of its own")
        return self

    def velocity_rules(self) -> tuple[VelocityRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, VelocityRule))

    def cards_rules(self) -> tuple[CardsPerEmailRule, ...]:
        return tuple(r for r in self.rules if isinstance(r, CardsPerEmailRule))

    def outcome(self, score: int) -> Outcome:
        if score >= self.reject_at:
            return Outcome.REJECT
        if score >= self.review_at:
            return Outcome.REVIEW
        return Outcome.ACCEPT


class SignalKeys(BaseModel):
    """What orders are compared by (hashed: the velocity table holds no personal data in the
    clear). None: the order has none (no card token, no customer address)."""

    model_config = ConfigDict(frozen=True)

    email: str | None
    card: str | None
    ip: str | None
    shipping_address: str

    def of(self, key: VelocityKey) -> str | None:
        return {
            VelocityKey.EMAIL: self.email,
            VelocityKey.CARD: self.card,
            VelocityKey.IP: self.ip,
            VelocityKey.SHIPPING_ADDRESS: self.shipping_address,
        }[key]


class RiskSignals(BaseModel):
    """What the store counted when the order was stored, this order included: orders in each
    velocity rule's window (by rule name; absent: the order has no such key), different cards on
    the e-mail in each cards rule's window, and whether the e-mail ordered before."""

    model_config = ConfigDict(frozen=True)

    velocity: dict[str, int] = Field(default_factory=dict)
    cards: dict[str, int] = Field(default_factory=dict)
    earlier_orders_by_email: int | None = None  # None: no e-mail, not counted
    client_ip: str | None = None
    billing_country: str | None = None


class ProviderRisk(BaseModel):
    """The gateway's own verdict (see PaymentAuthorized.risk)."""

    model_config = ConfigDict(frozen=True)

    level: str
    score: int | None = None


class RuleHit(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    points: int
    reason: str


class Assessment(BaseModel):
    model_config = ConfigDict(frozen=True)

    score: int
    outcome: Outcome
    hits: tuple[RuleHit, ...] = ()

    def detail(self) -> dict[str, object]:
        """For the order's timeline."""
        return {
            "score": self.score,
            "outcome": str(self.outcome),
            "reasons": [hit.model_dump() for hit in self.hits],
        }


def assess(
    rules: RuleSet,
    *,
    total: Decimal,
    currency: str,
    shipping_country: str,
    signals: RiskSignals,
) -> Assessment:
    """Score an order before its authorisation (every rule but `provider_risk`)."""
    hits: list[RuleHit] = []
    for rule in rules.rules:
        hit = _apply(rule, total, currency, shipping_country, signals)
        if hit is not None:
            hits.append(hit)
    return _assessment(rules, hits)


def with_provider_risk(rules: RuleSet, before: Assessment, risk: ProviderRisk) -> Assessment:
    """The assessment once the gateway's own verdict came with the authorisation."""
    hits = list(before.hits)
    for rule in rules.rules:
        if isinstance(rule, ProviderRiskRule) and rule.points.get(risk.level, 0):
            score = f" (score {risk.score})" if risk.score is not None else ""
            reason = f"the payment provider rates the payment {risk.level}{score}"
            hits.append(RuleHit(rule=rule.name, points=rule.points[risk.level], reason=reason))
    return _assessment(rules, hits)


def _assessment(rules: RuleSet, hits: list[RuleHit]) -> Assessment:
    score = sum(hit.points for hit in hits)
    return Assessment(score=score, outcome=rules.outcome(score), hits=tuple(hits))


def _apply(
    rule: Rule, total: Decimal, currency: str, shipping_country: str, signals: RiskSignals
) -> RuleHit | None:
    def hit(reason: str) -> RuleHit:
        assert not isinstance(rule, ProviderRiskRule)
        return RuleHit(rule=rule.name, points=rule.points, reason=reason)

    if isinstance(rule, OrderValueRule):
        limit = rule.above.get(currency)
        if limit is not None and total > limit:
            return hit(f"order total {total} {currency} is above {limit}")
    elif isinstance(rule, VelocityRule):
        count = signals.velocity.get(rule.name)
        if count is not None and count > rule.max_orders:
            return hit(
                f"{count} orders with this {rule.key.replace('_', ' ')} within"
                f" {_duration(rule.window_s)} (more than {rule.max_orders})"
            )
    elif isinstance(rule, CardsPerEmailRule):
        cards = signals.cards.get(rule.name)
        if cards is not None and cards > rule.max_cards:
            return hit(
                f"{cards} different cards on this e-mail within {_duration(rule.window_s)}"
                f" (more than {rule.max_cards})"
            )
    elif isinstance(rule, BillingCountryMismatchRule):
        billing = signals.billing_country
        if billing is not None and billing != shipping_country:
            return hit(f"billing country {billing} is not the shipping country {shipping_country}")
    elif isinstance(rule, FirstOrderHighValueRule):
        limit = rule.above.get(currency)
        first = signals.earlier_orders_by_email == 0
        if first and limit is not None and total > limit:
            return hit(f"first order from this e-mail, total {total} {currency} above {limit}")
    return None


def _duration(seconds: float) -> str:
    if seconds >= 86400 and seconds % 86400 == 0:
        return f"{int(seconds // 86400)} d"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{int(seconds // 3600)} h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{int(seconds // 60)} min"
    return f"{seconds:g} s"


# --- the keys orders are compared by ----------------------------------------------------------


def signal_keys(
    *,
    email: str | None,
    card_token: str | None,
    client_ip: str | None,
    line1: str,
    postal_code: str,
    country: str,
) -> SignalKeys:
    """The hashed keys of an order: the e-mail without case and plus-tag (ada+1@x and Ada@x are
    one customer), the card token, the client address when it is a public one, and the
    shipping address without case, spacing and punctuation."""
    return SignalKeys(
        email=_digest("email", normalised_email(email)) if email else None,
        card=_digest("card", card_token) if card_token else None,
        ip=_digest("ip", client_ip) if client_ip and is_customer_address(client_ip) else None,
        shipping_address=_digest(
            "address", f"{country.upper()}|{_squash(postal_code)}|{_squash(line1)}"
        ),
    )


def normalised_email(email: str) -> str:
    local, _, domain = email.strip().lower().partition("@")
    return f"{local.split('+', 1)[0]}@{domain}"


def is_customer_address(address: str) -> bool:
    """A public address. Loopback, private and link-local ones are a proxy's or an internal
    caller's (phone orders keyed in by staff), not the customer's."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return ip.is_global


def _squash(text: str) -> str:
    return re.sub(r"[\W_]+", "", text.lower())


def _digest(kind: str, value: str) -> str:
    return hashlib.sha256(f"{kind}:{value}".encode()).hexdigest()
