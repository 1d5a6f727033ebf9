-- The trace context of the order saga step that created the fulfilment: shipping and delivery
-- happen later over HTTP, and their events continue the order's trace from here.
ALTER TABLE fulfilments ADD COLUMN trace_context jsonb NOT NULL DEFAULT '{}'::jsonb;
