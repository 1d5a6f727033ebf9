"""The warehouse floor as the bench simulator works it: set the floor up, then per location
release pick lists (batch, 8 totes a cart), claim and pick each stop by scanning, pack each
fulfilment (the box chooser plans the parcels), scan and close each parcel, buy its label, ship
it, and deliver the fulfilment. Every step goes through fulfilment's HTTP API, as the staff's
devices would; a step that answered before a retry (409) is read back, not redone."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import orjson

# (method, path, body) -> (status, body)
Call = Callable[[str, str, bytes | None], Awaitable[tuple[int, bytes]]]

BOXES = {
    "S": {
        "inner": {"length_mm": 250, "width_mm": 200, "height_mm": 150},
        "max_weight_g": 5000,
        "tare_g": 150,
    },
    "M": {
        "inner": {"length_mm": 400, "width_mm": 300, "height_mm": 300},
        "max_weight_g": 15000,
        "tare_g": 400,
    },
    "L": {
        "inner": {"length_mm": 600, "width_mm": 400, "height_mm": 400},
        "max_weight_g": 30000,
        "tare_g": 800,
    },
}
ADDRESS = {
    "name": "Bench warehouse",
    "line1": "Lagerstr. 1",
    "city": "Berlin",
    "postal_code": "10115",
    "country": "DE",
}
BINS_PER_AISLE = 20


def barcode(sku: str) -> str:
    return f"BC-{sku}"


def _json(value: object) -> bytes:
    return orjson.dumps(value)


class FloorError(RuntimeError):
    pass


async def _expect(call: Call, method: str, path: str, body: object = None) -> Any:
    status, data = await call(method, path, None if body is None else _json(body))
    if status != 200 and status != 201:
        raise FloorError(f"{method} {path}: {status} {data[:200]!r}")
    return orjson.loads(data)


async def set_up(call: Call, locations: Sequence[str], skus: Sequence[str]) -> None:
    """Each location a warehouse of four zones, one bin per SKU in aisles of 20; every SKU an
    item with a barcode, size and weight; three boxes."""
    zones = [{"code": z, "name": f"Zone {z}"} for z in "ABCD"]
    bins = [
        {
            "code": f"{'ABCD'[i * 4 // len(skus)]}-{i:04d}",
            "zone": "ABCD"[i * 4 // len(skus)],
            "sequence": i,
            "x_m": 3.0 * (i // BINS_PER_AISLE),
            "y_m": 1.0
            * (
                i % BINS_PER_AISLE
                if (i // BINS_PER_AISLE) % 2 == 0
                else BINS_PER_AISLE - 1 - i % BINS_PER_AISLE
            ),
            "skus": [sku],
        }
        for i, sku in enumerate(skus)
    ]
    for location in locations:
        await _expect(
            call,
            "PUT",
            f"/v1/locations/{location}",
            {"kind": "warehouse", "name": location, "address": ADDRESS},
        )
        await _expect(
            call, "PUT", f"/v1/locations/{location}/layout", {"zones": zones, "bins": bins}
        )
    item = {"dimensions": {"length_mm": 120, "width_mm": 90, "height_mm": 80}, "weight_g": 300}
    await asyncio.gather(
        *(
            _expect(call, "PUT", f"/v1/items/{sku}", {**item, "barcode": barcode(sku)})
            for sku in skus
        )
    )
    for code, box in BOXES.items():
        await _expect(call, "PUT", f"/v1/boxes/{code}", box)


class Floor:
    """Works one location's floor until stopped; counts what it did in `stats`.

    Every step is read back before it is done, so the work resumes where it stood after a lost
    answer or a service restart (the chaos run): a list whose release answer was lost is found
    among the open lists, a pick already counted is not picked again, a parcel already packed,
    labelled or shipped goes on from there."""

    def __init__(self, call: Call, location: str, stats: dict[str, int], concurrency: int) -> None:
        self._call = call
        self._location = location
        self._stats = stats
        self._lists = asyncio.Semaphore(concurrency)
        self._working: set[str] = set()

    async def run(self, stop: asyncio.Event) -> None:
        running: set[asyncio.Task[None]] = set()
        while not stop.is_set():
            released = await _expect(
                self._call,
                "POST",
                f"/v1/locations/{self._location}/pick-lists",
                {"strategy": "batch", "orders_per_batch": 8, "max_fulfilments": 64},
            )
            found = [p["pick_list_id"] for p in released["pick_lists"]]
            self._stats["pick_lists"] += len(found)
            if not found:
                found = await self._open_lists()
            for list_id in found:
                if list_id in self._working:
                    continue
                self._working.add(list_id)
                await self._lists.acquire()
                task = asyncio.create_task(self._work(list_id, stop))
                running.add(task)
                task.add_done_callback(running.discard)
            if not found:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), 0.2)
        for task in running:
            task.cancel()

    async def _open_lists(self) -> list[str]:
        """Lists not yet picked (one whose release answer was lost among them)."""
        status, data = await self._call(
            "GET",
            f"/v1/pick-lists?location={self._location}&status=released&status=claimed"
            "&status=picking",
            None,
        )
        if status != 200:
            return []
        return [p["pick_list_id"] for p in orjson.loads(data)["pick_lists"]]

    async def _work(self, list_id: str, stop: asyncio.Event) -> None:
        try:
            for attempt in range(1, 31):
                try:
                    pick_list = await self._pick(list_id)
                    fulfilments = sorted(
                        {put["fulfilment_id"] for s in pick_list["stops"] for put in s["puts"]}
                    )
                    await asyncio.gather(*(self._pack_and_ship(f) for f in fulfilments))
                    return
                except (FloorError, RuntimeError) as exc:
                    self._stats["errors"] += 1
                    print(f"floor: {list_id} attempt {attempt}: {exc}", flush=True)
                    if stop.is_set():
                        return
                    await asyncio.sleep(1.0)
        finally:
            self._working.discard(list_id)
            self._lists.release()

    async def _pick(self, list_id: str) -> dict[str, Any]:
        pick_list: dict[str, Any] = await _expect(self._call, "GET", f"/v1/pick-lists/{list_id}")
        if pick_list["status"] in ("picked", "short"):
            return pick_list
        await _expect(self._call, "POST", f"/v1/pick-lists/{list_id}/claim")
        for stop in pick_list["stops"]:
            remaining = stop["quantity"] - stop["picked"] - stop["short"]
            if remaining <= 0:
                continue
            await _expect(
                self._call,
                "POST",
                f"/v1/pick-lists/{list_id}/picks",
                {
                    "stop": stop["stop"],
                    "barcode": barcode(stop["sku"]),
                    "quantity": remaining,
                    "scan_id": f"{list_id}/{stop['stop']}/{stop['picked']}",
                },
            )
            self._stats["picks"] += 1
        return pick_list

    async def _pack_and_ship(self, fulfilment_id: str) -> None:
        path = f"/v1/fulfilments/{fulfilment_id}/parcels"
        parcels = (await _expect(self._call, "GET", path))["parcels"]
        if not parcels:
            status, data = await self._call("POST", path, None)
            if status not in (200, 409):  # 409: packed before a retry
                raise FloorError(f"pack {fulfilment_id}: {status} {data[:200]!r}")
            parcels = (await _expect(self._call, "GET", path))["parcels"]
        for parcel in parcels:
            await self._parcel(parcel)
        status, data = await self._call("POST", f"/v1/fulfilments/{fulfilment_id}/deliver", None)
        if status != 200:
            raise FloorError(f"deliver {fulfilment_id}: {status} {data[:200]!r}")
        self._stats["shipped"] += 1
        self._stats["delivered"] += 1

    async def _parcel(self, parcel: dict[str, Any]) -> None:
        parcel_id = parcel["parcel_id"]
        if parcel["status"] == "open":
            for line in parcel["lines"]:
                todo = line["quantity"] - line["scanned"]
                if todo:
                    status, data = await self._call(
                        "POST",
                        f"/v1/parcels/{parcel_id}/scan",
                        _json({"barcode": barcode(line["sku"]), "quantity": todo}),
                    )
                    if status not in (200, 409):  # 409: scanned before a retry
                        raise FloorError(f"scan {parcel_id}: {status} {data[:200]!r}")
            await _expect(self._call, "POST", f"/v1/parcels/{parcel_id}/close")
        if parcel["status"] in ("open", "packed"):
            await _expect(self._call, "POST", f"/v1/parcels/{parcel_id}/label")
        if parcel["status"] not in ("shipped", "delivered"):
            await _expect(self._call, "POST", f"/v1/parcels/{parcel_id}/ship")
            self._stats["parcels"] += 1
