-- Holds (HoldFulfilments / ReleaseFulfilments from the order saga): an order on hold keeps its
-- reason on its row, so fulfilments created for it while held are created held; a fulfilment
-- with a hold_reason is held (the floor refuses to pick, pack, label or ship it). released_at:
-- the last release, so a re-sent ReleaseFulfilments answers with the same fulfilments.
ALTER TABLE orders ADD COLUMN hold_reason text;
ALTER TABLE orders ADD COLUMN held_at timestamptz;
ALTER TABLE orders ADD COLUMN hold_released_at timestamptz;
ALTER TABLE fulfilments ADD COLUMN hold_reason text;
ALTER TABLE fulfilments ADD COLUMN held_at timestamptz;
ALTER TABLE fulfilments ADD COLUMN hold_released_at timestamptz;
