-- What left in shipments of each order (units per SKU, from OrderStatusChanged.shipped): less
-- than the lines when part of the order was cancelled after other parts shipped, and only
-- that can be returned. NULL: not told (events of before parcels), every line counts.
ALTER TABLE orders ADD COLUMN shipped jsonb;
