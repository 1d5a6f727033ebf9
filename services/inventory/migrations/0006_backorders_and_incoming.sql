-- Backorders and pre-orders, and incoming stock (purchase orders / advance shipping notices).

-- What an order short of a SKU does: `deny` (rejected, as before), `backorder` (accepted, it
-- waits in the SKU's queue for stock) or `preorder` (the same, for a SKU not released yet:
-- `release_date` is when it is expected). `fill_whole_first`: stock that arrives goes to the
-- oldest backorders it can fill whole before it tops up an older one in part.
ALTER TABLE skus
    ADD COLUMN backorder_policy text NOT NULL DEFAULT 'deny'
        CONSTRAINT skus_backorder_policy_check
        CHECK (backorder_policy IN ('deny', 'backorder', 'preorder')),
    ADD COLUMN release_date date,
    ADD COLUMN fill_whole_first boolean NOT NULL DEFAULT false,
    ADD CONSTRAINT skus_preorder_has_release_date
        CHECK (backorder_policy <> 'preorder' OR release_date IS NOT NULL);

-- An order's answer may now be 'backordered': part of it waits for stock.
ALTER TABLE order_reservations DROP CONSTRAINT order_reservations_outcome_check;
ALTER TABLE order_reservations ADD CONSTRAINT order_reservations_outcome_check
    CHECK (outcome IN ('reserved', 'failed', 'backordered'));
ALTER TABLE order_reservations ADD COLUMN backordered jsonb NOT NULL DEFAULT '[]'::jsonb;

-- The queue: units of an order line waiting for stock of a SKU, oldest (`seq`) first. `location`
-- is where the order waits for them (filled from elsewhere when stock arrives there first).
-- `filled` units are already reserved for the order (in `reservations`). 'queued' until every
-- unit is filled ('filled') or the order was released ('released').
CREATE TABLE backorders (
    seq         bigserial   NOT NULL UNIQUE,
    order_id    text        NOT NULL,
    line_id     text        NOT NULL,
    sku         text        NOT NULL REFERENCES skus (sku),
    location    text        NOT NULL,
    position    integer     NOT NULL,
    quantity    bigint      NOT NULL CHECK (quantity > 0),
    filled      bigint      NOT NULL DEFAULT 0 CHECK (filled >= 0 AND filled <= quantity),
    kind        text        NOT NULL CHECK (kind IN ('backorder', 'preorder')),
    expected_on date,
    status      text        NOT NULL DEFAULT 'queued'
                            CHECK (status IN ('queued', 'filled', 'released')),
    queued_at   timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, line_id),
    CHECK ((status = 'filled') = (filled = quantity) OR status = 'released')
);
CREATE INDEX backorders_queue ON backorders (sku, seq) WHERE status = 'queued';

-- Incoming stock: a purchase order (or advance shipping notice) from a supplier, expected at a
-- location on a date, received in full or in part.
CREATE TABLE purchase_orders (
    po_id       text        PRIMARY KEY,
    reference   text,
    supplier    text,
    location    text        NOT NULL,
    expected_on date        NOT NULL,
    status      text        NOT NULL DEFAULT 'open'
                            CHECK (status IN ('open', 'received', 'cancelled')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE purchase_order_lines (
    po_id    text   NOT NULL REFERENCES purchase_orders (po_id),
    sku      text   NOT NULL REFERENCES skus (sku),
    quantity bigint NOT NULL CHECK (quantity > 0),
    received bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
    PRIMARY KEY (po_id, sku)
);
-- What is still to come of a SKU: open purchase orders' lines not yet received in full.
CREATE INDEX purchase_order_lines_by_sku ON purchase_order_lines (sku);

-- One row per receipt against a purchase order: a receipt sent again (same id) is answered,
-- not applied twice.
CREATE TABLE purchase_order_receipts (
    receipt_id  text        PRIMARY KEY,
    po_id       text        NOT NULL REFERENCES purchase_orders (po_id),
    lines       jsonb       NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now()
);
