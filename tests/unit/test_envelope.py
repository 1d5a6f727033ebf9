from __future__ import annotations

import uuid
from decimal import Decimal

import orjson
import pytest

import shared.contracts  # noqa: F401
from shared.contracts.order_intake import AuthorizePayment
from shared.envelope import Envelope, MalformedMessage, UnknownMessageType, decode, registered_types


def test_envelope_round_trips_with_money_as_decimal_strings():
    command = AuthorizePayment(
        order_id="o-1",
        amount=Decimal("19.90"),
        currency="EUR",
        method="card",
        token="tok_visa",
        idempotency_key="o-1:authorize",
    )
    envelope = Envelope.wrap(command, correlation_id="o-1", causation_id=uuid.UUID(int=1))
    raw = envelope.to_bytes()
    assert orjson.loads(raw)["payload"]["amount"] == "19.90"
    decoded = decode(raw)
    assert decoded.message_id == envelope.message_id
    assert decoded.causation_id == str(uuid.UUID(int=1))
    again = decoded.contract()
    assert isinstance(again, AuthorizePayment)
    assert again.amount == Decimal("19.90")


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (None, "empty"),
        (b"\xff\xfe not json", "not JSON"),
        (b"[1, 2]", "not a JSON object"),
        (b'{"type": "X"}', "not a valid envelope"),
    ],
)
def test_undecodable_messages_say_why(raw, reason):
    with pytest.raises(MalformedMessage, match=reason):
        decode(raw)


def test_unknown_type_is_reported():
    envelope = Envelope(type="Nope", correlation_id="c", payload={})
    with pytest.raises(UnknownMessageType, match="Nope"):
        envelope.contract()


def test_every_contract_names_a_registered_topic_and_kind():
    from shared.topics import TOPIC_NAMES

    for (type_, _), model in registered_types().items():
        if type_.startswith("Probe"):
            continue
        assert model.TOPIC in TOPIC_NAMES, type_
        assert model.KIND in {"command", "event"}
