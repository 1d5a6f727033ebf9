import orjson

from bench.channel import channel_message, shopify_payload
from bench.workload import generate
from services.order_intake.channels.adapters import shopify
from services.order_intake.channels.adapters.base import NewOrder
from shared.envelope import decode


def test_the_bench_order_is_a_shopify_delivery_the_adapter_maps_line_for_line():
    body = generate(orders=1, skus=5, max_lines=3, stock_factor=1.0, seed=3, run_tag="t").orders[0]
    result = shopify.parse(
        orjson.loads(orjson.dumps(shopify_payload(body))), {"x-shopify-topic": "orders/create"}
    )
    assert isinstance(result, NewOrder)
    assert result.external_id == body["external_id"]
    assert [(line.sku, line.quantity) for line in result.order.lines] == [
        (line["sku"], line["quantity"]) for line in body["lines"]
    ]
    assert not result.order.paid_externally, "authorised by the payment service like HTTP"


def test_the_channel_message_is_a_channel_order_received_envelope():
    body = generate(orders=1, skus=5, max_lines=2, stock_factor=1.0, seed=3, run_tag="t").orders[0]
    envelope = decode(channel_message(body))
    assert envelope.type == "ChannelOrderReceived"
    message = envelope.contract()
    assert message.channel == "shopify"
    assert orjson.loads(message.payload)["id"] == body["external_id"]
