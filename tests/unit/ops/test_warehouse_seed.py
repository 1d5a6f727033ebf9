"""The local seed: fulfilment's floor, and inventory's routing records of the same locations."""

from __future__ import annotations

from typing import Any

from services.fulfilment.warehouse.routes import LocationIn as FloorLocation
from services.inventory.routing.routes import LocationIn as RoutingLocation
from shared.ops.warehouse_seed import DEFAULT_SEED, apply_seed, load_seed


class RecordingClient:
    def __init__(self) -> None:
        self.requests: list[tuple[str, str, str, Any]] = []

    def request(self, service: str, method: str, path: str, *, json: Any = None) -> dict[str, Any]:
        self.requests.append((service, method, path, json))
        return {}


def test_the_seed_puts_each_location_in_fulfilment_and_its_routing_record_in_inventory():
    client = RecordingClient()
    list(apply_seed(client, load_seed(DEFAULT_SEED)))  # type: ignore[arg-type]
    locations = {
        (service, path): body
        for service, method, path, body in client.requests
        if method == "PUT" and path.count("/") == 3 and path.startswith("/v1/locations/")
    }
    assert set(locations) == {
        ("fulfilment", "/v1/locations/berlin"),
        ("fulfilment", "/v1/locations/hamburg"),
        ("inventory", "/v1/locations/berlin"),
        ("inventory", "/v1/locations/hamburg"),
    }
    for code in ("berlin", "hamburg"):
        FloorLocation.model_validate(locations[("fulfilment", f"/v1/locations/{code}")])
        record = RoutingLocation.model_validate(locations[("inventory", f"/v1/locations/{code}")])
        assert record.country == "DE" and record.kind == "warehouse"
    berlin = locations[("inventory", "/v1/locations/berlin")]
    assert (berlin["postal_code"], berlin["priority"]) == ("10115", 50)
