-- Replenishment: safety stock per SKU and channel, reorder points per SKU and location with the
-- low-stock state that makes the alert fire once per crossing.

-- Units of a SKU held back from one channel, instead of the channel's default
-- (OMS_CHANNEL_SAFETY_STOCK). No row: the default applies.
CREATE TABLE sku_safety_stock (
    sku        text        NOT NULL REFERENCES skus (sku),
    channel    text        NOT NULL,
    units      bigint      NOT NULL CHECK (units >= 0),
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, channel)
);

-- A watched SKU at a location. `reorder_point` explicit, or NULL: derived from the sales
-- velocity × the lead time + `safety_units`. NULL lead / cover days: the service's defaults.
-- `low_since`: the SKU's available stock there is at or below its reorder point (LowStock was
-- emitted); cleared when it recovered above the point plus a margin (StockRecovered).
CREATE TABLE reorder_settings (
    sku            text        NOT NULL REFERENCES skus (sku),
    location       text        NOT NULL,
    reorder_point  bigint      CHECK (reorder_point >= 0),
    lead_time_days integer     CHECK (lead_time_days >= 0),
    cover_days     integer     CHECK (cover_days >= 0),
    safety_units   bigint      NOT NULL DEFAULT 0 CHECK (safety_units >= 0),
    low_since      timestamptz,
    low_point      bigint,
    updated_at     timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (sku, location),
    CHECK ((low_since IS NULL) = (low_point IS NULL))
);

-- Sales velocity: units shipped per SKU and location over the last days, read on stock changes
-- of watched SKUs and by the suggestions; only the shipped rows of the ledger.
CREATE INDEX stock_ledger_shipped ON stock_ledger (sku, location, at)
    WHERE reason = 'committed' AND on_hand_delta < 0;
