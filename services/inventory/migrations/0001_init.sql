-- inventory: SKUs, stock per location, reservations, the stock ledger, and what makes the
-- saga's commands idempotent (one outcome per order, one commit per fulfilment).

CREATE TABLE skus (
    sku          text        PRIMARY KEY,
    name         text        NOT NULL,
    barcode      text,
    weight_grams integer     CHECK (weight_grams >= 0),
    length_mm    integer     CHECK (length_mm > 0),
    width_mm     integer     CHECK (width_mm > 0),
    height_mm    integer     CHECK (height_mm > 0),
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    -- dimensions are all given or all absent
    CHECK ((length_mm IS NULL) = (width_mm IS NULL) AND (width_mm IS NULL) = (height_mm IS NULL))
);

CREATE UNIQUE INDEX skus_barcode_key ON skus (barcode) WHERE barcode IS NOT NULL;

-- The constraints are the last line of defence: the code locks and checks before it writes.
CREATE TABLE stock (
    sku        text        NOT NULL REFERENCES skus (sku),
    location   text        NOT NULL,
    on_hand    bigint      NOT NULL DEFAULT 0,
    reserved   bigint      NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, location),
    CONSTRAINT stock_on_hand_not_negative CHECK (on_hand >= 0),
    CONSTRAINT stock_reserved_not_negative CHECK (reserved >= 0),
    CONSTRAINT stock_reserved_within_on_hand CHECK (reserved <= on_hand)
);

-- One row per order that inventory has heard of: the answer to its ReserveStock (repeated as is
-- when the command is re-sent) and whether its stock was released (no reservation after that).
CREATE TABLE order_reservations (
    order_id       text        PRIMARY KEY,
    outcome        text        CHECK (outcome IN ('reserved', 'failed')),
    failure_reason text,
    allocations    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    short_lines    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    answered_at    timestamptz,
    released_at    timestamptz,
    release_reason text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'failed') = (failure_reason IS NOT NULL)),
    CHECK ((outcome IS NULL) = (answered_at IS NULL))
);

-- Stock held for one order line at one location. A reservation is 'reserved' while part of it
-- is outstanding; then 'committed' when any of it shipped, else 'released'.
CREATE TABLE reservations (
    order_id   text        NOT NULL,
    line_id    text        NOT NULL,
    location   text        NOT NULL,
    sku        text        NOT NULL,
    position   integer     NOT NULL,
    quantity   bigint      NOT NULL CHECK (quantity > 0),
    committed  bigint      NOT NULL DEFAULT 0 CHECK (committed >= 0),
    released   bigint      NOT NULL DEFAULT 0 CHECK (released >= 0),
    status     text        NOT NULL DEFAULT 'reserved'
                           CHECK (status IN ('reserved', 'released', 'committed')),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (order_id, line_id, location),
    FOREIGN KEY (sku, location) REFERENCES stock (sku, location),
    CHECK (committed + released <= quantity),
    CHECK ((status = 'reserved') = (committed + released < quantity)),
    CHECK (status <> 'released' OR committed = 0),
    CHECK (status <> 'committed' OR committed > 0)
);

CREATE INDEX reservations_open ON reservations (order_id) WHERE status = 'reserved';

-- Every change of on_hand or reserved, with why and for what.
CREATE TABLE stock_ledger (
    id             bigserial   PRIMARY KEY,
    sku            text        NOT NULL,
    location       text        NOT NULL,
    on_hand_delta  bigint      NOT NULL,
    reserved_delta bigint      NOT NULL,
    on_hand_after  bigint      NOT NULL,
    reserved_after bigint      NOT NULL,
    reason         text        NOT NULL,
    order_id       text,
    reference      text,
    detail         text,
    at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    CHECK (on_hand_delta <> 0 OR reserved_delta <> 0)
);

CREATE INDEX stock_ledger_by_sku ON stock_ledger (sku, id DESC);
CREATE INDEX stock_ledger_by_order ON stock_ledger (order_id) WHERE order_id IS NOT NULL;

-- CommitStock is applied once per fulfilment; a re-sent one is answered from here.
CREATE TABLE committed_fulfilments (
    fulfilment_id text        PRIMARY KEY,
    order_id      text        NOT NULL,
    location      text        NOT NULL,
    lines         jsonb       NOT NULL,
    committed_at  timestamptz NOT NULL DEFAULT now()
);
