"""The five services of the OMS, one package each (order_intake, inventory, payment, fulfilment,
returns). Each owns its Postgres schema and talks to the others only through Kafka messages whose
contracts live in `shared.contracts`; no service imports another (an import-linter contract in
`make lint`). `python -m services.<name>` runs one."""
