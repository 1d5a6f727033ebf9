-- A cancel passed on to a partner: a fulfilment cancelled after its request went out (sent or
-- published) gets a second dispatch, a `cancellation` (with the PO number in its document for a
-- dropship supplier; the po_number column stays the purchase order's own), sent like the
-- request. One request and at most one cancellation per fulfilment. A cancellation has no
-- deadline to confirm by: its deadline_at is when it was written, and the overdue sweep skips it.
ALTER TABLE partner_dispatches DROP CONSTRAINT partner_dispatches_request_kind_check;
ALTER TABLE partner_dispatches ADD CONSTRAINT partner_dispatches_request_kind_check
    CHECK (request_kind IN ('fulfilment_request', 'purchase_order', 'cancellation'));
ALTER TABLE partner_dispatches DROP CONSTRAINT partner_dispatches_fulfilment_id_key;
CREATE UNIQUE INDEX partner_dispatches_one_of_each ON partner_dispatches
    (fulfilment_id, (request_kind = 'cancellation'));
