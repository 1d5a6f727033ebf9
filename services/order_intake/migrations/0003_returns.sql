-- Returns as the order view shows them, from returns' ReturnStatusChanged events (one row per
-- return, the latest revision), and the replacement orders of exchanges.
CREATE TABLE order_returns (
    return_id            text           PRIMARY KEY,
    order_id             text           NOT NULL,
    revision             integer        NOT NULL,
    status               text           NOT NULL,
    currency             char(3)        NOT NULL,
    lines                jsonb          NOT NULL DEFAULT '[]'::jsonb,
    received             jsonb          NOT NULL DEFAULT '[]'::jsonb,
    refund_amount        numeric(18, 4),
    refund_status        text           NOT NULL,
    refunded_amount      numeric(18, 4) NOT NULL DEFAULT 0,
    amount_due           numeric(18, 4) NOT NULL DEFAULT 0,
    replacement_order_id text,
    changed_at           timestamptz    NOT NULL,
    updated_at           timestamptz    NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX order_returns_by_order ON order_returns (order_id);

-- One replacement order per return (CreateReplacementOrder is idempotent per return id).
CREATE TABLE replacement_orders (
    order_id          text        PRIMARY KEY REFERENCES orders (order_id),
    return_id         text        NOT NULL UNIQUE,
    original_order_id text        NOT NULL,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX replacement_orders_by_original ON replacement_orders (original_order_id);
