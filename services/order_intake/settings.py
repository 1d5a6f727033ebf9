from shared.platform.settings import ServiceSettings


class OrderIntakeSettings(ServiceSettings):
    service_name: str = "order_intake"
    db_schema: str = "order_intake"
    http_port: int = 8001

    max_body_bytes: int = 256 * 1024
    max_order_lines: int = 100

    saga_stock_timeout_s: float = 30
    saga_payment_timeout_s: float = 30
    saga_fulfilment_timeout_s: float = 30
    saga_compensation_timeout_s: float = 30
    saga_max_attempts: int = 3
    saga_ship_sla_s: float = 48 * 3600
    saga_delivery_sla_s: float = 7 * 24 * 3600
    deadline_poll_interval_s: float = 1.0
