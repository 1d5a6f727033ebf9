from typing import Literal

from shared.platform.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    db_schema: str = "payment"
    http_port: int = 8003

    # Which payment gateway to call; real providers plug in as further choices.
    gateway: Literal["test"] = "test"
    # The test gateway approves any token: with OMS_ENV=production it refuses to start unless
    # this is set on purpose (a staging environment that looks like production).
    allow_test_gateway_in_production: bool = False
    # A gateway timeout is retried with the same idempotency key, this many attempts in all.
    gateway_retry_attempts: int = 4
    gateway_retry_initial_s: float = 0.1
    gateway_retry_max_s: float = 2.0
