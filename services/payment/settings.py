from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from shared.platform.settings import ServiceSettings


class GatewayRoutes(BaseModel):
    """Which gateway authorises a payment (OMS_PAYMENT_GATEWAYS, JSON). The first that matches
    wins: `by_method` (the payment method, e.g. "paypal"), then `by_channel` (the order's
    sales channel, e.g. "web"), then `by_currency` (ISO code), then `default`. Captures,
    voids and refunds always go to the gateway that authorised the payment."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    default: str = "test"
    by_method: dict[str, str] = Field(default_factory=dict)
    by_channel: dict[str, str] = Field(default_factory=dict)
    by_currency: dict[str, str] = Field(default_factory=dict)

    @field_validator("by_currency")
    @classmethod
    def _currencies_upper_case(cls, routes: dict[str, str]) -> dict[str, str]:
        return {currency.strip().upper(): name for currency, name in routes.items()}

    def names(self) -> set[str]:
        """Every gateway some route names."""
        return {
            self.default,
            *self.by_method.values(),
            *self.by_channel.values(),
            *self.by_currency.values(),
        }


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    db_schema: str = "payment"
    http_port: int = 8003

    # Which gateway authorises which payment (see GatewayRoutes); gateways are named in
    # services/payment/gateways/registry.py ("test", "stripe", "paypal").
    payment_gateways: GatewayRoutes = Field(default_factory=GatewayRoutes)
    # The test gateway approves any token: with OMS_ENV=production it refuses to start unless
    # this is set on purpose (a staging environment that looks like production).
    allow_test_gateway_in_production: bool = False
    # A gateway timeout is retried with the same idempotency key, this many attempts in all.
    gateway_retry_attempts: int = 4
    gateway_retry_initial_s: float = 0.1
    gateway_retry_max_s: float = 2.0

    # Stripe (services/payment/gateways/stripe_gateway.py): the secret key (sk_live_... /
    # sk_test_... or a restricted rk_... key), the API base (stripe-mock in tests), the
    # signing secret of the webhook endpoint (whsec_...).
    stripe_api_key: SecretStr | None = None
    stripe_api_base: str = "https://api.stripe.com"
    stripe_webhook_secret: SecretStr | None = None
    # How old a signed webhook may be (Stripe's own default tolerance).
    stripe_webhook_tolerance_s: int = 300
    # One Stripe request's time limit; beyond it the call is a GatewayTimeout (retried).
    stripe_timeout_s: float = 30.0
    # Ask Stripe for multicapture at authorisation (one capture per shipment); where the card
    # or the account does not get it, the first capture is final (Stripe releases the rest).
    stripe_request_multicapture: bool = True

    # PayPal (services/payment/gateways/paypal_gateway.py): a REST app's credentials and the
    # API base (sandbox https://api-m.sandbox.paypal.com, live https://api-m.paypal.com).
    paypal_client_id: str | None = None
    paypal_client_secret: SecretStr | None = None
    paypal_api_base: str = "https://api-m.sandbox.paypal.com"
