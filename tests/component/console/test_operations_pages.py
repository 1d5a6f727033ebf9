"""The operations pages on the console alone (its database and Kafka, no service): dead letters
listed and replayed once, the actions hidden from and refused to a viewer, bad form input
answered with a 4xx page naming the field, a service that does not answer shown as a 503 page.
The pages that read the services are tested with them: tests/integration/
test_console_operations.py."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator

import pytest

from services.console.app import build
from services.console.settings import ConsoleSettings
from shared.ops.topics import ensure_topics
from shared.topics import CHANNEL_ORDERS, TopicSpec, dead_letter_topic
from tests.support import auth
from tests.support.component import ComponentHarness, start_harness
from tests.support.env import Infra
from tests.support.kafka import produce, read_topic

pytestmark = pytest.mark.component
HTML = {"Accept": "text/html"}
HTMX = {"HX-Request": "true"}
NOWHERE = "http://127.0.0.1:9"  # discard port: nothing answers


@pytest.fixture
async def console(infra: Infra) -> AsyncIterator[ComponentHarness]:
    settings = ConsoleSettings(
        inventory_url=NOWHERE,
        fulfilment_url=NOWHERE,
        returns_url=NOWHERE,
    )
    async for harness in start_harness(infra, build(settings)):
        prefix = harness.env.prefix  # removed with the test's other topics
        harness.spec.settings = harness.spec.settings.model_copy(
            update={"topic_prefix": prefix, "kafka_bootstrap": infra.kafka_bootstrap}
        )
        await ensure_topics(
            infra.kafka_bootstrap,
            [
                TopicSpec(prefix + dead_letter_topic("order_intake"), "t", "", "", 1),
                TopicSpec(prefix + CHANNEL_ORDERS, "t", "", "", 1),
            ],
        )
        yield harness


async def dead_letter(harness: ComponentHarness, key: str, error: str) -> None:
    prefix = harness.env.prefix
    await produce(
        harness.env.kafka,
        prefix + dead_letter_topic("order_intake"),
        b"{not json",
        key=key.encode(),
        headers={
            "x-message-id": f"m-{key}",
            "x-dlq-reason": "rejected",
            "x-dlq-error": error,
            "x-dlq-attempts": "1",
            "x-dlq-original-topic": prefix + CHANNEL_ORDERS,
            "x-dlq-original-partition": "0",
            "x-dlq-original-offset": "7",
            "x-dlq-failed-at": "2025-01-02T03:04:05+00:00",
        },
    )


def text(html: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))


async def test_a_dead_letter_is_listed_and_replayed_once(console: ComponentHarness) -> None:
    await dead_letter(console, "99-1", "malformed_json: ada@example.com broke it")
    original = console.env.prefix + CHANNEL_ORDERS

    async with console.http("viewer") as viewer:
        index = await viewer.get("/dead-letters", headers=HTML)
        assert index.status_code == 200
        assert 'hx-get="/dead-letters/order_intake/summary"' in index.text
        summary = await viewer.get("/dead-letters/order_intake/summary", headers=HTMX)
        assert text(summary.text).strip() == "1 kept, 1 not replayed"
        page = await viewer.get("/dead-letters/order_intake", headers=HTML)
        assert page.status_code == 200, page.text
        shown = text(page.text)
        assert "rejected (1 attempt(s))" in shown and "99-1" in shown and original in shown
        assert "2025-01-02T03:04:05+00:00" in shown
        assert "ada@example.com" not in page.text, "a viewer sees no personal data"
        assert "Replay</button>" not in page.text, "no button for a viewer"
        refused = await viewer.post("/dead-letters/order_intake/0/0/replay", headers=HTML)
        assert refused.status_code == 403 and "forbidden" in refused.text

    async with console.http("operator") as operator:
        page = await operator.get("/dead-letters/order_intake", headers=HTML)
        assert "ada@example.com" in page.text and "Replay</button>" in page.text
        assert 'hx-post="/dead-letters/order_intake/0/0/replay"' in page.text
        # A double click: two requests at once, one replay.
        first, second = await asyncio.gather(
            operator.post("/dead-letters/order_intake/0/0/replay", headers=HTMX),
            operator.post("/dead-letters/order_intake/0/0/replay", headers=HTMX),
        )
        assert sorted([first.status_code, second.status_code]) == [200, 409]
        done, again = (first, second) if first.status_code == 200 else (second, first)
        assert f"Replayed to {original}" in text(done.text)
        assert "Already replayed" in again.text and "<html" not in again.text
        later = await operator.post("/dead-letters/order_intake/0/0/replay", headers=HTML)
        assert later.status_code == 409 and "Already replayed" in later.text
        page = await operator.get("/dead-letters/order_intake", headers=HTML)
        assert "Replay</button>" not in page.text and "Replayed at" in text(page.text)
        summary = await operator.get("/dead-letters/order_intake/summary", headers=HTMX)
        assert text(summary.text).strip() == "1 kept, none waiting"

    replayed = await read_topic(console.env.kafka, original)
    assert len(replayed) == 1, "sent back once"
    [sent] = replayed
    assert (sent.key, sent.value) == (b"99-1", b"{not json")
    assert sent.headers["x-message-id"] == "m-99-1", "the original headers go back"
    assert sent.headers["x-replayed-from-dlq-offset"] == "0"
    assert not any(k.startswith("x-dlq-") for k in sent.headers)


async def test_unknown_letters_and_services_are_404(console: ComponentHarness) -> None:
    async with console.http("operator") as operator:
        missing = await operator.post("/dead-letters/order_intake/0/5/replay", headers=HTML)
        assert missing.status_code == 404 and "dead_letter_not_found" in missing.text
        unknown = await operator.get("/dead-letters/nosuch", headers=HTML)
        assert unknown.status_code == 404 and "unknown_service" in unknown.text
        paged = await operator.get("/dead-letters/order_intake?before=x", headers=HTML)
        assert paged.status_code == 422 and "before" in paged.text


async def test_actions_are_refused_to_a_viewer(console: ComponentHarness) -> None:
    async with console.http("viewer") as viewer:
        for path, form in [
            ("/stock/SKU-1/adjustments", {"location": "b", "delta": "1", "reason": "receipt"}),
            ("/warehouse/berlin/release", {"strategy": "batch"}),
            ("/returns/r-1/approve", {}),
            ("/returns/r-1/refuse", {"reason": "no"}),
            ("/returns/r-1/receive", {"resellable-0": "1"}),
        ]:
            answer = await viewer.post(path, data=form, headers=HTML)
            assert answer.status_code == 403, (path, answer.text)
            assert "<h1>403: forbidden</h1>" in answer.text, path
            fragment = await viewer.post(path, data=form, headers=HTMX)
            assert fragment.status_code == 403 and 'role="alert"' in fragment.text


async def test_bad_form_input_is_a_4xx_page_naming_the_field(console: ComponentHarness) -> None:
    async with console.http() as admin:
        bad = await admin.post(
            "/stock/SKU-1/adjustments",
            data={"location": "berlin", "delta": "ten", "reason": "receipt"},
            headers=HTML,
        )
        assert bad.status_code == 422
        assert "invalid_form" in bad.text and "delta: must be a whole number" in bad.text
        zero = await admin.post(
            "/stock/SKU-1/adjustments",
            data={"location": "berlin", "delta": "0", "reason": "receipt"},
            headers=HTMX,
        )
        assert zero.status_code == 422 and "delta: must not be zero" in zero.text
        strategy = await admin.post(
            "/warehouse/berlin/release", data={"strategy": "fastest"}, headers=HTML
        )
        assert strategy.status_code == 422 and "strategy: must be one of" in strategy.text
        status = await admin.get("/returns", params={"status": "LOST"}, headers=HTML)
        assert status.status_code == 422 and "status: must be one of" in status.text
        sku = await admin.get("/stock", params={"sku": "no spaces"}, headers=HTML)
        assert sku.status_code == 422 and "sku:" in sku.text
        found = await admin.get("/stock", params={"sku": "SKU-1"}, headers=HTML)
        assert (found.status_code, found.headers["location"]) == (303, "/stock/SKU-1")
        not_a_form = await admin.post("/warehouse/berlin/release", json={}, headers=HTML)
        assert not_a_form.status_code == 415


async def test_a_service_that_does_not_answer_is_a_503_page(console: ComponentHarness) -> None:
    async with console.http() as admin:
        for path in ("/stock/SKU-1", "/stock/low", "/warehouse", "/returns"):
            answer = await admin.get(path, headers=HTML)
            assert answer.status_code == 503, (path, answer.text)
            assert "service_unavailable" in answer.text and "<html" in answer.text


async def test_the_nav_links_the_operations_pages(console: ComponentHarness) -> None:
    token = auth.token("viewer")
    async with console.anonymous() as browser:
        page = await browser.get(
            "/dead-letters", headers={**HTML, "Authorization": f"Bearer {token}"}
        )
    for link in ("/stock", "/warehouse", "/returns", "/dead-letters"):
        assert f'href="{link}"' in page.text
