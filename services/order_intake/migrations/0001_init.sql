-- Orders as received (canonical form, with the raw request), their lines, the saga state,
-- the timeline of every saga step, and the dedupe keys of every channel.
CREATE TABLE orders (
    order_id          text        PRIMARY KEY,
    channel           text        NOT NULL,
    external_id       text,
    status            text        NOT NULL,
    currency          char(3)     NOT NULL,
    subtotal          numeric(18, 4) NOT NULL CHECK (subtotal >= 0),
    discount          numeric(18, 4) NOT NULL CHECK (discount >= 0),
    shipping          numeric(18, 4) NOT NULL CHECK (shipping >= 0),
    tax               numeric(18, 4) NOT NULL CHECK (tax >= 0),
    total             numeric(18, 4) NOT NULL CHECK (total >= 0),
    customer          jsonb       NOT NULL,
    shipping_address  jsonb       NOT NULL,
    billing_address   jsonb,
    shipping_method   text,
    promo_code        text,
    raw_request       jsonb       NOT NULL,
    saga              jsonb       NOT NULL,
    next_deadline_at  timestamptz,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);

CREATE UNIQUE INDEX orders_channel_external_id ON orders (channel, external_id)
    WHERE external_id IS NOT NULL;
CREATE INDEX orders_by_status ON orders (status, created_at DESC, order_id DESC);
CREATE INDEX orders_by_channel ON orders (channel, created_at DESC, order_id DESC);
CREATE INDEX orders_listing ON orders (created_at DESC, order_id DESC);
CREATE INDEX orders_deadlines ON orders (next_deadline_at) WHERE next_deadline_at IS NOT NULL;

CREATE TABLE order_lines (
    order_id    text           NOT NULL REFERENCES orders (order_id),
    line_id     text           NOT NULL,
    position    integer        NOT NULL,
    sku         text           NOT NULL,
    quantity    integer        NOT NULL CHECK (quantity > 0),
    unit_price  numeric(18, 4) NOT NULL CHECK (unit_price >= 0),
    line_total  numeric(18, 4) NOT NULL CHECK (line_total >= 0),
    PRIMARY KEY (order_id, line_id)
);

CREATE TABLE order_timeline (
    id        bigserial   PRIMARY KEY,
    order_id  text        NOT NULL REFERENCES orders (order_id),
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    status    text        NOT NULL,
    event     text        NOT NULL,
    detail    jsonb       NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX order_timeline_by_order ON order_timeline (order_id, id);

-- Idempotency-Key of the native API (scoped per key), with a hash of the request it answered.
CREATE TABLE idempotency_keys (
    idempotency_key text        PRIMARY KEY,
    request_hash    text        NOT NULL,
    order_id        text        NOT NULL REFERENCES orders (order_id),
    created_at      timestamptz NOT NULL DEFAULT clock_timestamp()
);

-- Requests refused as invalid, kept raw for an operator.
CREATE TABLE rejected_requests (
    id          bigserial   PRIMARY KEY,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    endpoint    text        NOT NULL,
    error_code  text        NOT NULL,
    error       text        NOT NULL,
    raw_body    bytea       NOT NULL,
    headers     jsonb       NOT NULL DEFAULT '{}'::jsonb
);
