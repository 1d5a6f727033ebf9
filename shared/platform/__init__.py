"""The platform every service runs on: its wiring (`service`: ServiceSpec, Runtime and the typed
dependencies routes take), settings, database pools and listing filters (`db`), the unit of
work with its transactional outbox and relay (`outbox`), the consumer with inbox, retries and
dead letters (`consumer`), the context one consumer batch shares (`batch`), the one way to
register message handlers (`handlers`), the saga kit (`saga`: deadlines, timeline,
Idempotency-Key), and the cross-cutting HTTP pieces (auth, errors, rate limits, OpenAPI),
logs, metrics, tracing, migrations and housekeeping.
"""
