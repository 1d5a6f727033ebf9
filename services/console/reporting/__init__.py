"""The KPI read model: the services' events projected into facts, and the figures read from them.

- `projection.py`: the handlers (one `HandlerRegistry`) that turn events into facts; each is
  idempotent on its own facts as well as behind the consumer's inbox;
- `store.py`: all SQL — the facts' upserts and the KPI queries;
- `domain.py`: the pure part — the filter, percentiles, rates, buckets, the shipping promise, the
  report assembled from the queries' rows;
- `charts.py`: SVG charts drawn on the server (pure); `csv_export.py`: the report's tables as
  CSV (pure); `routes.py`: `GET /kpis` (the page), `GET /kpis.csv`, `GET /v1/kpis` (JSON).
"""
