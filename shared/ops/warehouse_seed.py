"""A warehouse floor from a seed file (locations with their layout, items, boxes), applied
through fulfilment's API: `oms warehouse seed`, and `make run` on start. A location with a
`routing` object (priority, coordinates, ships_to, cut-off) also gets its record in inventory,
which routes orders by it (name, kind, country and postal code from the location)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

from shared.ops.client import OpsClient

DEFAULT_SEED = Path(__file__).resolve().parents[2] / "deploy" / "local" / "warehouse-seed.json"


def load_seed(path: Path) -> dict[str, Any]:
    seed = json.loads(path.read_text())
    if not isinstance(seed, dict):
        raise ValueError(f"{path}: a seed is a JSON object")
    unknown = set(seed) - {"locations", "items", "boxes"}
    if unknown:
        raise ValueError(f"{path}: unknown keys {sorted(unknown)} (locations, items, boxes)")
    return seed


def apply_seed(client: OpsClient, seed: dict[str, Any]) -> Iterator[str]:
    """PUT everything the seed names (replacing what is there); yields what it did."""
    for code, location in seed.get("locations", {}).items():
        layout = location.get("layout")
        routing = location.get("routing")
        body = {k: v for k, v in location.items() if k not in ("layout", "routing")}
        client.request("fulfilment", "PUT", f"/v1/locations/{quote(code, safe='')}", json=body)
        yield f"location {code} ({location.get('kind')})"
        if routing is not None:
            client.request(
                "inventory",
                "PUT",
                f"/v1/locations/{quote(code, safe='')}",
                json=_routing_record(location, routing),
            )
            yield f"  routing record in inventory (priority {routing.get('priority', 100)})"
        if layout is not None:
            client.request(
                "fulfilment", "PUT", f"/v1/locations/{quote(code, safe='')}/layout", json=layout
            )
            yield f"  layout: {len(layout['zones'])} zone(s), {len(layout['bins'])} bin(s)"
    for sku, item in seed.get("items", {}).items():
        client.request("fulfilment", "PUT", f"/v1/items/{quote(sku, safe='')}", json=item)
    if seed.get("items"):
        yield f"{len(seed['items'])} item(s)"
    for code, box in seed.get("boxes", {}).items():
        client.request("fulfilment", "PUT", f"/v1/boxes/{quote(code, safe='')}", json=box)
    if seed.get("boxes"):
        yield f"{len(seed['boxes'])} box(es)"


def _routing_record(location: dict[str, Any], routing: dict[str, Any]) -> dict[str, Any]:
    address = location.get("address", {})
    return {
        "name": location.get("name"),
        "kind": location.get("kind"),
        "country": address.get("country"),
        "postal_code": address.get("postal_code"),
        **routing,
    }
