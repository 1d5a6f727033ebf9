"""The gateway interface and the built-in test gateway, where they were first imported from;
they live in `services.payment.gateways` now."""

from services.payment.gateways.base import (
    GatewayResult,
    GatewayTimeout,
    PaymentGateway,
    RetryingGateway,
    RetryPolicy,
    retry_policy,
)
from services.payment.gateways.builtin import (
    TOKEN_DECLINED,
    TOKEN_GATEWAY_DOWN,
    TOKEN_GATEWAY_TIMEOUT,
    TOKEN_INSUFFICIENT_FUNDS,
    TOKEN_REFUND_FAILS,
    TestGateway,
)

__all__ = [
    "TOKEN_DECLINED",
    "TOKEN_GATEWAY_DOWN",
    "TOKEN_GATEWAY_TIMEOUT",
    "TOKEN_INSUFFICIENT_FUNDS",
    "TOKEN_REFUND_FAILS",
    "GatewayResult",
    "GatewayTimeout",
    "PaymentGateway",
    "RetryPolicy",
    "RetryingGateway",
    "TestGateway",
    "retry_policy",
]
