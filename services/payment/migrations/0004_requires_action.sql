-- 3-D Secure: an authorisation may wait for the customer (the provider answered
-- `requires_action`). The payment holds its PaymentIntent's reference and counts as the order's one
-- attempt until the provider's webhook says how it ended (authorized or declined); the authorise
-- operation's answer is then replaced by that outcome, so a re-sent command gets it.
ALTER TABLE payments DROP CONSTRAINT payments_status_known;
ALTER TABLE payments ADD CONSTRAINT payments_status_known CHECK (status IN (
    'requires_action', 'authorized', 'declined', 'voided', 'partially_captured', 'captured',
    'partially_refunded', 'refunded'));

ALTER TABLE payment_operations DROP CONSTRAINT payment_operations_outcome_known;
ALTER TABLE payment_operations ADD CONSTRAINT payment_operations_outcome_known
    CHECK (outcome IN ('succeeded', 'declined', 'timed_out', 'requires_action'));
