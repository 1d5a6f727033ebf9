from shared.platform.settings import ServiceSettings


class OrderIntakeSettings(ServiceSettings):
    service_name: str = "order_intake"
    db_schema: str = "order_intake"
    http_port: int = 8001
