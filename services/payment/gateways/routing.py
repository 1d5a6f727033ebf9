"""Which gateway authorises a payment (no I/O): see `GatewayRoutes` in settings.py."""

from __future__ import annotations

from services.payment.settings import GatewayRoutes


def choose_gateway(
    routes: GatewayRoutes, *, method: str | None, channel: str | None, currency: str
) -> str:
    """The gateway's name: by payment method, else by sales channel, else by currency, else
    the default. Method comes first because a method only one gateway takes (PayPal) cannot go
    anywhere else; channel before currency because a channel's contract with its provider
    covers all its currencies."""
    if method and method in routes.by_method:
        return routes.by_method[method]
    if channel and channel in routes.by_channel:
        return routes.by_channel[channel]
    return routes.by_currency.get(currency.strip().upper(), routes.default)
