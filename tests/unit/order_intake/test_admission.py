"""Admission control's arithmetic (services/order_intake/operators/admission.py)."""

from __future__ import annotations

import pytest

from services.order_intake.operators.admission import Admission
from shared.platform.errors import ApiError


def test_counts_accepted_orders_between_two_counts_and_refuses_at_the_limit():
    admission = Admission(limit=3, retry_after_s=2.5)
    admission.counted_now(1)
    admission.check()
    admission.accepted()
    admission.check()
    admission.accepted()
    assert admission.in_flight == 3
    with pytest.raises(ApiError) as refused:
        admission.check()
    assert refused.value.status == 429
    assert refused.value.code == "intake_overloaded"
    assert refused.value.headers == {"Retry-After": "3"}
    admission.counted_now(0)  # the saga caught up
    assert admission.in_flight == 0
    admission.check()


def test_zero_means_no_limit():
    admission = Admission(limit=0)
    admission.counted_now(10**6)
    admission.check()
