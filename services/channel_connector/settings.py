"""The connector's settings: the channel accounts it serves and how it talks to them."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from shared.platform.settings import ServiceSettings


class AccountSettings(BaseModel):
    """One channel account (`OMS_CONNECTOR_ACCOUNTS`, a JSON list; in Kubernetes from a Secret).

    `name` is the account's own name (`shopify-eu`); `channel` which API it speaks; `api_base`
    where that API is (the real one by default, a local double in tests); `credentials` the
    API's keys and tokens by the names the channel's client documents; `options` the channel's
    other settings (a Shopify location id, an Amazon marketplace id...)."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_-]*$")
    channel: str = Field(min_length=1, max_length=32)
    api_base: str | None = None
    credentials: dict[str, SecretStr] = Field(default_factory=dict)
    options: dict[str, str] = Field(default_factory=dict)
    # What the connector does for the account (all of what the channel's client can, by default).
    poll_orders: bool = True
    push_stock: bool = True
    push_shipments: bool = True
    push_cancellations: bool = True
    push_refunds: bool = True
    poll_interval_s: float = Field(default=60.0, gt=0)
    # Coalescing: at most one stock push per SKU per this interval; the last value wins.
    stock_push_interval_s: float = Field(default=5.0, ge=0)
    # An account polled for the first time asks for orders changed this far back.
    first_poll_lookback_s: float = Field(default=24 * 3600.0, ge=0)
    # Requests per second the API allows this account (None: the channel client's default).
    requests_per_second: float | None = Field(default=None, gt=0)

    def credential(self, name: str) -> str | None:
        secret = self.credentials.get(name)
        return secret.get_secret_value() if secret is not None else None

    def option_on(self, name: str) -> bool:
        """An on/off option: on when it says 1, true, yes or on (any case); off by default."""
        return (self.options.get(name) or "").strip().lower() in {"1", "true", "yes", "on"}


class ChannelConnectorSettings(ServiceSettings):
    service_name: str = "channel_connector"
    db_schema: str = "channel_connector"
    http_port: int = 8006

    connector_accounts: list[AccountSettings] = Field(default_factory=list)
    # Pushes (shipments, cancellations, refunds, order fetches): bounded retries with
    # exponential backoff, then `dead` with an operator alert.
    connector_max_attempts: int = Field(default=8, ge=1)
    connector_retry_initial_s: float = Field(default=5.0, gt=0)
    connector_retry_max_s: float = Field(default=900.0, gt=0)
    connector_http_timeout_s: float = Field(default=15.0, gt=0)
    # How often the senders look for due work.
    connector_send_interval_s: float = Field(default=0.5, gt=0)
    # A 429's Retry-After up to this long is waited out in place; longer ones reschedule.
    connector_max_inline_wait_s: float = Field(default=5.0, ge=0)
    # Polls ask from the cursor less this overlap (orders seen again are not handed on twice).
    connector_poll_overlap_s: float = Field(default=120.0, ge=0)
