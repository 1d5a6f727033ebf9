"""The fraud rules, one by one, the thresholds, the rule set read from settings, and the keys
orders are compared by."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import ValidationError

from services.order_intake.risk.domain import (
    DEFAULT_RULES,
    BillingCountryMismatchRule,
    CardsPerEmailRule,
    FirstOrderHighValueRule,
    OrderValueRule,
    Outcome,
    ProviderRisk,
    ProviderRiskRule,
    RiskSignals,
    RuleSet,
    VelocityKey,
    VelocityRule,
    assess,
    is_customer_address,
    normalised_email,
    signal_keys,
    with_provider_risk,
)
from services.order_intake.settings import OrderIntakeSettings


def score(
    rules: RuleSet,
    *,
    total: str = "50.00",
    currency: str = "EUR",
    country: str = "DE",
    **signals: object,
) -> tuple[int, list[str]]:
    assessed = assess(
        rules,
        total=Decimal(total),
        currency=currency,
        shipping_country=country,
        signals=RiskSignals.model_validate({"earlier_orders_by_email": 1, **signals}),
    )
    return assessed.score, [hit.rule for hit in assessed.hits]


def only(*rules: object) -> RuleSet:
    return RuleSet.model_validate({"rules": [r.model_dump() for r in rules]})  # type: ignore[attr-defined]


def test_order_value_adds_points_above_the_amount_of_its_currency_only():
    rules = only(OrderValueRule(name="high", above={"EUR": Decimal(1000)}, points=20))
    assert score(rules, total="1000.00") == (0, [])
    assert score(rules, total="1000.01") == (20, ["high"])
    assert score(rules, total="5000", currency="JPY") == (0, []), "no amount for JPY: skipped"


@pytest.mark.parametrize("key", list(VelocityKey))
def test_velocity_adds_points_past_the_orders_allowed_in_the_window(key: VelocityKey):
    rules = only(VelocityRule(name="v", key=key, window_s=60, max_orders=3, points=30))
    assert score(rules, velocity={"v": 3}) == (0, [])
    assert score(rules, velocity={"v": 4}) == (30, ["v"])
    assert score(rules, velocity={}) == (0, []), "no such key on the order (no card, no IP)"


def test_velocity_reason_names_the_count_the_key_and_the_window():
    rules = only(
        VelocityRule(
            name="email_velocity", key=VelocityKey.EMAIL, window_s=3600, max_orders=3, points=30
        )
    )
    assessed = assess(
        rules,
        total=Decimal(10),
        currency="EUR",
        shipping_country="DE",
        signals=RiskSignals(velocity={"email_velocity": 7}),
    )
    assert assessed.hits[0].reason == "7 orders with this email within 1 h (more than 3)"


def test_cards_per_email_adds_points_past_the_cards_allowed():
    rules = only(CardsPerEmailRule(name="cards", window_s=86400, max_cards=2, points=30))
    assert score(rules, cards={"cards": 2}) == (0, [])
    assert score(rules, cards={"cards": 3}) == (30, ["cards"])


def test_billing_country_mismatch_only_with_a_billing_address():
    rules = only(BillingCountryMismatchRule(name="mismatch", points=15))
    assert score(rules, billing_country="DE") == (0, [])
    assert score(rules, billing_country="NG") == (15, ["mismatch"])
    assert score(rules, billing_country=None) == (0, []), "no billing address: skipped"


def test_first_order_high_value_needs_both_a_new_email_and_a_high_total():
    rules = only(FirstOrderHighValueRule(name="first", above={"EUR": Decimal(500)}, points=20))
    assert score(rules, total="600", earlier_orders_by_email=0) == (20, ["first"])
    assert score(rules, total="600", earlier_orders_by_email=1) == (0, [])
    assert score(rules, total="400", earlier_orders_by_email=0) == (0, [])
    assert score(rules, total="600", earlier_orders_by_email=None) == (0, []), "no e-mail"


def test_provider_risk_is_scored_on_top_with_the_authorisation():
    rules = RuleSet.model_validate(
        {
            "review_at": 50,
            "reject_at": 100,
            "rules": [
                ProviderRiskRule(
                    name="radar", points={"elevated": 40, "highest": 100}
                ).model_dump(),
                OrderValueRule(name="high", above={"EUR": Decimal(100)}, points=20).model_dump(),
            ],
        }
    )
    before = assess(
        rules,
        total=Decimal(150),
        currency="EUR",
        shipping_country="DE",
        signals=RiskSignals(),
    )
    assert (before.score, before.outcome) == (20, Outcome.ACCEPT), "not scored before it comes"
    normal = with_provider_risk(rules, before, ProviderRisk(level="normal"))
    assert normal == before
    elevated = with_provider_risk(rules, before, ProviderRisk(level="elevated", score=65))
    assert (elevated.score, elevated.outcome) == (60, Outcome.REVIEW)
    assert elevated.hits[-1].reason == "the payment provider rates the payment elevated (score 65)"
    highest = with_provider_risk(rules, before, ProviderRisk(level="highest"))
    assert highest.outcome == Outcome.REJECT


def test_points_add_up_and_the_thresholds_decide():
    rules = RuleSet(review_at=50, reject_at=100)
    assert rules.outcome(49) == Outcome.ACCEPT
    assert rules.outcome(50) == Outcome.REVIEW
    assert rules.outcome(99) == Outcome.REVIEW
    assert rules.outcome(100) == Outcome.REJECT
    points, hits = score(
        rules, velocity={"email_velocity": 4, "address_velocity": 6}, cards={"cards_per_email": 3}
    )
    assert (points, hits) == (80, ["email_velocity", "address_velocity", "cards_per_email"])


def test_the_defaults_hold_a_velocity_attack_from_the_fourth_order_and_reject_none_of_it():
    rules = RuleSet()
    outcomes = []
    for n in range(1, 11):  # one e-mail, a new card each time, one address
        assessed = assess(
            rules,
            total=Decimal("42.00"),
            currency="EUR",
            shipping_country="DE",
            signals=RiskSignals(
                velocity={"email_velocity": n, "card_velocity": 1, "address_velocity": n},
                cards={"cards_per_email": n},
                earlier_orders_by_email=min(n - 1, 1),
            ),
        )
        outcomes.append(assessed.outcome)
    assert outcomes == [Outcome.ACCEPT] * 3 + [Outcome.REVIEW] * 7


def test_rule_set_from_settings_json_keeps_defaults_for_what_is_left_out(monkeypatch):
    monkeypatch.setenv("OMS_FRAUD_RULES", '{"review_at": 40, "reject_at": 80}')
    rules = OrderIntakeSettings().fraud_rules
    assert (rules.review_at, rules.reject_at, rules.rules) == (40, 80, DEFAULT_RULES)
    monkeypatch.setenv(
        "OMS_FRAUD_RULES",
        '{"rules": [{"kind": "velocity", "name": "ip", "key": "ip", "window_s": 60,'
        ' "max_orders": 2, "points": 60}]}',
    )
    [rule] = OrderIntakeSettings().fraud_rules.rules
    assert rule == VelocityRule(name="ip", key=VelocityKey.IP, window_s=60, max_orders=2, points=60)


@pytest.mark.parametrize(
    "bad",
    [
        '{"review_at": 90, "reject_at": 50}',
        '{"rules": [{"kind": "nonsense", "name": "x", "points": 1}]}',
        '{"rules": [{"kind": "billing_country_mismatch", "name": "a", "points": 1},'
        ' {"kind": "billing_country_mismatch", "name": "a", "points": 2}]}',
    ],
)
def test_a_rule_set_that_makes_no_sense_stops_the_service_at_start(monkeypatch, bad: str):
    monkeypatch.setenv("OMS_FRAUD_RULES", bad)
    with pytest.raises(ValidationError):
        OrderIntakeSettings()


def test_keys_ignore_case_plus_tags_and_address_spelling_and_skip_non_public_addresses():
    one = signal_keys(
        email="Ada+shop@Example.com",
        card_token="tok_1",
        client_ip="93.184.216.34",
        line1="1 Main St.",
        postal_code="10115",
        country="DE",
    )
    two = signal_keys(
        email="ada@example.com",
        card_token="tok_2",
        client_ip="127.0.0.1",
        line1="1  main st",
        postal_code="10 115",
        country="de",
    )
    assert one.email == two.email and one.shipping_address == two.shipping_address
    assert one.card != two.card
    assert one.ip is not None and two.ip is None, "loopback is a proxy's, not the customer's"
    assert "ada" not in (one.email or ""), "hashed: nothing personal in the clear"
    assert normalised_email(" Ada+x@Example.COM ") == "ada@example.com"
    assert not is_customer_address("10.0.0.1") and not is_customer_address("not an ip")
    assert is_customer_address("2001:4860:4860::8888")
    no_email = signal_keys(
        email=None, card_token=None, client_ip=None, line1="x", postal_code="1", country="DE"
    )
    assert no_email.email is None and no_email.card is None
