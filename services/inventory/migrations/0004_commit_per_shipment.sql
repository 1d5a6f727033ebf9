-- A fulfilment may leave in several parcels: CommitStock is applied once per shipment, keyed by
-- its shipment id (the fulfilment id when the whole fulfilment shipped at once, as every commit
-- recorded before this migration did). A fulfilment may now have several rows.

ALTER TABLE committed_fulfilments ADD COLUMN shipment_id text;
UPDATE committed_fulfilments SET shipment_id = fulfilment_id;
ALTER TABLE committed_fulfilments ALTER COLUMN shipment_id SET NOT NULL;
ALTER TABLE committed_fulfilments DROP CONSTRAINT committed_fulfilments_pkey;
ALTER TABLE committed_fulfilments ADD CONSTRAINT committed_fulfilments_pkey PRIMARY KEY (shipment_id);
CREATE INDEX committed_fulfilments_by_fulfilment ON committed_fulfilments (fulfilment_id);
