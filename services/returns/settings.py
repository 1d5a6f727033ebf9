from shared.platform.settings import ServiceSettings


class ReturnsSettings(ServiceSettings):
    service_name: str = "returns"
    db_schema: str = "returns"
    http_port: int = 8005
