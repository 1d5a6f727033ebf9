"""Routing strategies and rules over location records: pure, deterministic, all or nothing."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from services.inventory.routing.config import RoutingSettings
from services.inventory.routing.domain import (
    STRATEGIES,
    Destination,
    LocationRecord,
    Routed,
    RoutingPolicy,
    RoutingRule,
    Strategy,
    rank_locations,
    route,
)
from services.inventory.settings import InventorySettings
from services.inventory.stock.domain import (
    INSUFFICIENT_STOCK,
    UNKNOWN_SKU,
    LineRequest,
    Refused,
    Reserved,
    Shortfall,
    StockLevel,
    allocate,
)

# --- the fixture: a seller with three German warehouses, one in Vienna, a Paris store that
# ships only to France and its neighbours, and a closed warehouse -----------------------------

LOCATIONS = {
    record.code: record
    for record in (
        LocationRecord("berlin", "Berlin", "warehouse", "DE", "10115", 52.53, 13.38, priority=50),
        LocationRecord("hamburg", "Hamburg", "warehouse", "DE", "20457", 53.54, 9.98, priority=20),
        LocationRecord("munich", "Munich", "warehouse", "DE", "80331", 48.14, 11.57, priority=100),
        LocationRecord("vienna", "Vienna", "3pl", "AT", "1010", 48.21, 16.37, priority=30),
        LocationRecord(
            "paris",
            "Paris store",
            "store",
            "FR",
            "75001",
            48.86,
            2.34,
            priority=40,
            ships_to=("BE", "FR", "LU"),
        ),
        LocationRecord("closed", "Old site", "warehouse", "DE", "10117", priority=1, active=False),
    )
}

BERLIN_CUSTOMER = Destination("DE", "10117")
HAMBURG_CUSTOMER = Destination("DE", "20095")
VIENNA_CUSTOMER = Destination("AT", "1030")
ZURICH_CUSTOMER = Destination("CH", "8001")
PARIS_CUSTOMER = Destination("FR", "75011")


def line(line_id: str, sku: str, quantity: int) -> LineRequest:
    return LineRequest(line_id, sku, quantity)


def stock(location: str, sku: str, on_hand: int, reserved: int = 0) -> StockLevel:
    return StockLevel(sku, location, on_hand, reserved)


def everywhere(sku: str, quantity: int, *locations: str) -> list[StockLevel]:
    return [stock(location, sku, quantity) for location in locations or LOCATIONS]


def routed(
    strategy: Strategy,
    lines: Sequence[LineRequest],
    levels: Sequence[StockLevel],
    destination: Destination | None,
    *,
    rules: Sequence[RoutingRule] = (),
    channel: str = "web",
    locations: Mapping[str, LocationRecord] = LOCATIONS,
) -> Routed:
    known = {level.sku for level in levels} | {line.sku for line in lines}
    return route(
        lines,
        levels,
        known,
        locations,
        policy=RoutingPolicy(strategy=strategy, rules=tuple(rules)),
        channel=channel,
        destination=destination,
    )


def placed(result: Routed) -> list[tuple[str, str, int]]:
    assert isinstance(result.decision, Reserved), result
    return [(p.line_id, p.location, p.quantity) for p in result.decision.placements]


def used(result: Routed) -> set[str]:
    return {location for _, location, _ in placed(result)}


# --- single_location_first (the default) ---------------------------------------------------


def test_without_location_records_the_default_decides_exactly_as_allocate():
    lines = [line("l1", "A", 5), line("l2", "B", 5), line("l3", "C", 1)]
    levels = [
        stock("east", "A", 5),
        stock("east", "C", 1),
        stock("west", "B", 5),
        stock("north", "A", 1),
        stock("north", "B", 1),
        stock("north", "C", 1),
    ]
    result = routed("single_location_first", lines, levels, BERLIN_CUSTOMER, locations={})
    assert result.decision == allocate(lines, levels, {"A", "B", "C"})
    assert result.explanation.strategy == "single_location_first"
    assert result.explanation.locations == ("east", "west")
    assert "split over east, west" in result.explanation.reason


@settings(max_examples=200, deadline=None)
@given(
    quantities=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    levels=st.lists(
        st.tuples(
            st.sampled_from(["east", "west", "north", "south"]),
            st.sampled_from(["A", "B", "C"]),
            st.integers(0, 8),
            st.integers(0, 3),
        ),
        max_size=12,
        unique_by=lambda t: (t[0], t[1]),
    ),
)
def test_the_default_strategy_is_allocate_whatever_the_order_and_stock(
    quantities: list[int], levels: list[tuple[str, str, int, int]]
) -> None:
    lines = [line(f"l{i}", "ABC"[i % 3], q) for i, q in enumerate(quantities)]
    rows = [stock(loc, sku, on_hand + reserved, reserved) for loc, sku, on_hand, reserved in levels]
    result = route(
        lines, rows, {"A", "B", "C"}, {}, policy=RoutingPolicy(), channel="web", destination=None
    )
    assert result.decision == allocate(lines, rows, {"A", "B", "C"})


def test_the_default_says_which_location_ships_the_whole_order():
    levels = [*everywhere("A", 3, "berlin"), *everywhere("A", 9, "munich")]
    result = routed("single_location_first", [line("l1", "A", 2)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "munich", 2)], "most available, as before"
    assert result.explanation.reason == "single_location_first: munich can ship the whole order"


# --- every strategy: ships_to and inactive locations ----------------------------------------


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_no_strategy_ships_from_a_location_that_does_not_ship_to_the_customer(strategy: Strategy):
    # Paris holds the most and is the nearest to a Zurich customer, but does not ship to CH.
    levels = [stock("paris", "A", 50), stock("munich", "A", 2), stock("closed", "A", 50)]
    result = routed(strategy, [line("l1", "A", 2)], levels, ZURICH_CUSTOMER)
    assert placed(result) == [("l1", "munich", 2)]
    assert "paris (does not ship to CH)" in result.explanation.reason
    assert "closed (inactive)" in result.explanation.reason


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_stock_only_where_the_order_may_not_ship_from_is_not_enough(strategy: Strategy):
    levels = [stock("paris", "A", 50), stock("munich", "A", 1)]
    result = routed(strategy, [line("l1", "A", 2)], levels, ZURICH_CUSTOMER)
    assert result.decision == Refused(INSUFFICIENT_STOCK, (Shortfall("l1", "A", 2, 1),))
    assert result.explanation.locations == ()
    assert "paris (does not ship to CH)" in result.explanation.reason


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_an_unknown_sku_is_refused_by_every_strategy(strategy: Strategy):
    result = route(
        [line("l1", "A", 1), line("l2", "NOPE", 2)],
        [stock("berlin", "A", 3)],
        {"A"},
        LOCATIONS,
        policy=RoutingPolicy(strategy=strategy),
        channel="web",
        destination=BERLIN_CUSTOMER,
    )
    assert result.decision == Refused(UNKNOWN_SKU, (Shortfall("l2", "NOPE", 2, 0),))


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_location_without_a_record_ships_anywhere(strategy: Strategy):
    result = routed(strategy, [line("l1", "A", 2)], [stock("somewhere", "A", 5)], PARIS_CUSTOMER)
    assert placed(result) == [("l1", "somewhere", 2)]


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_without_a_destination_no_location_is_excluded_for_where_it_ships(strategy: Strategy):
    result = routed(strategy, [line("l1", "A", 2)], [stock("paris", "A", 5)], None)
    assert placed(result) == [("l1", "paris", 2)]


# --- nearest -------------------------------------------------------------------------------


def test_nearest_in_the_customer_s_country_prefers_the_longest_shared_postal_prefix():
    levels = everywhere("A", 5, "berlin", "hamburg", "munich", "vienna")
    result = routed("nearest", [line("l1", "A", 2)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "berlin", 2)], "10117 shares 1011 with 10115"
    assert result.explanation.reason == (
        "nearest to DE 10117: berlin (same country, postal code starts 1011 like the customer's)"
    )
    hamburg = routed("nearest", [line("l1", "A", 2)], levels, HAMBURG_CUSTOMER)
    assert placed(hamburg) == [("l1", "hamburg", 2)], "20095 shares 20 with 20457"


def test_nearest_prefers_a_location_in_the_customer_s_country_over_a_nearer_one_abroad():
    # Görlitz (02826) is ~ 340 km from Vienna and ~ 420 km from Munich: the same country
    # (no border, no customs, domestic rates) wins all the same.
    levels = everywhere("A", 5, "vienna", "munich")
    result = routed("nearest", [line("l1", "A", 1)], levels, Destination("DE", "02826"))
    assert placed(result) == [("l1", "munich", 1)]
    assert "munich (same country)" in result.explanation.reason


def test_nearest_abroad_is_measured_to_the_centre_of_the_customer_s_country():
    levels = everywhere("A", 5, "berlin", "hamburg", "munich", "vienna")
    result = routed("nearest", [line("l1", "A", 1)], levels, ZURICH_CUSTOMER)
    assert placed(result) == [("l1", "munich", 1)]
    assert result.explanation.reason.startswith("nearest to CH 8001: munich (DE, ")
    assert " km)" in result.explanation.reason
    vienna = routed("nearest", [line("l1", "A", 1)], levels, VIENNA_CUSTOMER)
    assert placed(vienna) == [("l1", "vienna", 1)], "in the customer's country"


def test_nearest_takes_a_whole_order_location_in_the_country_over_a_split_from_nearer_ones():
    levels = [
        stock("berlin", "A", 5),  # nearest, but has no B
        stock("hamburg", "A", 5),
        stock("hamburg", "B", 5),
        stock("munich", "B", 5),
    ]
    result = routed("nearest", [line("l1", "A", 1), line("l2", "B", 1)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "hamburg", 1), ("l2", "hamburg", 1)]


def test_nearest_splits_within_the_country_before_shipping_whole_from_abroad():
    levels = [
        stock("berlin", "A", 5),
        stock("munich", "B", 5),
        stock("vienna", "A", 5),
        stock("vienna", "B", 5),
    ]
    result = routed("nearest", [line("l1", "A", 1), line("l2", "B", 1)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "berlin", 1), ("l2", "munich", 1)]
    assert "berlin (same country, postal code starts 101" in result.explanation.reason
    assert "no location as near can ship the whole order" in result.explanation.reason


def test_nearest_ships_whole_from_abroad_when_the_country_cannot_fill_the_order():
    levels = [stock("berlin", "A", 5), stock("vienna", "A", 5), stock("vienna", "B", 5)]
    result = routed("nearest", [line("l1", "A", 1), line("l2", "B", 1)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "vienna", 1), ("l2", "vienna", 1)]


def test_nearest_splitting_takes_from_the_nearest_first():
    levels = everywhere("A", 3, "berlin", "hamburg", "munich")
    result = routed("nearest", [line("l1", "A", 5)], levels, BERLIN_CUSTOMER)
    # berlin shares 1011; hamburg and munich share nothing: the cheaper (hamburg) is next.
    assert placed(result) == [("l1", "berlin", 3), ("l1", "hamburg", 2)]


def test_nearest_without_a_destination_goes_by_priority():
    levels = everywhere("A", 3, "berlin", "hamburg")
    result = routed("nearest", [line("l1", "A", 1)], levels, None)
    assert placed(result) == [("l1", "hamburg", 1)]
    assert "no destination" in result.explanation.reason


def test_a_location_nowhere_known_is_the_last_resort_of_nearest():
    levels = [stock("somewhere", "A", 5), stock("vienna", "A", 5)]
    result = routed("nearest", [line("l1", "A", 1)], levels, ZURICH_CUSTOMER)
    assert placed(result) == [("l1", "vienna", 1)]


# --- fewest_parcels ------------------------------------------------------------------------


def test_fewest_parcels_finds_the_two_locations_where_the_greedy_split_takes_three():
    # The classic trap: "c" can ship four of the six lines, but then both others are needed.
    lines = [line(f"l{n}", f"S{n}", 1) for n in range(1, 7)]
    holdings = {"a": [1, 2, 3], "b": [4, 5, 6], "c": [1, 2, 4, 5]}
    levels = [stock(loc, f"S{n}", 1) for loc, skus in holdings.items() for n in skus]
    records = {code: LocationRecord(code, country="DE") for code in holdings}
    default = routed("single_location_first", lines, levels, None, locations=records)
    assert len(used(default)) == 3
    fewest = routed("fewest_parcels", lines, levels, None, locations=records)
    assert used(fewest) == {"a", "b"}
    assert fewest.explanation.reason == "fewest_parcels: 2 parcels from a, b"


def test_fewest_parcels_breaks_ties_by_priority_then_name():
    levels = everywhere("A", 5, "berlin", "hamburg", "munich")
    result = routed("fewest_parcels", [line("l1", "A", 5)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "hamburg", 5)]
    records = {code: LocationRecord(code) for code in ("x", "y")}
    tie = routed(
        "fewest_parcels",
        [line("l1", "A", 1)],
        everywhere("A", 1, "y", "x"),
        None,
        locations=records,
    )
    assert placed(tie) == [("l1", "x", 1)]


def test_fewest_parcels_splits_a_line_over_as_few_locations_as_hold_it():
    levels = [stock("berlin", "A", 2), stock("hamburg", "A", 4), stock("munich", "A", 4)]
    result = routed("fewest_parcels", [line("l1", "A", 8)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "hamburg", 4), ("l1", "munich", 4)]


def test_fewest_parcels_over_many_locations_is_greedy_and_still_fills_the_order():
    codes = [f"loc{n:02d}" for n in range(20)]
    records = {code: LocationRecord(code) for code in codes}
    lines = [line(f"l{n}", f"S{n}", 2) for n in range(5)]
    # loc00..loc18 hold one unit of one SKU each; loc19 holds two of every SKU.
    levels = [stock(codes[n], f"S{n % 5}", 1) for n in range(19)]
    levels += [stock("loc19", f"S{n}", 2) for n in range(5)]
    result = routed("fewest_parcels", lines, levels, None, locations=records)
    assert used(result) == {"loc19"}
    assert "greedy" in result.explanation.reason


# --- lowest_cost ---------------------------------------------------------------------------


def test_lowest_cost_takes_the_cheapest_location_that_can_ship_everything():
    levels = [
        stock("berlin", "A", 50),
        stock("hamburg", "A", 1),  # cheapest, but cannot ship the whole order
        stock("vienna", "A", 2),
        stock("munich", "A", 9),
    ]
    result = routed("lowest_cost", [line("l1", "A", 2)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "vienna", 2)]
    assert result.explanation.reason == (
        "lowest_cost: vienna (priority 30) is the cheapest that can ship the whole order"
    )


def test_lowest_cost_fills_from_the_cheapest_when_no_location_can_ship_everything():
    levels = everywhere("A", 2, "berlin", "hamburg", "munich", "vienna")
    result = routed("lowest_cost", [line("l1", "A", 5)], levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "hamburg", 2), ("l1", "vienna", 2), ("l1", "berlin", 1)]
    assert "filled from the cheapest: hamburg (priority 20), vienna (priority 30)" in (
        result.explanation.reason
    )


def test_a_line_a_location_can_take_whole_is_not_split_when_filling():
    levels = [stock("hamburg", "A", 1), stock("hamburg", "B", 1), stock("vienna", "A", 3)]
    lines = [line("l1", "A", 3), line("l2", "B", 1)]
    result = routed("lowest_cost", lines, levels, BERLIN_CUSTOMER)
    assert placed(result) == [("l1", "vienna", 3), ("l2", "hamburg", 1)]


# --- rules ---------------------------------------------------------------------------------

AMAZON_FROM_MUNICH = RoutingRule(locations=("munich",), channel="amazon")


@pytest.mark.parametrize("strategy", STRATEGIES)
def test_a_channel_rule_ships_only_from_its_locations(strategy: Strategy):
    levels = everywhere("A", 5, "berlin", "hamburg", "munich")
    result = routed(
        strategy,
        [line("l1", "A", 2)],
        levels,
        BERLIN_CUSTOMER,
        rules=[AMAZON_FROM_MUNICH],
        channel="amazon",
    )
    assert placed(result) == [("l1", "munich", 2)]
    assert result.explanation.reason.startswith("rule channel amazon: munich; ")


def test_a_rule_for_another_channel_does_not_apply():
    levels = everywhere("A", 5, "berlin", "munich")
    result = routed(
        "nearest", [line("l1", "A", 2)], levels, BERLIN_CUSTOMER, rules=[AMAZON_FROM_MUNICH]
    )
    assert placed(result) == [("l1", "berlin", 2)]
    assert "rule" not in result.explanation.reason


def test_a_rule_s_locations_are_preferred_in_its_order():
    rule = RoutingRule(locations=("munich", "berlin"), channel="amazon")
    levels = [stock("berlin", "A", 5), stock("munich", "A", 2)]
    whole = routed(
        "lowest_cost", [line("l1", "A", 2)], levels, None, rules=[rule], channel="amazon"
    )
    assert placed(whole) == [("l1", "munich", 2)]
    split = routed(
        "nearest", [line("l1", "A", 4)], levels, BERLIN_CUSTOMER, rules=[rule], channel="amazon"
    )
    assert placed(split) == [("l1", "berlin", 4)], "berlin can ship it whole"
    levels = [stock("berlin", "A", 3), stock("munich", "A", 2)]
    split = routed(
        "nearest", [line("l1", "A", 4)], levels, BERLIN_CUSTOMER, rules=[rule], channel="amazon"
    )
    assert placed(split) == [("l1", "munich", 2), ("l1", "berlin", 2)]


def test_a_country_rule_applies_to_orders_to_those_countries_only():
    rule = RoutingRule(locations=("vienna",), countries=frozenset({"AT", "CH"}))
    levels = everywhere("A", 5, "munich", "vienna")
    to_zurich = routed("nearest", [line("l1", "A", 1)], levels, ZURICH_CUSTOMER, rules=[rule])
    assert placed(to_zurich) == [("l1", "vienna", 1)]
    assert to_zurich.explanation.reason.startswith("rule to AT/CH: vienna; ")
    to_berlin = routed("nearest", [line("l1", "A", 1)], levels, BERLIN_CUSTOMER, rules=[rule])
    assert placed(to_berlin) == [("l1", "munich", 1)]
    unknown = routed("nearest", [line("l1", "A", 1)], levels, None, rules=[rule])
    assert placed(unknown) != [] and "rule" not in unknown.explanation.reason


def test_the_first_rule_that_applies_counts():
    rules = [
        RoutingRule(locations=("vienna",), channel="amazon", countries=frozenset({"AT"})),
        RoutingRule(locations=("hamburg",), channel="amazon"),
    ]
    levels = everywhere("A", 5, "hamburg", "vienna")
    to_vienna = routed(
        "nearest", [line("l1", "A", 1)], levels, VIENNA_CUSTOMER, rules=rules, channel="amazon"
    )
    assert used(to_vienna) == {"vienna"}
    to_berlin = routed(
        "nearest", [line("l1", "A", 1)], levels, BERLIN_CUSTOMER, rules=rules, channel="amazon"
    )
    assert used(to_berlin) == {"hamburg"}


def test_a_rule_s_locations_without_enough_stock_refuse_the_order():
    levels = [stock("berlin", "A", 50), stock("munich", "A", 1)]
    result = routed(
        "single_location_first",
        [line("l1", "A", 2)],
        levels,
        BERLIN_CUSTOMER,
        rules=[AMAZON_FROM_MUNICH],
        channel="amazon",
    )
    assert result.decision == Refused(INSUFFICIENT_STOCK, (Shortfall("l1", "A", 2, 1),))


def test_a_rule_still_respects_where_its_locations_ship_to():
    rule = RoutingRule(locations=("paris", "munich"), channel="amazon")
    levels = everywhere("A", 5, "paris", "munich")
    result = routed(
        "lowest_cost", [line("l1", "A", 1)], levels, ZURICH_CUSTOMER, rules=[rule], channel="amazon"
    )
    assert placed(result) == [("l1", "munich", 1)]


# --- ranking, and the policy ---------------------------------------------------------------


def test_rank_locations_orders_the_candidates_as_the_strategy_would():
    codes = ["berlin", "hamburg", "munich", "vienna", "paris", "closed", "somewhere"]

    def rank(policy: RoutingPolicy, channel: str, destination: Destination | None) -> list[str]:
        return rank_locations(
            codes, LOCATIONS, policy=policy, channel=channel, destination=destination
        )

    nearest = RoutingPolicy(strategy="nearest")
    assert rank(nearest, "web", BERLIN_CUSTOMER) == [
        "berlin",
        "hamburg",
        "munich",
        "vienna",
        "somewhere",
    ], "paris does not ship to DE, closed is closed"
    assert rank(nearest, "web", ZURICH_CUSTOMER)[:2] == ["munich", "vienna"]
    assert "paris" not in rank(nearest, "web", ZURICH_CUSTOMER)
    by_cost = ["hamburg", "vienna", "paris", "berlin", "munich", "somewhere"]
    assert rank(RoutingPolicy(strategy="lowest_cost"), "web", None) == by_cost
    ruled = RoutingPolicy(
        strategy="nearest",
        channels={"ebay": "lowest_cost"},
        rules=(RoutingRule(("vienna", "berlin"), channel="amazon"),),
    )
    assert rank(ruled, "amazon", BERLIN_CUSTOMER) == ["vienna", "berlin"]
    assert rank(ruled, "ebay", PARIS_CUSTOMER) == by_cost


def test_the_policy_picks_the_channel_s_strategy_else_the_global_one():
    policy = RoutingPolicy(strategy="lowest_cost", channels={"amazon": "nearest"})
    assert policy.strategy_for("amazon") == "nearest"
    assert policy.strategy_for("web") == "lowest_cost"
    levels = everywhere("A", 5, "berlin", "hamburg")
    by_channel = {
        channel: route(
            [line("l1", "A", 1)],
            levels,
            {"A"},
            LOCATIONS,
            policy=policy,
            channel=channel,
            destination=BERLIN_CUSTOMER,
        )
        for channel in ("amazon", "web")
    }
    assert by_channel["amazon"].explanation.locations == ("berlin",)
    assert by_channel["web"].explanation.locations == ("hamburg",)


def test_oms_routing_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(
        "OMS_ROUTING",
        '{"strategy": "lowest_cost", "channels": {"amazon": "nearest"},'
        ' "rules": [{"channel": "ebay", "countries": ["at", "CH"], "locations": ["vienna"]}]}',
    )
    policy = InventorySettings().routing.policy()
    assert policy == RoutingPolicy(
        strategy="lowest_cost",
        channels={"amazon": "nearest"},
        rules=(RoutingRule(("vienna",), channel="ebay", countries=frozenset({"AT", "CH"})),),
    )
    assert InventorySettings.model_fields["routing"].default_factory is not None
    monkeypatch.delenv("OMS_ROUTING")
    assert InventorySettings().routing.policy() == RoutingPolicy()


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"strategy": "fastest"}, "strategy"),
        ({"channels": {"amazon": "cheapest"}}, "channels.amazon"),
        ({"rules": [{"channel": "amazon", "locations": []}]}, "rules.0.locations"),
        ({"rules": [{"countries": ["XX"], "locations": ["berlin"]}]}, "rules.0.countries.0"),
        ({"stratgey": "nearest"}, "stratgey"),
    ],
)
def test_a_bad_routing_setting_is_refused_naming_what_is_wrong(raw: object, names: str):
    with pytest.raises(ValidationError) as refused:
        RoutingSettings.model_validate(raw)
    assert names in str(refused.value)


def test_an_unknown_strategy_in_the_environment_stops_the_service_settings(
    monkeypatch: pytest.MonkeyPatch,
):
    monkeypatch.setenv("OMS_ROUTING", '{"strategy": "fastest"}')
    with pytest.raises(ValidationError, match=r"routing\.strategy"):
        InventorySettings()


# --- for every strategy: what is placed is what was asked, within what is there --------------


@settings(max_examples=150, deadline=None)
@given(
    strategy=st.sampled_from(STRATEGIES),
    destination=st.sampled_from(
        [None, BERLIN_CUSTOMER, ZURICH_CUSTOMER, PARIS_CUSTOMER, VIENNA_CUSTOMER]
    ),
    quantities=st.lists(st.integers(1, 6), min_size=1, max_size=4),
    levels=st.lists(
        st.tuples(
            st.sampled_from([*sorted(LOCATIONS), "somewhere"]),
            st.sampled_from(["A", "B", "C"]),
            st.integers(0, 8),
        ),
        max_size=15,
        unique_by=lambda t: (t[0], t[1]),
    ),
)
def test_every_strategy_places_each_line_whole_within_what_candidates_have(
    strategy: Strategy,
    destination: Destination | None,
    quantities: list[int],
    levels: list[tuple[str, str, int]],
) -> None:
    lines = [line(f"l{i}", "ABC"[i % 3], q) for i, q in enumerate(quantities)]
    rows = [stock(loc, sku, on_hand) for loc, sku, on_hand in levels]
    result = routed(strategy, lines, rows, destination)
    allowed = {
        code
        for code in {row.location for row in rows}
        if (record := LOCATIONS.get(code, LocationRecord(code))).active
        and (destination is None or record.ships_to_country(destination.country))
    }
    usable = [row for row in rows if row.location in allowed]
    if isinstance(result.decision, Refused):
        assert allocate(lines, usable, {"A", "B", "C"}) == result.decision
        return
    per_line: dict[str, int] = defaultdict(int)
    per_row: dict[tuple[str, str], int] = defaultdict(int)
    for placement in result.decision.placements:
        assert placement.location in allowed
        per_line[placement.line_id] += placement.quantity
        per_row[(placement.location, placement.sku)] += placement.quantity
    assert per_line == {ln.line_id: ln.quantity for ln in lines}
    available = {(row.location, row.sku): row.available for row in rows}
    assert all(units <= available[key] for key, units in per_row.items())
    assert set(result.explanation.locations) == {loc for loc, _ in per_row}
