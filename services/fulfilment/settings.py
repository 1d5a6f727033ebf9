from shared.platform.settings import ServiceSettings


class FulfilmentSettings(ServiceSettings):
    service_name: str = "fulfilment"
    db_schema: str = "fulfilment"
    http_port: int = 8004
