"""The checked-in AsyncAPI documents (docs/asyncapi/) are the ones FastStream generates from the
code, and together they describe every registered message contract."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from services.order_intake.app import build as build_order_intake
from shared.ops import asyncapi
from shared.topics import SERVICES, dead_letter_topic

REGENERATE = "run `python -m shared.ops.asyncapi --write` and commit docs/asyncapi/"


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return asyncapi.documents()


@pytest.fixture(scope="module")
def documents(generated: dict[str, str]) -> dict[str, dict[str, Any]]:
    return {name.removesuffix(".json"): json.loads(text) for name, text in generated.items()}


def test_the_checked_in_documents_are_the_generated_ones(generated: dict[str, str]):
    assert asyncapi.DOCS_DIR.is_dir(), f"docs/asyncapi/ is missing: {REGENERATE}"
    checked_in = {p.name: p.read_text() for p in asyncapi.DOCS_DIR.glob("*.json")}
    missing = sorted(set(generated) - set(checked_in))
    extra = sorted(set(checked_in) - set(generated))
    different = sorted(n for n in generated if n in checked_in and checked_in[n] != generated[n])
    assert not (missing or extra or different), (
        f"AsyncAPI documents are stale (missing {missing}, not generated any more {extra},"
        f" different {different}): {REGENERATE}"
    )


def test_there_is_one_asyncapi_3_document_per_service(documents: dict[str, dict[str, Any]]):
    assert set(documents) == set(SERVICES)
    for service, doc in documents.items():
        assert doc["asyncapi"] == "3.0.0"
        assert doc["info"]["title"] == f"OMS {service}"
        assert "envelope" in doc["info"]["description"]


def _envelope_schema_name(type_: str, version: int) -> str:
    return f"{type_}Envelope" if version == 1 else f"{type_}V{version}Envelope"


def test_every_registered_contract_is_in_a_document(documents: dict[str, dict[str, Any]]):
    described = {
        name for doc in documents.values() for name in doc["components"].get("schemas", {})
    }
    contracts = asyncapi.oms_contracts()
    assert len(contracts) >= 20 and {c.__module__ for c in contracts} >= {
        f"shared.contracts.{service}" for service in ("order_intake", "inventory", "payment")
    }
    missing = [
        f"{c.TYPE} v{c.VERSION} ({c.__module__}, topic {c.TOPIC})"
        for c in contracts
        if _envelope_schema_name(c.TYPE, c.VERSION) not in described
    ]
    assert not missing, (
        f"contracts no service consumes or produces in the documents: {missing}; a contract"
        " belongs in shared/contracts/<producing service>.py and some service must handle it"
    )


def test_each_contract_is_published_by_its_producer_and_received_where_handled(
    documents: dict[str, dict[str, Any]],
):
    for model in asyncapi.oms_contracts():
        type_, version = model.TYPE, model.VERSION
        producer = model.__module__.rsplit(".", 1)[-1]
        if producer not in documents:
            continue  # produced outside the OMS (a sales channel)
        channel = documents[producer]["channels"].get(f"{model.TOPIC}:send")
        assert channel is not None, f"{producer} does not document sending on {model.TOPIC}"
        assert channel["address"] == model.TOPIC
        union = documents[producer]["components"]["schemas"][
            _union_of(channel, documents[producer])
        ]
        assert _refs_to(_envelope_schema_name(type_, version), union), (type_, producer)

    order_intake = build_order_intake()
    doc = documents["order_intake"]
    for topic in order_intake.topics:
        channel = doc["channels"][f"{topic}:receive"]
        assert channel["address"] == topic
    payment_events = doc["components"]["schemas"]["PaymentEventsV1Handled"]
    assert _refs_to("PaymentAuthorizedEnvelope", payment_events)
    assert payment_events["discriminator"] == "type"


def test_consumers_document_their_dead_letter_topic(documents: dict[str, dict[str, Any]]):
    for service in SERVICES:
        consumes = any(k.endswith(":receive") for k in documents[service]["channels"])
        dead_letters = f"{dead_letter_topic(service)}:send"
        assert (dead_letters in documents[service]["channels"]) == consumes, service


def test_envelopes_say_exactly_what_travels(documents: dict[str, dict[str, Any]]):
    schema = documents["payment"]["components"]["schemas"]["AuthorizePaymentEnvelope"]
    assert schema["properties"]["type"]["const"] == "AuthorizePayment"
    assert schema["properties"]["version"]["const"] == 1
    assert schema["properties"]["payload"]["$ref"] == "#/components/schemas/AuthorizePayment"
    assert set(schema["required"]) >= {"message_id", "type", "version", "correlation_id"}
    for message in documents["payment"]["components"]["messages"].values():
        assert message["correlationId"]["location"] == "$message.payload#/correlation_id"


def _walk(node: Any) -> Iterator[str]:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                yield value
            else:
                yield from _walk(value)
    elif isinstance(node, list):
        for item in node:
            yield from _walk(item)


def test_every_reference_resolves(documents: dict[str, dict[str, Any]]):
    for service, doc in documents.items():
        for ref in set(_walk(doc)):
            assert ref.startswith("#/"), ref
            node: Any = doc
            for part in ref[2:].split("/"):
                part = part.replace("~1", "/").replace("~0", "~")
                assert isinstance(node, dict) and part in node, f"{service}: dangling {ref}"
                node = node[part]


def _union_of(channel: dict[str, Any], doc: dict[str, Any]) -> str:
    [message_ref] = [m["$ref"] for m in channel["messages"].values()]
    message = doc["components"]["messages"][message_ref.rsplit("/", 1)[-1]]
    return str(message["payload"]["$ref"].rsplit("/", 1)[-1])


def _refs_to(schema_name: str, union: dict[str, Any]) -> bool:
    target = f"#/components/schemas/{schema_name}"
    return target in set(_walk(union)) or union.get("title") == schema_name
