"""Settings every saga-running service has (each service adds its steps' timeouts)."""

from __future__ import annotations

from shared.platform.settings import ServiceSettings


class SagaSettings(ServiceSettings):
    # A step's command is sent at most this many times before the saga gives up on it.
    saga_max_attempts: int = 3
    # How often the deadline scheduler looks for sagas whose deadline passed.
    deadline_poll_interval_s: float = 1.0
