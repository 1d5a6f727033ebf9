-- Several gateways (test, stripe, ...) chosen per method, channel and currency: each payment
-- remembers the one that authorised it, so its captures, voids and refunds go there too.
-- Payments made before were all the built-in test gateway's, and so are those a replica still on
-- the previous version inserts during a rolling upgrade (hence the default stays).
ALTER TABLE payments ADD COLUMN gateway text NOT NULL DEFAULT 'test';
CREATE INDEX payments_by_gateway_reference ON payments (gateway, gateway_reference);

-- Provider webhook events already handled: a delivery repeated by the provider changes nothing.
CREATE TABLE gateway_webhook_events (
    gateway     text        NOT NULL,
    event_id    text        NOT NULL,
    event_type  text        NOT NULL,
    received_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (gateway, event_id)
);

-- Disputes (chargebacks) the provider reported on a payment.
CREATE TABLE payment_disputes (
    dispute_id  text        PRIMARY KEY,
    payment_id  uuid        NOT NULL REFERENCES payments (payment_id),
    order_id    text        NOT NULL,
    gateway     text        NOT NULL,
    amount      numeric     NOT NULL,
    currency    text        NOT NULL,
    reason      text        NOT NULL,
    status      text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX payment_disputes_by_order ON payment_disputes (order_id);
