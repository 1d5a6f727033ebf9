from shared.platform.settings import ServiceSettings


class InventorySettings(ServiceSettings):
    service_name: str = "inventory"
    db_schema: str = "inventory"
    http_port: int = 8002
