-- fulfilment: one fulfilment per order and stock location, its lines, and carrier tracking.

-- What fulfilment remembers per order, beyond its fulfilments: that the order was cancelled, so
-- a late or re-sent CreateFulfilment never resurrects it. The row is also the lock that
-- serialises CreateFulfilment and CancelFulfilment of one order.
CREATE TABLE orders (
    order_id      text        PRIMARY KEY,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    cancelled_at  timestamptz,
    cancel_reason text
);

CREATE TABLE fulfilments (
    fulfilment_id    text        PRIMARY KEY,  -- uuid5(order id, location)
    order_id         text        NOT NULL REFERENCES orders (order_id),
    location         text        NOT NULL,
    status           text        NOT NULL
        CHECK (status IN ('created', 'shipped', 'delivered', 'cancelled', 'failed')),
    shipping_address jsonb       NOT NULL,
    shipping_method  text,
    carrier          text,
    tracking_number  text,
    cancel_reason    text,
    failure_reason   text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    shipped_at       timestamptz,
    delivered_at     timestamptz,
    cancelled_at     timestamptz,
    failed_at        timestamptz,
    UNIQUE (order_id, location),
    CHECK ((carrier IS NULL) = (tracking_number IS NULL))
);

-- Carrier webhooks find the shipment by carrier and tracking number.
CREATE UNIQUE INDEX fulfilments_tracking ON fulfilments (carrier, tracking_number)
    WHERE tracking_number IS NOT NULL;

CREATE TABLE fulfilment_lines (
    fulfilment_id text    NOT NULL REFERENCES fulfilments (fulfilment_id),
    sku           text    NOT NULL,
    quantity      integer NOT NULL CHECK (quantity > 0),
    PRIMARY KEY (fulfilment_id, sku)
);

-- Every tracking update a carrier sent. The same update sent twice is kept once: an update is
-- identified by its status, the carrier's time (when given) and its description.
CREATE TABLE tracking_events (
    id              bigserial   PRIMARY KEY,
    fulfilment_id   text        NOT NULL REFERENCES fulfilments (fulfilment_id),
    carrier         text        NOT NULL,
    tracking_number text        NOT NULL,
    status          text        NOT NULL,
    reported_at     timestamptz,
    description     text        NOT NULL DEFAULT '',
    received_at     timestamptz NOT NULL DEFAULT now(),
    CONSTRAINT tracking_events_once
        UNIQUE NULLS NOT DISTINCT (fulfilment_id, status, reported_at, description)
);
