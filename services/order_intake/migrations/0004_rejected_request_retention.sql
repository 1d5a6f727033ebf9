-- Refused requests are kept for an operator within limits (OMS_REJECTED_REQUEST_*): a body is
-- cut to a cap (body_size keeps its real size), and rows are pruned by age and by count.
ALTER TABLE rejected_requests ADD COLUMN body_size integer;
CREATE INDEX rejected_requests_received_at ON rejected_requests (received_at);
