"""The message envelope and the registry of message types (DESIGN.md §3).

Every message on Kafka is one JSON envelope. The payload is a pydantic model registered under its
`type` and `version`; consumers look the model up here to validate what they receive.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import BaseModel, ConfigDict, Field, ValidationError


class Contract(BaseModel):
    """Base of every message payload. Subclasses set TYPE, VERSION and KIND."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    TYPE: ClassVar[str]
    VERSION: ClassVar[int] = 1
    KIND: ClassVar[str] = "event"  # "command" or "event"
    TOPIC: ClassVar[str]


class Command(Contract):
    KIND: ClassVar[str] = "command"


class Event(Contract):
    KIND: ClassVar[str] = "event"


C = TypeVar("C", bound=type[Contract])

_REGISTRY: dict[tuple[str, int], type[Contract]] = {}


def register(cls: C) -> C:
    key = (cls.TYPE, cls.VERSION)
    existing = _REGISTRY.get(key)
    if existing is not None and existing is not cls:
        raise ValueError(f"message type {key} registered twice")
    _REGISTRY[key] = cls
    return cls


def registered_types() -> dict[tuple[str, int], type[Contract]]:
    return dict(_REGISTRY)


def contract_for(type_: str, version: int) -> type[Contract] | None:
    return _REGISTRY.get((type_, version))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    message_id: uuid.UUID = Field(default_factory=uuid.uuid4)
    type: str
    version: int = 1
    occurred_at: datetime = Field(default_factory=utcnow)
    correlation_id: str
    causation_id: str | None = None
    producer: str | None = None
    payload: dict[str, Any]

    @classmethod
    def wrap(
        cls,
        message: Contract,
        *,
        correlation_id: str,
        causation_id: str | uuid.UUID | None = None,
        producer: str | None = None,
        message_id: uuid.UUID | None = None,
    ) -> Envelope:
        return cls(
            message_id=message_id or uuid.uuid4(),
            type=message.TYPE,
            version=message.VERSION,
            correlation_id=correlation_id,
            causation_id=str(causation_id) if causation_id is not None else None,
            producer=producer,
            payload=message.model_dump(mode="json"),
        )

    def to_bytes(self) -> bytes:
        return dumps(self.model_dump(mode="json"))

    def contract(self) -> Contract:
        """The payload validated against its registered model.

        Raises UnknownMessageType when no model is registered, pydantic's ValidationError when the
        payload does not fit.
        """
        model = contract_for(self.type, self.version)
        if model is None:
            raise UnknownMessageType(self.type, self.version)
        return model.model_validate(self.payload)


class UnknownMessageType(Exception):
    def __init__(self, type_: str, version: int) -> None:
        super().__init__(f"unknown message type {type_!r} version {version}")
        self.type = type_
        self.version = version


class MalformedMessage(Exception):
    """A message that can never be processed: not JSON, not an envelope, or a bad payload."""


def decode(raw: bytes | None) -> Envelope:
    """Parse raw Kafka bytes into an envelope, or raise MalformedMessage with the reason."""
    if raw is None:
        raise MalformedMessage("empty message value")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise MalformedMessage(f"not JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise MalformedMessage("not a JSON object")
    try:
        return Envelope.model_validate(data)
    except ValidationError as exc:
        raise MalformedMessage(f"not a valid envelope: {_summarise(exc)}") from exc


def _summarise(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        loc = ".".join(str(p) for p in err["loc"])
        parts.append(f"{loc}: {err['msg']}")
    return "; ".join(parts)


def summarise_validation_error(exc: ValidationError) -> str:
    return _summarise(exc)


def _default(obj: Any) -> Any:
    if isinstance(obj, Decimal):
        return str(obj)
    raise TypeError(f"cannot serialise {type(obj).__name__}")


def dumps(obj: Any) -> bytes:
    return orjson.dumps(obj, default=_default)


def loads(raw: bytes | str) -> Any:
    return orjson.loads(raw)
