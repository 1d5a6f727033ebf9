-- Shipping address changes the order saga asked for (UpdateShippingAddress, an order edit from
-- a sales channel) and the answer each got: a re-sent command answers the same, even when the
-- floor has moved on since. `fulfilments`: the ones updated, or the ones that stopped it.
CREATE TABLE address_changes (
    change_id   text        PRIMARY KEY,
    order_id    text        NOT NULL REFERENCES orders (order_id),
    outcome     text        NOT NULL CHECK (outcome IN ('updated', 'refused')),
    code        text,
    reason      text,
    fulfilments text[]      NOT NULL DEFAULT '{}',
    decided_at  timestamptz NOT NULL DEFAULT now()
);
