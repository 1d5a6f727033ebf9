-- console: the KPI read model (services/console/reporting/), fed by the services' events.
-- Every fact is written so that the same event applied again changes nothing: first times are
-- kept with LEAST, latest values only by a newer timestamp or revision, keyed rows upserted.
-- No personal data: ids, channels, SKUs, amounts, times and reasons only.

-- One row per order (OrderStatusChanged): when it was placed and reached each milestone.
CREATE TABLE kpi_orders (
    order_id       text           PRIMARY KEY,
    channel        text           NOT NULL,
    currency       char(3)        NOT NULL,
    total          numeric(18, 4) NOT NULL,
    total_at       timestamptz    NOT NULL,  -- the status change that gave `total`
    placed_at      timestamptz    NOT NULL,  -- the earliest status seen (RECEIVED)
    confirmed_at   timestamptz,
    backordered_at timestamptz,
    shipped_at     timestamptz,              -- first reached SHIPPED
    delivered_at   timestamptz,
    completed_at   timestamptz,
    cancelled_at   timestamptz,
    cancel_reason  text,
    rejected_at    timestamptz,
    reject_reason  text
);
CREATE INDEX kpi_orders_placed ON kpi_orders (placed_at);

-- One row per shipment (parcel) of a fulfilment (FulfilmentShipped, FulfilmentDelivered).
CREATE TABLE kpi_shipments (
    shipment_key   text        PRIMARY KEY,  -- shipment_id, else the fulfilment id
    order_id       text        NOT NULL,
    fulfilment_id  text        NOT NULL,
    location       text,
    carrier        text,
    shipped_at     timestamptz,              -- NULL: its delivery was heard of first
    delivered_at   timestamptz
);
CREATE INDEX kpi_shipments_shipped ON kpi_shipments (shipped_at);
CREATE INDEX kpi_shipments_delivered ON kpi_shipments (delivered_at);
CREATE INDEX kpi_shipments_fulfilment ON kpi_shipments (fulfilment_id);

CREATE TABLE kpi_shipment_lines (
    shipment_key text    NOT NULL REFERENCES kpi_shipments ON DELETE CASCADE,
    sku          text    NOT NULL,
    quantity     integer NOT NULL,
    PRIMARY KEY (shipment_key, sku)
);

-- One row per return (ReturnStatusChanged, the highest revision wins) and its lines.
CREATE TABLE kpi_returns (
    return_id    text        PRIMARY KEY,
    order_id     text        NOT NULL,
    status       text        NOT NULL,
    revision     integer     NOT NULL,
    requested_at timestamptz NOT NULL,       -- the earliest change seen
    status_at    timestamptz NOT NULL
);
CREATE INDEX kpi_returns_requested ON kpi_returns (requested_at);

CREATE TABLE kpi_return_lines (
    return_id text    NOT NULL REFERENCES kpi_returns ON DELETE CASCADE,
    sku       text    NOT NULL,
    reason    text    NOT NULL,
    quantity  integer NOT NULL,
    PRIMARY KEY (return_id, sku, reason)
);

-- Money given back: by payment (PaymentRefunded, keyed by the order's refunded total after
-- it), at the provider (PaymentRefundedExternally, by the provider's refund id), or by a
-- marketplace (ChannelRefundRequested, by its idempotency key).
CREATE TABLE kpi_refunds (
    refund_key  text           PRIMARY KEY,
    kind        text           NOT NULL CHECK (kind IN ('payment', 'provider', 'channel')),
    order_id    text           NOT NULL,
    return_id   text,
    currency    char(3)        NOT NULL,
    amount      numeric(18, 4) NOT NULL,
    refunded_at timestamptz    NOT NULL
);
CREATE INDEX kpi_refunds_at ON kpi_refunds (refunded_at);

-- Order lines waiting for stock (StockBackordered).
CREATE TABLE kpi_backorders (
    order_id       text        NOT NULL,
    line_id        text        NOT NULL,
    location       text        NOT NULL,
    sku            text        NOT NULL,
    quantity       integer     NOT NULL,
    kind           text        NOT NULL,
    backordered_at timestamptz NOT NULL,
    PRIMARY KEY (order_id, line_id, location)
);
CREATE INDEX kpi_backorders_at ON kpi_backorders (backordered_at);

-- A SKU's last known availability (AvailabilityChanged) and its stock-outs: from the change
-- that took it to 0 or below until the one that brought it back above 0.
CREATE TABLE kpi_stock_levels (
    sku       text        PRIMARY KEY,
    available integer     NOT NULL,
    as_of     timestamptz NOT NULL
);

CREATE TABLE kpi_stock_outs (
    sku        text        NOT NULL,
    started_at timestamptz NOT NULL,
    ended_at   timestamptz,
    PRIMARY KEY (sku, started_at)
);
CREATE INDEX kpi_stock_outs_started ON kpi_stock_outs (started_at);

-- Low-stock alerts (LowStock): once per crossing of a SKU's reorder point at a location, open
-- until the stock recovered (StockRecovered); an alert while one is open is the same crossing.
CREATE TABLE kpi_low_stock (
    sku           text        NOT NULL,
    location      text        NOT NULL,
    alerted_at    timestamptz NOT NULL,
    available     integer     NOT NULL,
    reorder_point integer     NOT NULL,
    recovered_at  timestamptz,
    PRIMARY KEY (sku, location, alerted_at)
);
CREATE INDEX kpi_low_stock_alerted ON kpi_low_stock (alerted_at);
