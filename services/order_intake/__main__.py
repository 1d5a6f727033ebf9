from services.order_intake.app import build
from shared.platform.service import run

run(build())
