from pydantic import Field, field_validator

from services.inventory.routing.config import RoutingSettings
from shared.platform.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    db_schema: str = "inventory"
    http_port: int = 8002

    # Units of each SKU held back from each channel's availability (OMS_CHANNEL_SAFETY_STOCK, a
    # JSON object); a channel listed here gets ChannelAvailabilityChanged messages.
    channel_safety_stock: dict[str, int] = Field(
        default_factory=lambda: {"shopify": 0, "woocommerce": 0, "amazon": 2, "ebay": 1}
    )

    # Replenishment (services/inventory/replenishment): the lead time and the days of cover to
    # order for where a SKU's reorder settings leave them out; units above its reorder point, in
    # percent of the point (at least 1), before a SKU low on stock counts as recovered.
    replenishment_lead_time_days: int = Field(default=7, ge=0, le=365)
    replenishment_cover_days: int = Field(default=14, ge=0, le=365)
    low_stock_recovery_margin_percent: int = Field(default=10, ge=0, le=100)
    # Where orders ship from (OMS_ROUTING, a JSON object; services/inventory/routing): the
    # strategy, per channel, and rules. An unknown strategy stops the service at start.
    routing: RoutingSettings = Field(default_factory=RoutingSettings)

    @field_validator("channel_safety_stock")
    @classmethod
    def _not_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for channel, units in value.items():
            if units < 0:
                raise ValueError(f"the safety stock of {channel} must not be negative")
        return value
