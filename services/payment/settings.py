from shared.platform.settings import ServiceSettings


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    db_schema: str = "payment"
    http_port: int = 8003
