-- payment: authorisations, captures, voids and refunds, each gateway call under an idempotency key.

-- One row per authorisation attempt. At most one attempt per order holds an authorisation (is not
-- declined): an order is never authorised twice.
CREATE TABLE payments (
    payment_id        uuid        PRIMARY KEY,
    order_id          text        NOT NULL,
    idempotency_key   text        NOT NULL UNIQUE,
    amount            numeric     NOT NULL,
    currency          text        NOT NULL,
    method            text,
    status            text        NOT NULL,
    gateway_reference text,
    decline_code      text,
    decline_reason    text,
    captured_total    numeric     NOT NULL DEFAULT 0,
    refunded_total    numeric     NOT NULL DEFAULT 0,
    created_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT payments_status_known CHECK (status IN (
        'authorized', 'declined', 'voided', 'partially_captured', 'captured',
        'partially_refunded', 'refunded')),
    CONSTRAINT payments_amount_positive CHECK (amount > 0),
    CONSTRAINT payments_currency_iso CHECK (currency ~ '^[A-Z]{3}$'),
    CONSTRAINT payments_captured_within_authorised
        CHECK (captured_total >= 0 AND captured_total <= amount),
    CONSTRAINT payments_refunded_within_captured
        CHECK (refunded_total >= 0 AND refunded_total <= captured_total),
    CONSTRAINT payments_authorised_has_reference
        CHECK (status = 'declined' OR gateway_reference IS NOT NULL),
    CONSTRAINT payments_declined_or_voided_moves_no_money
        CHECK (status NOT IN ('declined', 'voided') OR captured_total = 0)
);

CREATE UNIQUE INDEX payments_one_authorisation_per_order
    ON payments (order_id) WHERE status <> 'declined';
CREATE INDEX payments_by_order ON payments (order_id, created_at);

-- Every gateway operation. A key answered by the gateway (succeeded or declined) is answered
-- once: re-sent, the stored answer is emitted again. A timeout is ambiguous, so it stays history
-- and the key may be tried again (the gateway dedupes it).
CREATE TABLE payment_operations (
    operation_id      bigserial   PRIMARY KEY,
    payment_id        uuid        NOT NULL REFERENCES payments (payment_id),
    order_id          text        NOT NULL,
    kind              text        NOT NULL,
    idempotency_key   text        NOT NULL,
    amount            numeric     NOT NULL,
    currency          text        NOT NULL,
    outcome           text        NOT NULL,
    gateway_reference text,
    decline_code      text,
    reason            text,
    fulfilment_id     text,
    return_id         text,
    answer_type       text,
    answer            jsonb,
    at                timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT payment_operations_kind_known
        CHECK (kind IN ('authorize', 'capture', 'void', 'refund')),
    CONSTRAINT payment_operations_outcome_known
        CHECK (outcome IN ('succeeded', 'declined', 'timed_out')),
    CONSTRAINT payment_operations_amount_positive CHECK (amount > 0),
    CONSTRAINT payment_operations_answer_kept
        CHECK (outcome = 'timed_out' OR (answer IS NOT NULL AND answer_type IS NOT NULL))
);

CREATE UNIQUE INDEX payment_operations_answered_once
    ON payment_operations (idempotency_key) WHERE outcome <> 'timed_out';
CREATE INDEX payment_operations_by_order ON payment_operations (order_id, operation_id);

-- The built-in test gateway's own books, as a remote provider keeps them. Written on the gateway's
-- own connection, outside the handler's transaction: they survive a rollback or a crash, which is
-- what makes a retried call with the same idempotency key find the first one.
CREATE TABLE test_gateway_ledger (
    idempotency_key         text        PRIMARY KEY,
    operation               text        NOT NULL,
    authorization_reference text,
    amount                  numeric,
    currency                text,
    token                   text,
    approved                boolean     NOT NULL,
    reference               text,
    decline_code            text,
    reason                  text,
    recorded_at             timestamptz NOT NULL DEFAULT clock_timestamp(),
    CONSTRAINT test_gateway_ledger_operation_known
        CHECK (operation IN ('authorize', 'capture', 'void', 'refund'))
);

CREATE INDEX test_gateway_ledger_by_authorization
    ON test_gateway_ledger (authorization_reference);
