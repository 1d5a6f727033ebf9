from pathlib import Path

from pydantic import Field, SecretStr

from shared.platform.settings import ServiceSettings


class FulfilmentSettings(ServiceSettings):
    service_name: str = "fulfilment"
    db_schema: str = "fulfilment"
    http_port: int = 8004

    # The built-in table-rate carrier: its zones, weight bands, services and tracking-number
    # range (a JSON or YAML file; none: the default table in carriers/table_rate.py), and the
    # secret its tracking webhooks are signed with (none: its webhooks are refused).
    table_rate_config_file: Path | None = None
    table_rate_webhook_secret: SecretStr | None = None
    # EasyPost (the aggregator): enabled when an API key is set.
    easypost_api_key: SecretStr | None = None
    easypost_webhook_secret: SecretStr | None = None
    easypost_api_base: str | None = None
    # The pack station: a measured parcel weight further than this from the expected one
    # (the larger of the two tolerances) holds the parcel for a check.
    pack_weight_tolerance_g: int = Field(default=50, ge=0)
    pack_weight_tolerance_pct: float = Field(default=5.0, ge=0)

    # 3PL and dropship partners (services/fulfilment/partners): each partner location's HMAC
    # secret, a JSON map location → secret (OMS_PARTNER_SECRETS), never in the database; the
    # sender's bounded retries with exponential backoff; the sweep of partner deadlines; how old
    # a signed confirmation may be (older, or further ahead: 401 stale_signature).
    partner_secrets: dict[str, SecretStr] = Field(default_factory=dict)
    partner_max_attempts: int = Field(default=8, ge=1)
    partner_retry_initial_s: float = Field(default=30.0, gt=0)
    partner_retry_max_s: float = Field(default=3600.0, gt=0)
    partner_http_timeout_s: float = Field(default=10.0, gt=0)
    partner_poll_interval_s: float = Field(default=5.0, gt=0)
    partner_deadline_poll_interval_s: float = Field(default=60.0, gt=0)
    partner_signature_tolerance_s: float = Field(default=300.0, gt=0)
