-- returns: its read model of orders (from order events), the return authorisations with their
-- saga state, the timeline of every saga step, and the dedupe keys of the API.

-- One row per order, from OrderStatusChanged: what the return policy and refunds need.
CREATE TABLE orders (
    order_id          text           PRIMARY KEY,
    channel           text           NOT NULL,
    currency          char(3)        NOT NULL,
    status            text           NOT NULL,
    total             numeric(18, 4) NOT NULL,
    subtotal          numeric(18, 4),
    discount          numeric(18, 4),
    shipping          numeric(18, 4),
    tax               numeric(18, 4),
    lines             jsonb          NOT NULL,
    paid_externally   boolean        NOT NULL DEFAULT false,
    original_order_id text,
    linked_return_id  text,
    -- when the order first reached DELIVERED (or COMPLETED, which implies it)
    delivered_at      timestamptz,
    status_at         timestamptz    NOT NULL,
    updated_at        timestamptz    NOT NULL DEFAULT clock_timestamp()
);

CREATE TABLE returns (
    return_id            text        PRIMARY KEY,
    order_id             text        NOT NULL,
    status               text        NOT NULL,
    saga                 jsonb       NOT NULL,
    replacement_order_id text,
    next_deadline_at     timestamptz,
    created_at           timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at           timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE INDEX returns_by_order ON returns (order_id, created_at);
CREATE INDEX returns_by_status ON returns (status, created_at DESC);
CREATE INDEX returns_listing ON returns (created_at DESC, return_id DESC);
CREATE INDEX returns_deadlines ON returns (next_deadline_at) WHERE next_deadline_at IS NOT NULL;
CREATE UNIQUE INDEX returns_replacement_order ON returns (replacement_order_id)
    WHERE replacement_order_id IS NOT NULL;

CREATE TABLE return_timeline (
    id        bigserial   PRIMARY KEY,
    return_id text        NOT NULL REFERENCES returns (return_id),
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    status    text        NOT NULL,
    event     text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX return_timeline_by_return ON return_timeline (return_id, id);

-- Idempotency-Key of POST /v1/returns, with a hash of the request it answered.
CREATE TABLE idempotency_keys (
    idempotency_key text        PRIMARY KEY,
    request_hash    text        NOT NULL,
    return_id       text        NOT NULL REFERENCES returns (return_id),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);
