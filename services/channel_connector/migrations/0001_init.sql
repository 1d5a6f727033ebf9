-- The channel connector's own schema.

-- The channel orders it serves (from OrderStatusChanged): which account, the channel's id,
-- what was ordered and what has shipped.
CREATE TABLE channel_orders (
    order_id     text PRIMARY KEY,
    account      text NOT NULL,
    channel      text NOT NULL,
    external_id  text NOT NULL,
    status       text NOT NULL,
    lines        jsonb NOT NULL DEFAULT '[]',
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX channel_orders_external ON channel_orders (channel, external_id);

-- Which account handed an order in (polled or fetched), so its shipments go back there.
CREATE TABLE order_accounts (
    channel      text NOT NULL,
    external_id  text NOT NULL,
    account      text NOT NULL,
    PRIMARY KEY (channel, external_id)
);

-- Shipments of orders not (yet) known as channel orders: kept until the order is, or pruned.
CREATE TABLE unmatched_shipments (
    shipment_key text PRIMARY KEY,
    order_id     text NOT NULL,
    shipment     jsonb NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX unmatched_shipments_order ON unmatched_shipments (order_id);

-- Work for the channels: one row per (account, kind, key), so nothing is pushed twice.
CREATE TABLE pushes (
    push_id           bigserial PRIMARY KEY,
    account           text NOT NULL,
    kind              text NOT NULL,
    key               text NOT NULL,
    order_id          text,
    payload           jsonb NOT NULL,
    status            text NOT NULL DEFAULT 'pending',
    attempts          integer NOT NULL DEFAULT 0,
    next_attempt_at   timestamptz NOT NULL DEFAULT now(),
    last_error        text,
    channel_reference text,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    UNIQUE (account, kind, key)
);
CREATE INDEX pushes_due ON pushes (next_attempt_at) WHERE status = 'pending';
CREATE INDEX pushes_order ON pushes (order_id, kind);

-- Stock to push: the latest level (version counts changes) and what was last pushed.
CREATE TABLE stock_levels (
    account          text NOT NULL,
    sku              text NOT NULL,
    quantity         integer NOT NULL,
    version          bigint NOT NULL DEFAULT 1,
    pushed_quantity  integer,
    pushed_version   bigint NOT NULL DEFAULT 0,
    pushed_at        timestamptz,
    not_before       timestamptz NOT NULL DEFAULT '-infinity',
    push_count       bigint NOT NULL DEFAULT 0,
    last_error       text,
    updated_at       timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, sku)
);
CREATE INDEX stock_levels_dirty ON stock_levels (account, not_before)
    WHERE version > pushed_version;

-- Polling: each account's last-updated cursor, and the order versions already handed on.
CREATE TABLE poll_cursors (
    account      text PRIMARY KEY,
    cursor_at    timestamptz,
    polled_at    timestamptz,
    orders_seen  bigint NOT NULL DEFAULT 0,
    last_error   text
);
CREATE TABLE polled_versions (
    account      text NOT NULL,
    external_id  text NOT NULL,
    updated_at   timestamptz NOT NULL,
    handed_on_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (account, external_id, updated_at)
);
CREATE INDEX polled_versions_age ON polled_versions (handed_on_at);
