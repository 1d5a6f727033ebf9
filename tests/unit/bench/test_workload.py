from collections import defaultdict

import orjson

from bench.monitor import parse_metrics
from bench.observer import Progress, parse_status_changed
from bench.workload import generate


def test_the_same_seed_gives_the_same_orders():
    a = generate(orders=50, skus=10, max_lines=3, stock_factor=1.0, seed=7, run_tag="r")
    b = generate(orders=50, skus=10, max_lines=3, stock_factor=1.0, seed=7, run_tag="r")
    assert a.orders == b.orders
    assert len({o["external_id"] for o in a.orders}) == 50


def test_stock_covers_the_demand_with_a_factor_of_one():
    workload = generate(orders=500, skus=20, max_lines=3, stock_factor=1.0, seed=1, run_tag="r")
    stocked = defaultdict(int)
    for (sku, _), quantity in workload.initial_stock.items():
        stocked[sku] += quantity
    for order in workload.orders:
        assert 1 <= len(order["lines"]) <= 3
        assert len({line["sku"] for line in order["lines"]}) == len(order["lines"])
    assert all(stocked[sku] >= wanted for sku, wanted in workload.demand.items())
    assert not workload.stock_can_run_out


def test_stock_runs_out_below_a_factor_of_one():
    workload = generate(orders=500, skus=20, max_lines=3, stock_factor=0.5, seed=1, run_tag="r")
    assert workload.stock_can_run_out


def test_status_changed_envelopes_are_parsed_and_first_sight_is_kept():
    value = orjson.dumps(
        {
            "message_id": "m1",
            "type": "OrderStatusChanged",
            "payload": {
                "order_id": "o1",
                "status": "FULFILLING",
                "at": "2025-01-01T00:00:01+00:00",
            },
        }
    )
    order_id, status, at, message_id = parse_status_changed(value)
    assert (order_id, status, message_id) == ("o1", "FULFILLING", "m1")
    assert at == 1735689601.0
    assert parse_status_changed(orjson.dumps({"type": "Other", "payload": {}})) is None

    progress = Progress()
    progress.note("o1", "FULFILLING", at, at + 0.5, "m1")
    progress.note("o1", "FULFILLING", at + 9, at + 9, "m1")  # a redelivery
    assert progress.reached["o1"]["FULFILLING"] == (at, at + 0.5)
    assert progress.count("FULFILLING") == 1
    assert progress.messages[("o1", "FULFILLING")] == {"m1"}


def test_metrics_text_is_read_for_outbox_and_batches():
    text = """
# TYPE oms_outbox_backlog gauge
oms_outbox_backlog{service="inventory"} 4.0
# TYPE oms_outbox_publish_lag_seconds histogram
oms_outbox_publish_lag_seconds_bucket{le="0.01",service="inventory"} 8.0
oms_outbox_publish_lag_seconds_bucket{le="+Inf",service="inventory"} 10.0
oms_outbox_publish_lag_seconds_sum{service="inventory"} 0.5
oms_outbox_publish_lag_seconds_count{service="inventory"} 10.0
# TYPE oms_consumer_batch_size histogram
oms_consumer_batch_size_bucket{le="10.0",service="inventory"} 2.0
oms_consumer_batch_size_bucket{le="+Inf",service="inventory"} 2.0
oms_consumer_batch_size_sum{service="inventory"} 12.0
oms_consumer_batch_size_count{service="inventory"} 2.0
# TYPE oms_messages_handled_total counter
oms_messages_handled_total{message_type="ReserveStock",outcome="applied",service="inventory"} 12.0
"""
    found = parse_metrics(text)
    assert found.outbox_backlog == 4.0
    assert found.outbox_lag_count == 10.0
    assert found.outbox_lag_buckets[0] == (0.01, 8.0)
    assert found.batch_sum / found.batch_count == 6.0
    assert found.handled == {"applied": 12.0}


def test_backorder_skus_start_without_stock_and_do_not_count_as_running_out() -> None:
    from bench.workload import generate

    workload = generate(
        orders=200, skus=10, max_lines=3, stock_factor=1.0, seed=3, run_tag="t", backorder_skus=2
    )
    assert workload.backorder_skus == ("BENCH-0008", "BENCH-0009")
    assert not any(sku in workload.backorder_skus for sku, _ in workload.initial_stock)
    assert not workload.stock_can_run_out
    assert all(workload.demand.get(sku, 0) > 0 for sku in workload.backorder_skus)
