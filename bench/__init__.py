"""End-to-end benchmark of the OMS: orders per second and latency, with a correctness check.

`make bench` (or `python -m bench.run --help`) brings up a dedicated environment (its own
database and topic prefix on the local Kafka and Postgres), starts the five services as
processes, seeds stock, feeds orders through `POST /v1/orders` and/or the Kafka channel ingress,
lets a warehouse simulator ship and deliver them, and reports throughput, latency percentiles,
CPU and memory per process, outbox and consumer lag, and whether the answer was right.
"""
