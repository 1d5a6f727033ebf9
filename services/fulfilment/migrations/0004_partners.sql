-- 3PL and dropship partners: how each partner location is reached (its connector), the requests
-- sent to them (an outbox for HTTP, and the record of every request: its deadline, whether it was
-- confirmed, whether it went overdue), and parcels the partner packed in boxes of its own.

-- How a `3pl` or `dropship_supplier` location is reached. `webhook`: the request is POSTed to
-- `url`, signed with the location's secret (from settings, never stored here); `kafka`: it is
-- published on oms.fulfilment.partners.v1, keyed by the location. `deadline_hours`: how long
-- the partner has to confirm the shipment before an operator is alerted.
CREATE TABLE partner_connectors (
    location       text        PRIMARY KEY REFERENCES locations (code) ON DELETE CASCADE,
    kind           text        NOT NULL CHECK (kind IN ('webhook', 'kafka')),
    url            text,
    deadline_hours integer     NOT NULL CHECK (deadline_hours > 0 AND deadline_hours <= 8760),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now(),
    CHECK ((kind = 'webhook') = (url IS NOT NULL))
);

CREATE SEQUENCE purchase_order_numbers;

-- One request per partner fulfilment, written in the transaction that created the fulfilment.
-- pending: a webhook to send (at next_attempt_at); sent: the partner answered 2xx; published:
-- handed to the outbox (kafka connector); dead: given up after the last attempt (or no
-- connector), shown to operators, who may retry it; withdrawn: the fulfilment was cancelled
-- before the request went out, so it never will.
CREATE TABLE partner_dispatches (
    dispatch_id     text        PRIMARY KEY,  -- uuid5(fulfilment id): the partner's dedupe key
    fulfilment_id   text        NOT NULL UNIQUE REFERENCES fulfilments (fulfilment_id),
    order_id        text        NOT NULL,
    location        text        NOT NULL,
    request_kind    text        NOT NULL
        CHECK (request_kind IN ('fulfilment_request', 'purchase_order')),
    po_number       text        UNIQUE,
    request         jsonb       NOT NULL,  -- the document sent, without the PO's PDF
    po_pdf          bytea,
    status          text        NOT NULL
        CHECK (status IN ('pending', 'sent', 'published', 'dead', 'withdrawn')),
    attempts        integer     NOT NULL DEFAULT 0,
    next_attempt_at timestamptz,
    last_error      text,
    created_at      timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    deadline_at     timestamptz NOT NULL,
    confirmed_at    timestamptz,
    overdue_at      timestamptz,
    CHECK ((request_kind = 'purchase_order') = (po_number IS NOT NULL))
);
CREATE INDEX partner_dispatches_due ON partner_dispatches (next_attempt_at)
    WHERE status = 'pending';
CREATE INDEX partner_dispatches_by_status ON partner_dispatches (status, created_at);
CREATE INDEX partner_dispatches_deadline ON partner_dispatches (deadline_at)
    WHERE confirmed_at IS NULL AND overdue_at IS NULL;

-- A partner packs in boxes of its own: its parcels name no box of our catalogue.
ALTER TABLE parcels ALTER COLUMN box DROP NOT NULL;
