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
