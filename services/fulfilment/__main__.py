from services.fulfilment.app import build
from shared.platform.service import run

run(build())
