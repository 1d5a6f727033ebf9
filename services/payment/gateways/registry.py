"""The gateways by name, built when first needed, each behind `RetryingGateway`.

A payment is authorised by the gateway its route names (routing.py) and remembers it
(`payments.gateway`): its captures, voids and refunds go to that same gateway, even after the
routes changed. Adding a gateway is one line in `FACTORIES`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from services.payment.gateways.base import PaymentGateway, RetryingGateway, retry_policy
from services.payment.gateways.builtin import TestGateway
from services.payment.gateways.paypal_gateway import PayPalGateway
from services.payment.gateways.routing import choose_gateway
from services.payment.gateways.stripe_gateway import StripeGateway
from services.payment.settings import PaymentSettings

SettingsSource = Callable[[], PaymentSettings]
GatewayFactory = Callable[[SettingsSource], PaymentGateway]

TEST_GATEWAY = "test"

FACTORIES: Mapping[str, GatewayFactory] = {
    TEST_GATEWAY: TestGateway,
    "stripe": lambda settings: StripeGateway.from_settings(settings()),
    "paypal": lambda settings: PayPalGateway.from_settings(settings()),
}


class UnknownGateway(ValueError):
    def __init__(self, name: str) -> None:
        super().__init__(
            f"unknown payment gateway {name!r} (OMS_PAYMENT_GATEWAYS); known: {sorted(FACTORIES)}"
        )
        self.name = name


def check_routes(settings: PaymentSettings) -> None:
    """Every gateway a route names exists (at start, not at the first payment)."""
    for name in sorted(settings.payment_gateways.names()):
        if name not in FACTORIES:
            raise UnknownGateway(name)


class GatewayRegistry:
    """The service's gateways. `override` (tests) answers for every name."""

    def __init__(self, settings: SettingsSource, *, override: PaymentGateway | None = None) -> None:
        self._settings = settings
        self._override = override
        self._built: dict[str, PaymentGateway] = {}

    def route(self, *, method: str | None, channel: str | None, currency: str) -> str:
        """The name of the gateway that authorises such a payment."""
        return choose_gateway(
            self._settings().payment_gateways, method=method, channel=channel, currency=currency
        )

    def gateway(self, name: str) -> PaymentGateway:
        """The gateway of that name, with retries; built at first use."""
        if name not in self._built:
            inner = self._override
            if inner is None:
                factory = FACTORIES.get(name)
                if factory is None:
                    raise UnknownGateway(name)
                inner = factory(self._settings)
            self._built[name] = RetryingGateway(inner, retry_policy(self._settings()))
        return self._built[name]

    async def aclose(self) -> None:
        closed: set[int] = set()
        for gateway in self._built.values():
            inner = gateway.inner if isinstance(gateway, RetryingGateway) else gateway
            if id(inner) not in closed:
                closed.add(id(inner))
                await inner.aclose()
        self._built.clear()
