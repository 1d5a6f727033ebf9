"""`OMS_ROUTING`: the routing policy as a setting, checked when the service starts."""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
)

from services.inventory.routing.domain import (
    DEFAULT_STRATEGY,
    RoutingPolicy,
    RoutingRule,
    Strategy,
)
from services.inventory.routing.places import is_country


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _country(value: str) -> str:
    if not is_country(value):
        raise ValueError(f"{value!r} is not an ISO 3166-1 alpha-2 country code")
    return value


CountryCode = Annotated[str, BeforeValidator(_upper), AfterValidator(_country)]
LocationCode = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$")
]
Channel = Annotated[str, StringConstraints(pattern=re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$"))]


class RuleSettings(BaseModel):
    """Orders of `channel` (all when absent) to `countries` (all when absent) ship only from
    `locations`, in that order."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    channel: Channel | None = None
    countries: tuple[CountryCode, ...] = ()
    locations: tuple[LocationCode, ...] = Field(min_length=1)


class RoutingSettings(BaseModel):
    """e.g. `{"strategy": "single_location_first", "channels": {"amazon": "nearest"},
    "rules": [{"channel": "ebay", "countries": ["AT", "CH"], "locations": ["munich"]}]}`"""

    model_config = ConfigDict(extra="forbid", frozen=True)

    strategy: Strategy = DEFAULT_STRATEGY
    channels: dict[Channel, Strategy] = Field(default_factory=dict)
    rules: tuple[RuleSettings, ...] = ()

    def policy(self) -> RoutingPolicy:
        return RoutingPolicy(
            strategy=self.strategy,
            channels=dict(self.channels),
            rules=tuple(
                RoutingRule(
                    locations=rule.locations,
                    channel=rule.channel,
                    countries=frozenset(rule.countries),
                )
                for rule in self.rules
            ),
        )
