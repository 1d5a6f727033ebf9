-- A fulfilment may leave in several parcels, each captured on its own: a capture records the
-- shipment it was for (NULL: the whole fulfilment, as every capture recorded before).
ALTER TABLE payment_operations ADD COLUMN shipment_id text;
