from services.inventory.app import build
from shared.platform.service import run

run(build())
