"""Kits as plain Python: what a kit line of an order reserves, and what a kit's stock is.

A kit is a SKU made of components (other SKUs, none a kit itself), `per_kit` units of each. It
has no stock of its own: an order line of a kit becomes one line per component (`expand`), each
with a derived line id (`{line_id}/{component}`) and allocated like any other line, so the
order's allocation stays all or nothing over every component of every kit unit. Its stock is
derived from its components' at each location: as many kits as the scarcest component makes.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from services.inventory.stock.domain import (
    Availability,
    LineRequest,
    Placement,
    Refused,
    Reserved,
    Shortfall,
    StockLevel,
    totals,
)

# Why a kit definition is refused.
UNKNOWN_COMPONENT = "unknown_component"
DUPLICATE_COMPONENT = "duplicate_component"
KIT_CONTAINS_ITSELF = "kit_contains_itself"
COMPONENT_IS_KIT = "component_is_kit"
KIT_IS_COMPONENT = "kit_is_component"


@dataclass(frozen=True)
class Component:
    sku: str
    per_kit: int


@dataclass(frozen=True)
class Kit:
    sku: str
    components: tuple[Component, ...]


@dataclass(frozen=True)
class KitPart:
    """What a component line of an order stands for: `per_kit` units of each of the
    `kit_line_id` line's kits of `kit_sku`."""

    kit_sku: str
    kit_line_id: str
    per_kit: int


def component_line_id(line_id: str, component: str) -> str:
    """The line id a kit line's component is reserved under (SKUs and the order's line ids hold
    no `/`, so it names one line of the order)."""
    return f"{line_id}/{component}"


@dataclass(frozen=True)
class Expansion:
    """An order's lines with every kit line replaced, in place, by its component lines, and
    what each component line stands for."""

    lines: tuple[LineRequest, ...]
    parts: Mapping[str, KitPart]

    @property
    def component_skus(self) -> set[str]:
        """The SKUs the order takes as components of its kits."""
        return {line.sku for line in self.lines if line.line_id in self.parts}

    def answer(self, decision: Reserved | Refused) -> Reserved | Refused:
        """The allocation of the expanded lines told in the order's terms: placements of
        component lines say which kit line they belong to; a component line short of stock is
        the kit line short (counted in kits), naming the component."""
        if isinstance(decision, Reserved):
            return Reserved(tuple(self._placement(p) for p in decision.placements))
        return Refused(decision.reason, tuple(self._shortfall(s) for s in decision.shortfalls))

    def _placement(self, placement: Placement) -> Placement:
        part = self.parts.get(placement.line_id)
        if part is None:
            return placement
        return replace(
            placement, kit_sku=part.kit_sku, kit_line_id=part.kit_line_id, per_kit=part.per_kit
        )

    def _shortfall(self, shortfall: Shortfall) -> Shortfall:
        part = self.parts.get(shortfall.line_id)
        if part is None:
            return shortfall
        return Shortfall(
            line_id=part.kit_line_id,
            sku=part.kit_sku,
            requested=shortfall.requested // part.per_kit,
            available=shortfall.available // part.per_kit,
            component=shortfall.sku,
        )


def expand(lines: Sequence[LineRequest], kits: Mapping[str, Kit]) -> Expansion:
    """Replace each line of a kit by one line per component (`quantity * per_kit` units), in the
    kit's component order; other lines are kept as they are."""
    expanded: list[LineRequest] = []
    parts: dict[str, KitPart] = {}
    for line in lines:
        kit = kits.get(line.sku)
        if kit is None:
            expanded.append(line)
            continue
        for component in kit.components:
            line_id = component_line_id(line.line_id, component.sku)
            expanded.append(LineRequest(line_id, component.sku, line.quantity * component.per_kit))
            parts[line_id] = KitPart(kit.sku, line.line_id, component.per_kit)
    return Expansion(tuple(expanded), parts)


# --- definitions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class DefinitionProblem:
    """Why a kit definition is refused; `component` names the offending one, if one does."""

    code: str
    message: str
    component: str | None = None
    index: int | None = None


def check_definition(
    kit: Kit,
    *,
    known_skus: Iterable[str],
    kits: Iterable[str],
    containing_kits: Iterable[str],
) -> DefinitionProblem | None:
    """A kit's components are defined SKUs, each once, neither the kit itself nor a kit (no
    nesting); and the kit is no component of another kit. `known_skus`: which of its
    components are defined; `kits`: which of them are kits; `containing_kits`: the kits the
    kit's SKU is a component of."""
    known, nested = set(known_skus), set(kits)
    seen: set[str] = set()
    for index, component in enumerate(kit.components):
        sku = component.sku
        if sku == kit.sku:
            return DefinitionProblem(
                KIT_CONTAINS_ITSELF, f"{kit.sku} cannot be its own component", sku, index
            )
        if sku in seen:
            return DefinitionProblem(
                DUPLICATE_COMPONENT, f"{sku} is listed twice: give its quantity once", sku, index
            )
        seen.add(sku)
        if sku not in known:
            return DefinitionProblem(
                UNKNOWN_COMPONENT,
                f"{sku} is not defined: define it first (PUT /v1/skus/{sku})",
                sku,
                index,
            )
        if sku in nested:
            return DefinitionProblem(
                COMPONENT_IS_KIT, f"{sku} is a kit: kits do not nest", sku, index
            )
    containers = sorted(set(containing_kits))
    if containers:
        return DefinitionProblem(
            KIT_IS_COMPONENT,
            f"{kit.sku} is a component of {', '.join(containers)}: kits do not nest",
        )
    return None


# --- availability -----------------------------------------------------------------------------


def kit_levels(kit: Kit, levels: Iterable[StockLevel]) -> list[StockLevel]:
    """The kit's stock at each location any of its components is stocked at: as many kits as
    the scarcest component makes there (`on_hand` from what is on hand, what is available from
    what is available; `reserved` is the difference: the kits' worth held by reservations). A
    component without stock at a location makes no kit there."""
    per_kit = {component.sku: component.per_kit for component in kit.components}
    rows = {(level.location, level.sku): level for level in levels if level.sku in per_kit}
    derived = []
    for location in sorted({location for location, _ in rows}):
        here = [rows.get((location, sku)) for sku in per_kit]
        stocked = [level for level in here if level is not None]
        if len(stocked) < len(per_kit):
            on_hand = available = 0
        else:
            on_hand = min(level.on_hand // per_kit[level.sku] for level in stocked)
            available = min(max(level.available, 0) // per_kit[level.sku] for level in stocked)
        derived.append(StockLevel(kit.sku, location, on_hand, on_hand - available))
    return derived


def kit_total(kit: Kit, levels: Iterable[StockLevel]) -> Availability:
    """The kit's stock summed over its locations (nothing when no component is stocked)."""
    total = totals(kit_levels(kit, levels)).get(kit.sku)
    return total if total is not None else Availability(kit.sku, 0, 0)
