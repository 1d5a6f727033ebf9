-- Short picks: a bin found empty on the floor. The missing units are written off where they
-- were reserved (out of the order's reservation and out of stock on hand: they are not there),
-- and ReallocateStock reserves as many at other locations.

-- Units of a reservation written off after a short pick. A reservation is 'reserved' while
-- part of it is outstanding; then 'committed' when any of it shipped, else 'released' when any
-- of it was released, else 'written_off'.
ALTER TABLE reservations ADD COLUMN written_off bigint NOT NULL DEFAULT 0
    CONSTRAINT reservations_written_off_check CHECK (written_off >= 0);
ALTER TABLE reservations DROP CONSTRAINT reservations_status_check;
ALTER TABLE reservations DROP CONSTRAINT reservations_check;
ALTER TABLE reservations DROP CONSTRAINT reservations_check1;
ALTER TABLE reservations ADD CONSTRAINT reservations_status_check
    CHECK (status IN ('reserved', 'released', 'committed', 'written_off'));
ALTER TABLE reservations ADD CONSTRAINT reservations_within_quantity
    CHECK (committed + released + written_off <= quantity);
ALTER TABLE reservations ADD CONSTRAINT reservations_reserved_while_outstanding
    CHECK ((status = 'reserved') = (committed + released + written_off < quantity));
ALTER TABLE reservations ADD CONSTRAINT reservations_written_off_only
    CHECK (status <> 'written_off' OR (committed = 0 AND released = 0));

-- One row per short pick inventory applied (ReallocateStock or WriteOffShortPick), so a re-sent
-- command is answered from here and never applied twice.
CREATE TABLE short_picks (
    short_id    text        PRIMARY KEY,
    order_id    text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('reallocate', 'write_off')),
    sku         text        NOT NULL,
    location    text        NOT NULL,
    quantity    bigint      NOT NULL CHECK (quantity > 0),
    written_off bigint      NOT NULL CHECK (written_off >= 0 AND written_off <= quantity),
    outcome     text        NOT NULL CHECK (outcome IN ('reallocated', 'failed', 'written_off')),
    allocations jsonb       NOT NULL DEFAULT '[]'::jsonb,
    available   bigint,
    reason      text,
    applied_at  timestamptz NOT NULL DEFAULT now(),
    CHECK ((outcome = 'failed') = (reason IS NOT NULL))
);
CREATE INDEX short_picks_by_order ON short_picks (order_id);
