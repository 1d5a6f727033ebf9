-- Channel intake: webhook deliveries already answered, cancellations that arrived before their
-- order, and the customer notifications to send by e-mail.

-- One row per channel delivery id (X-Shopify-Webhook-Id, X-WC-Webhook-Delivery-ID): a
-- re-delivery is answered from here with the same order and outcome, never applied twice.
CREATE TABLE channel_deliveries (
    channel      text        NOT NULL,
    delivery_id  text        NOT NULL,
    external_id  text,
    order_id     text        REFERENCES orders (order_id),
    outcome      text        NOT NULL CHECK (outcome IN (
                     'created', 'duplicate', 'cancel_requested', 'cancel_recorded',
                     'cancel_refused', 'ignored')),
    detail       jsonb       NOT NULL DEFAULT '{}'::jsonb,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (channel, delivery_id)
);

-- A channel cancelled an order the OMS has not received yet (webhooks are not ordered): the
-- order is cancelled as soon as it arrives.
CREATE TABLE channel_pending_cancels (
    channel      text        NOT NULL,
    external_id  text        NOT NULL,
    reason       text        NOT NULL,
    received_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (channel, external_id)
);

-- Customer notifications, keyed by the CustomerNotification message id, rendered when received
-- and sent by e-mail after the transaction that recorded them committed.
CREATE TABLE notifications (
    notification_id  uuid        PRIMARY KEY,
    order_id         text        NOT NULL,
    kind             text        NOT NULL,
    recipient        text,
    subject          text        NOT NULL,
    body             text        NOT NULL,
    status           text        NOT NULL DEFAULT 'pending'
                                 CHECK (status IN ('pending', 'sent', 'logged', 'skipped', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    last_error       text,
    next_attempt_at  timestamptz NOT NULL DEFAULT clock_timestamp(),
    created_at       timestamptz NOT NULL DEFAULT clock_timestamp(),
    sent_at          timestamptz
);
CREATE INDEX notifications_due ON notifications (next_attempt_at) WHERE status = 'pending';
CREATE INDEX notifications_by_order ON notifications (order_id, created_at);
