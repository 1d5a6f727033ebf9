"""The console's settings: where the services are, who signs users in, its session."""

from __future__ import annotations

from pydantic import Field, SecretStr, field_validator

from shared.platform.settings import ServiceSettings, ServiceUrls


class ConsoleSettings(ServiceSettings, ServiceUrls):
    """The services' public APIs come from ServiceUrls: the console calls them with the signed-in
    user's token."""

    service_name: str = "console"
    db_schema: str = "console"
    http_port: int = 8007

    # Jaeger's query API (an order's trace as a waterfall); None: no trace on the order page.
    jaeger_query_url: str | None = None
    api_timeout_s: float = Field(default=10.0, gt=0)

    # Sign-in: OIDC authorization code with PKCE against this provider (its discovery document
    # at <issuer>/.well-known/openid-configuration); the access token it issues must be one the
    # services accept (their JWKS). Without an issuer, sign-in takes a pasted bearer token (the
    # ones `oms token issue` makes) — refused in production.
    oidc_issuer: str | None = None
    oidc_client_id: str | None = None
    oidc_client_secret: SecretStr | None = None
    oidc_scopes: str = "openid profile"
    # Where the provider sends the browser back (this console's /auth/callback as the provider
    # knows it); None: derived from the request.
    oidc_redirect_url: str | None = None
    # Signs the session cookie (itsdangerous). Required in production; locally a fixed
    # development value is used when unset.
    session_secret: SecretStr | None = None
    session_max_age_s: int = Field(default=8 * 3600, gt=0)

    # --- KPIs (services/console/reporting/) ------------------------------------------------
    # The shipping promise on-time shipping is measured against: a shipment is on time when it
    # left within this many hours of its order's confirmation; a channel may promise otherwise
    # (OMS_SHIP_PROMISE_HOURS_BY_CHANNEL='{"amazon": 24}').
    ship_promise_hours: float = Field(default=48.0, gt=0)
    ship_promise_hours_by_channel: dict[str, float] = Field(default_factory=dict)

    @field_validator("ship_promise_hours_by_channel")
    @classmethod
    def _positive_promises(cls, value: dict[str, float]) -> dict[str, float]:
        bad = sorted(channel for channel, hours in value.items() if not hours > 0)
        if bad:
            raise ValueError(f"a channel's ship promise must be above 0 hours: {', '.join(bad)}")
        return value
