from decimal import Decimal
from typing import Literal

from pydantic import Field

from shared.platform.saga.settings import SagaSettings


class ReturnsSettings(SagaSettings):
    service_name: str = "returns"
    db_schema: str = "returns"
    http_port: int = 8005

    # The return policy (services/returns/domain/policy.py).
    return_window_days: int = Field(default=30, ge=0)
    return_window_days_by_channel: dict[str, int] = Field(
        default_factory=lambda: {"amazon": 30, "ebay": 30, "web": 30}
    )
    non_returnable_skus: list[str] = Field(default_factory=list)
    refund_shipping: Literal["never", "full_return_only", "always"] = "full_return_only"
    damaged_refund_percent: Decimal = Field(default=Decimal(100), ge=0, le=100)
    # Reasons where the seller is at fault: damaged items are refunded in full.
    full_refund_reasons: list[str] = Field(
        default_factory=lambda: ["defective", "wrong_item", "damaged_in_transit"]
    )
    # Returns an operator approves or refuses: by reason, or above a refund value.
    manual_review_reasons: list[str] = Field(default_factory=lambda: ["other"])
    manual_review_above: Decimal | None = Decimal(1000)
    # Where resellable items go back on hand when the receipt names no location.
    restock_location: str = "main"

    # The returns saga's deadlines (services/returns/domain/saga.py).
    saga_stock_timeout_s: float = 30
    saga_replacement_timeout_s: float = 60
    saga_refund_timeout_s: float = 30
    refund_max_attempts: int = 4
    refund_retry_backoff_s: float = 5
