"""The test gateway approves any card token: it never runs in production by accident."""

from __future__ import annotations

import pytest

from services.payment.app import UnsafeConfiguration, refuse_unsafe_gateway
from services.payment.settings import PaymentSettings


def test_the_test_gateway_refuses_production_unless_allowed_on_purpose():
    with pytest.raises(UnsafeConfiguration, match="OMS_ALLOW_TEST_GATEWAY_IN_PRODUCTION"):
        refuse_unsafe_gateway(PaymentSettings(env="production"))
    refuse_unsafe_gateway(PaymentSettings(env="production", allow_test_gateway_in_production=True))
    refuse_unsafe_gateway(PaymentSettings(env="development"))
