-- Order edits from channels (an update of a known order: another shipping address, other
-- lines): a delivery may now be answered edit_applied, edit_requested (asked of fulfilment)
-- or edit_refused, and is remembered with that outcome like any other.
ALTER TABLE channel_deliveries DROP CONSTRAINT channel_deliveries_outcome_check;
ALTER TABLE channel_deliveries ADD CONSTRAINT channel_deliveries_outcome_check CHECK (outcome IN (
    'created', 'duplicate', 'cancel_requested', 'cancel_recorded', 'cancel_refused', 'ignored',
    'edit_applied', 'edit_requested', 'edit_refused'));
