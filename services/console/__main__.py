from services.console.app import build
from shared.platform.service import run

run(build())
