"""The operations pages' forms: what the services' APIs get, and the field a refusal names."""

from __future__ import annotations

import pytest

from services.console.operations import forms
from services.console.operations.forms import FormError, ReturnLine
from services.console.web.warehouse import waves


def refused(call, *args) -> str:  # type: ignore[no-untyped-def]
    with pytest.raises(FormError) as caught:
        call(*args)
    return caught.value.field


def test_an_adjustment_is_inventorys_body() -> None:
    body = forms.adjustment(
        "SKU-1", {"location": " berlin ", "delta": "-3", "reason": "damage", "reference": ""}
    )
    assert body == {"sku": "SKU-1", "location": "berlin", "delta": -3, "reason": "damage"}
    with_reference = forms.adjustment(
        "SKU-1", {"location": "b", "delta": "+5", "reason": "receipt", "reference": "PO-7"}
    )
    assert with_reference["delta"] == 5 and with_reference["reference"] == "PO-7"


@pytest.mark.parametrize(
    ("form", "field"),
    [
        ({"delta": "1", "reason": "receipt"}, "location"),
        ({"location": "b", "delta": "abc", "reason": "receipt"}, "delta"),
        ({"location": "b", "delta": "1.5", "reason": "receipt"}, "delta"),
        ({"location": "b", "delta": "0", "reason": "receipt"}, "delta"),
        ({"location": "b", "delta": "2000000000", "reason": "receipt"}, "delta"),
        ({"location": "b", "delta": "1", "reason": "theft"}, "reason"),
        ({"location": "b" * 65, "delta": "1", "reason": "receipt"}, "location"),
        ({"location": "b", "delta": "1", "reason": "count", "reference": "r" * 201}, "reference"),
    ],
)
def test_a_bad_adjustment_names_its_field(form: dict[str, str], field: str) -> None:
    assert refused(forms.adjustment, "SKU-1", form) == field


def test_a_sku_is_checked_like_inventory_does() -> None:
    assert forms.sku(" A-1.b:c_2 ") == "A-1.b:c_2"
    assert refused(forms.sku, "a b") == "sku"
    assert refused(forms.sku, "-lead") == "sku"
    assert (
        refused(forms.adjustment, "../x", {"location": "b", "delta": "1", "reason": "count"})
        == "sku"
    )


def test_a_release_has_defaults_and_bounds() -> None:
    assert forms.release({}) == {"strategy": "batch", "orders_per_batch": 8, "max_fulfilments": 200}
    assert forms.release(
        {"strategy": "wave", "orders_per_batch": "4", "max_fulfilments": "10"}
    ) == {
        "strategy": "wave",
        "orders_per_batch": 4,
        "max_fulfilments": 10,
    }
    assert refused(forms.release, {"strategy": "random"}) == "strategy"
    assert refused(forms.release, {"orders_per_batch": "0"}) == "orders_per_batch"
    assert refused(forms.release, {"max_fulfilments": "5001"}) == "max_fulfilments"


def test_a_receipt_counts_each_line_by_condition() -> None:
    lines = [ReturnLine("A", 2), ReturnLine("B", 1)]
    body = forms.receipt({"resellable-0": "1", "damaged-0": "1", "resellable-1": ""}, lines)
    assert body == {
        "lines": [
            {"sku": "A", "quantity": 1, "condition": "resellable"},
            {"sku": "A", "quantity": 1, "condition": "damaged"},
        ]
    }
    assert forms.receipt({"damaged-1": "1", "location": "berlin"}, lines)["location"] == "berlin"
    assert refused(forms.receipt, {"resellable-0": "2", "damaged-0": "1"}, lines) == "damaged-0"
    assert refused(forms.receipt, {"resellable-1": "2"}, lines) == "resellable-1"
    assert refused(forms.receipt, {}, lines) == "resellable-0"
    assert refused(forms.receipt, {"damaged-0": "-1"}, lines) == "damaged-0"


def test_filters_and_offsets() -> None:
    assert forms.return_status(None) == "REQUESTED"
    assert forms.return_status("APPROVED") == "APPROVED"
    assert refused(forms.return_status, "approved; drop") == "status"
    assert forms.offset_param("before", "") is None
    assert forms.offset_param("before", "42") == 42
    assert refused(forms.offset_param, "before", "-1") == "before"
    assert forms.location_param("  ") is None
    assert forms.refusal({"reason": ""}) == {"reason": "refused by an operator"}


def test_pick_lists_are_grouped_by_wave_keeping_their_order() -> None:
    lists = [
        {"pick_list_id": "a", "wave": None},
        {"pick_list_id": "b", "wave": 2},
        {"pick_list_id": "c", "wave": 1},
        {"pick_list_id": "d", "wave": 2},
    ]
    assert [(w, [p["pick_list_id"] for p in ps]) for w, ps in waves(lists)] == [
        (1, ["c"]),
        (2, ["b", "d"]),
        (None, ["a"]),
    ]
