"""A warehouse floor from a seed file (locations with their layout, items, boxes), applied
through fulfilment's API: `oms warehouse seed`, and `make run` on start."""

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
        body = {k: v for k, v in location.items() if k != "layout"}
        client.request("fulfilment", "PUT", f"/v1/locations/{quote(code, safe='')}", json=body)
        yield f"location {code} ({location.get('kind')})"
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
