from typing import Literal

from shared.platform.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    db_schema: str = "payment"
    http_port: int = 8003

    # Which payment gateway to call; real providers plug in as further choices.
    gateway: Literal["test"] = "test"
    # A gateway timeout is retried with the same idempotency key, this many attempts in all.
    gateway_retry_attempts: int = 4
    gateway_retry_initial_s: float = 0.1
    gateway_retry_max_s: float = 2.0
