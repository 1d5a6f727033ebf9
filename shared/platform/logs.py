"""Structured JSON logs carrying the service name and the current trace id."""

from __future__ import annotations

import contextlib
import contextvars
import logging
import re
import sys
from collections.abc import Iterator
from datetime import UTC, datetime

import orjson

from shared.platform.telemetry import current_trace_id

_ORDER_ID: contextvars.ContextVar[str | None] = contextvars.ContextVar("oms_order_id", default=None)
_EMAIL = re.compile(r"[\w.+-]+@[\w-]+\.[\w.-]+")


@contextlib.contextmanager
def order_context(order_id: str | None) -> Iterator[None]:
    """Log lines written inside carry this order (or return) id."""
    token = _ORDER_ID.set(order_id)
    try:
        yield
    finally:
        _ORDER_ID.reset(token)


def redact(text: str) -> str:
    """Customer e-mail addresses never reach the logs, whatever a message interpolates."""
    return _EMAIL.sub("[email]", text)


_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


class JsonFormatter(logging.Formatter):
    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "service": self.service,
            "logger": record.name,
            "msg": redact(record.getMessage()),
        }
        order_id = _ORDER_ID.get()
        if order_id:
            entry["order_id"] = order_id
        trace_id = current_trace_id()
        if trace_id:
            entry["trace_id"] = trace_id
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                entry[key] = value
        if record.exc_info:
            entry["exc"] = redact(self.formatException(record.exc_info))
        return orjson.dumps(entry, default=str).decode()


def setup_logging(service: str, level: str = "INFO", *, json: bool = True) -> None:
    handler = logging.StreamHandler(sys.stdout)
    if json:
        handler.setFormatter(JsonFormatter(service))
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiokafka", "kafka", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
