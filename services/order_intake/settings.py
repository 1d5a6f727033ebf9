from typing import Literal

from pydantic import Field, SecretStr

from services.order_intake.risk.domain import RuleSet
from shared.platform.saga.settings import SagaSettings


class OrderIntakeSettings(SagaSettings):
    service_name: str = "order_intake"
    db_schema: str = "order_intake"
    http_port: int = 8001

    max_body_bytes: int = 256 * 1024
    max_order_lines: int = 100
    # Refused requests kept for an operator (rejected_requests): each body cut to this many
    # bytes, rows older than the retention or beyond the newest max_rows pruned hourly.
    rejected_request_body_max_bytes: int = Field(default=64 * 1024, ge=0)
    rejected_request_retention_days: float = Field(default=30, gt=0)
    rejected_request_max_rows: int = Field(default=20_000, ge=1)
    # Admission control (services/order_intake/operators/admission.py): at this many orders in
    # machine-paced saga states, new orders over HTTP get 429 intake_overloaded. 0: no limit.
    # Keep it below what the saga finishes within its step deadlines (throughput x 30 s).
    max_orders_in_flight: int = 500
    admission_refresh_s: float = 1.0

    # The order saga's deadlines (services/order_intake/domain/saga.py).
    saga_stock_timeout_s: float = 30
    saga_payment_timeout_s: float = 30
    saga_fulfilment_timeout_s: float = 30
    saga_compensation_timeout_s: float = 30
    saga_ship_sla_s: float = 48 * 3600
    saga_delivery_sla_s: float = 7 * 24 * 3600
    # A short pick (a bin found empty): `reallocate` its units from other locations (cancel
    # them when none has them), or `ship_available` (ship what is there, cancel the rest).
    saga_short_pick_policy: Literal["reallocate", "ship_available"] = "reallocate"
    # How long a BACKORDERED order waits for its stock (a pre-order: from its release date)
    # before it is cancelled with a notice (OMS_SAGA_BACKORDER_MAX_WAIT_S).
    saga_backorder_max_wait_s: float = Field(default=30 * 24 * 3600, gt=0)
    # An order on hold for longer alerts an operator, once (OMS_SAGA_HOLD_SLA_S).
    saga_hold_sla_s: float = Field(default=24 * 3600, gt=0)
    # How long an order waits in AWAITING_CUSTOMER_ACTION for the customer's 3-D Secure before
    # it is cancelled (OMS_SAGA_CUSTOMER_ACTION_TIMEOUT_S).
    saga_customer_action_timeout_s: float = Field(default=30 * 60, gt=0)

    # Fraud rules (services/order_intake/risk/domain.py): orders the shop takes payment for are
    # scored before authorisation. OMS_FRAUD_RULES: the rule set as JSON (fields left out keep
    # their defaults, see the README); OMS_FRAUD_ENABLED=false: no scoring. Velocity signals
    # are kept OMS_FRAUD_SIGNAL_RETENTION_DAYS (longer than every rule's window).
    fraud_enabled: bool = True
    fraud_rules: RuleSet = RuleSet()
    fraud_signal_retention_days: float = Field(default=90, gt=0)

    # Channel webhooks: the secret each channel signs its deliveries with (HMAC-SHA256).
    # Unset: that channel's webhooks are refused (503 channel_not_configured).
    shopify_webhook_secret: SecretStr | None = None
    woocommerce_webhook_secret: SecretStr | None = None

    # Customer notifications by e-mail. Disabled (the default), they are rendered and recorded,
    # and logged as "would send" instead of sent.
    smtp_enabled: bool = False
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 25
    smtp_sender: str = "orders@oms.localhost"
    smtp_username: str | None = None
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    smtp_timeout_s: float = 10
    notification_poll_interval_s: float = 1.0
    notification_max_attempts: int = 5
    notification_retry_initial_s: float = 5
