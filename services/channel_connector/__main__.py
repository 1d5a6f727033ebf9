from services.channel_connector.app import build
from shared.platform.service import run

run(build())
