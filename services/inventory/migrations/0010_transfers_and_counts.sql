-- Transfers of stock between locations (requested, in transit, received in full or in part,
-- cancelled), and what makes their POSTs idempotent; cycle counts (each a set of `count` rows
-- in the stock ledger) and the answer each gave.

-- `idempotency_key` / `request_hash`: the Idempotency-Key of the POST that created the transfer
-- and a digest of that request (a repeat answers with this transfer, another request is refused).
CREATE TABLE transfers (
    transfer_id     text        PRIMARY KEY,
    from_location   text        NOT NULL,
    to_location     text        NOT NULL,
    reference       text,
    expected_on     date,
    status          text        NOT NULL DEFAULT 'requested'
                                CHECK (status IN ('requested', 'in_transit', 'partially_received',
                                                  'received', 'cancelled')),
    idempotency_key text        UNIQUE,
    request_hash    text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    shipped_at      timestamptz,
    received_at     timestamptz,
    cancelled_at    timestamptz,
    updated_at      timestamptz NOT NULL DEFAULT now(),
    CHECK (from_location <> to_location),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL)),
    CHECK ((status = 'requested') = (shipped_at IS NULL) OR status = 'cancelled')
);
CREATE INDEX transfers_by_status ON transfers (status, created_at DESC);

-- What a transfer moves per SKU. Once shipped, `quantity` left the source; `received` arrived at
-- the destination; `returned` went back on hand at the source (cancelled in transit). What is
-- still in transit is quantity - received - returned while the transfer is shipped.
CREATE TABLE transfer_lines (
    transfer_id text   NOT NULL REFERENCES transfers (transfer_id),
    sku         text   NOT NULL REFERENCES skus (sku),
    quantity    bigint NOT NULL CHECK (quantity > 0),
    received    bigint NOT NULL DEFAULT 0 CHECK (received >= 0),
    returned    bigint NOT NULL DEFAULT 0 CHECK (returned >= 0),
    PRIMARY KEY (transfer_id, sku),
    CHECK (received + returned <= quantity)
);
CREATE INDEX transfer_lines_by_sku ON transfer_lines (sku);

-- Each receipt of a transfer, under the id the client gave it (or its Idempotency-Key): a repeat
-- of a receipt answers with the first one and moves nothing.
CREATE TABLE transfer_receipts (
    transfer_id  text        NOT NULL REFERENCES transfers (transfer_id),
    receipt_id   text        NOT NULL,
    request_hash text        NOT NULL,
    lines        jsonb       NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (transfer_id, receipt_id)
);

-- Each applied cycle count and its answer (per SKU: before, counted, delta, ledger id), so a
-- POST repeated with the same Idempotency-Key answers the same and moves nothing twice.
CREATE TABLE stock_counts (
    count_id        text        PRIMARY KEY,
    location        text        NOT NULL,
    reason          text        NOT NULL,
    reference       text,
    lines           jsonb       NOT NULL,
    idempotency_key text        UNIQUE,
    request_hash    text,
    counted_at      timestamptz NOT NULL DEFAULT now(),
    CHECK ((idempotency_key IS NULL) = (request_hash IS NULL))
);
