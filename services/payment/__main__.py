from services.payment.app import build
from shared.platform.service import run

run(build())
