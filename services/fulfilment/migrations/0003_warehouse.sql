-- The warehouse floor: locations with their kind and address, zones and bins on the walking
-- path, SKUs (barcode, size, weight) and the bins they lie in, the box catalogue; pick lists and
-- their stops; parcels with their lines, labels and tracking numbers.

-- A stock location as fulfilment knows it; `code` is the location string inventory allocates
-- from. A location without a row here is shipped through the plain ship call, as before.
CREATE TABLE locations (
    code       text        PRIMARY KEY,
    kind       text        NOT NULL
        CHECK (kind IN ('warehouse', 'store', '3pl', 'dropship_supplier')),
    name       text        NOT NULL,
    address    jsonb       NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE zones (
    location text NOT NULL REFERENCES locations (code) ON DELETE CASCADE,
    code     text NOT NULL,
    name     text NOT NULL,
    PRIMARY KEY (location, code)
);

-- `sequence` is the bin's rank on the pick path; (x_m, y_m) its place on the floor.
CREATE TABLE bins (
    location text             NOT NULL,
    code     text             NOT NULL,
    zone     text             NOT NULL,
    sequence integer          NOT NULL,
    x_m      double precision NOT NULL,
    y_m      double precision NOT NULL,
    PRIMARY KEY (location, code),
    FOREIGN KEY (location, zone) REFERENCES zones (location, code) ON DELETE CASCADE
);

CREATE TABLE items (
    sku         text    PRIMARY KEY,
    barcode     text    NOT NULL UNIQUE,
    description text    NOT NULL DEFAULT '',
    length_mm   integer NOT NULL CHECK (length_mm > 0),
    width_mm    integer NOT NULL CHECK (width_mm > 0),
    height_mm   integer NOT NULL CHECK (height_mm > 0),
    weight_g    integer NOT NULL CHECK (weight_g > 0)
);

-- Which bins hold a SKU at a location (a SKU may lie in several).
CREATE TABLE bin_skus (
    location text NOT NULL,
    bin      text NOT NULL,
    sku      text NOT NULL,
    PRIMARY KEY (location, bin, sku),
    FOREIGN KEY (location, bin) REFERENCES bins (location, code) ON DELETE CASCADE
);
CREATE INDEX bin_skus_by_sku ON bin_skus (location, sku);

CREATE TABLE boxes (
    code         text    PRIMARY KEY,
    length_mm    integer NOT NULL CHECK (length_mm > 0),
    width_mm     integer NOT NULL CHECK (width_mm > 0),
    height_mm    integer NOT NULL CHECK (height_mm > 0),
    max_weight_g integer NOT NULL CHECK (max_weight_g > 0),
    tare_g       integer NOT NULL CHECK (tare_g >= 0)
);

-- When the fulfilment was put on pick lists (once; zone picking puts it on several).
ALTER TABLE fulfilments ADD COLUMN picking_released_at timestamptz;
ALTER TABLE fulfilments DROP CONSTRAINT fulfilments_status_check;
ALTER TABLE fulfilments ADD CONSTRAINT fulfilments_status_check CHECK (
    status IN ('created', 'partially_shipped', 'shipped', 'delivered', 'cancelled', 'failed'));
CREATE INDEX fulfilments_to_pick ON fulfilments (location, created_at)
    WHERE status = 'created' AND picking_released_at IS NULL;

CREATE TABLE pick_lists (
    pick_list_id text        PRIMARY KEY,
    location     text        NOT NULL REFERENCES locations (code),
    strategy     text        NOT NULL,
    wave         integer,
    zone         text,
    status       text        NOT NULL,
    picker       text,
    walk_m       double precision NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    claimed_at   timestamptz,
    finished_at  timestamptz
);
CREATE INDEX pick_lists_open ON pick_lists (location, status, created_at);

CREATE TABLE pick_list_fulfilments (
    pick_list_id  text NOT NULL REFERENCES pick_lists (pick_list_id),
    fulfilment_id text NOT NULL REFERENCES fulfilments (fulfilment_id),
    tote          integer,
    PRIMARY KEY (pick_list_id, fulfilment_id)
);
CREATE INDEX pick_list_fulfilments_by_fulfilment ON pick_list_fulfilments (fulfilment_id);

-- One stop of a pick list: take `quantity` of `sku` from `bin`, shared out to fulfilments as
-- `puts` says ([{fulfilment_id, order_id, quantity, tote}]). Units are picked in put order.
CREATE TABLE pick_stops (
    pick_list_id text    NOT NULL REFERENCES pick_lists (pick_list_id),
    position     integer NOT NULL,
    bin          text    NOT NULL,
    sku          text    NOT NULL,
    quantity     integer NOT NULL CHECK (quantity > 0),
    puts         jsonb   NOT NULL,
    picked       integer NOT NULL DEFAULT 0 CHECK (picked >= 0),
    short        integer NOT NULL DEFAULT 0 CHECK (short >= 0 AND picked + short <= quantity),
    PRIMARY KEY (pick_list_id, position)
);

-- A confirmed pick by the scan id the picker's device sent: a retried confirmation is one pick.
CREATE TABLE pick_confirmations (
    pick_list_id text NOT NULL REFERENCES pick_lists (pick_list_id),
    scan_id      text NOT NULL,
    PRIMARY KEY (pick_list_id, scan_id)
);

CREATE TABLE parcels (
    parcel_id         text        PRIMARY KEY,
    fulfilment_id     text        NOT NULL REFERENCES fulfilments (fulfilment_id),
    number            integer     NOT NULL,
    status            text        NOT NULL
        CHECK (status IN ('open', 'packed', 'held', 'labelled', 'shipped', 'delivered')),
    box               text        NOT NULL REFERENCES boxes (code),
    expected_weight_g integer     NOT NULL,
    measured_weight_g integer,
    hold_reason       text,
    carrier           text,
    service           text,
    tracking_number   text,
    tracking_url      text,
    label_id          text,
    label_cost        numeric,
    label_currency    text,
    label_pdf         bytea,
    label_zpl         text,
    labels_voided     integer     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),
    shipped_at        timestamptz,
    delivered_at      timestamptz,
    UNIQUE (fulfilment_id, number)
);
CREATE UNIQUE INDEX parcels_tracking ON parcels (carrier, tracking_number)
    WHERE tracking_number IS NOT NULL;

CREATE TABLE parcel_lines (
    parcel_id text    NOT NULL REFERENCES parcels (parcel_id),
    sku       text    NOT NULL,
    quantity  integer NOT NULL CHECK (quantity > 0),
    scanned   integer NOT NULL DEFAULT 0 CHECK (scanned >= 0 AND scanned <= quantity),
    PRIMARY KEY (parcel_id, sku)
);

-- Tracking numbers the built-in table-rate carrier issued: one per parcel, from its range.
CREATE TABLE issued_tracking_numbers (
    range_key   text    NOT NULL,
    parcel_ref  text    NOT NULL,
    range_index integer NOT NULL,
    PRIMARY KEY (range_key, parcel_ref),
    UNIQUE (range_key, range_index)
);

-- Parcels of one fulfilment have tracking numbers of their own: an update is one per number.
ALTER TABLE tracking_events DROP CONSTRAINT tracking_events_once;
ALTER TABLE tracking_events ADD CONSTRAINT tracking_events_once
    UNIQUE NULLS NOT DISTINCT (fulfilment_id, tracking_number, status, reported_at, description);
