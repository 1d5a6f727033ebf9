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
