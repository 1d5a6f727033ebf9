-- Short picks: units a bin did not hold no longer belong to their fulfilment. It ships what is
-- left, its last parcel completes it, and one none of whose units was found ends cancelled
-- (cancel_reason 'short_pick').
ALTER TABLE fulfilment_lines ADD COLUMN short integer NOT NULL DEFAULT 0;
ALTER TABLE fulfilment_lines ADD CONSTRAINT fulfilment_lines_short_check
    CHECK (short >= 0 AND short <= quantity);

-- Units re-allocated after a short pick get fulfilments of their own (AddFulfilment), with ids
-- from the order, the location and the short; the order may already have a fulfilment at that
-- location, so (order, location) is no longer unique.
ALTER TABLE fulfilments ADD COLUMN reallocated_for_short text;
ALTER TABLE fulfilments DROP CONSTRAINT fulfilments_order_id_location_key;
CREATE INDEX fulfilments_by_order ON fulfilments (order_id);
