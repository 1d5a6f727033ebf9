-- Dead letters the dead-letter topic cannot take (too large with their headers, or refused by
-- the broker for another permanent reason): the full record is kept here, and a truncated copy
-- on the topic points at it (x-dlq-stored-id), so the partition moves on and nothing is lost.
CREATE TABLE dead_letter_overflow (
    id          bigserial   PRIMARY KEY,
    topic       text        NOT NULL,
    partition   integer     NOT NULL,
    record_offset bigint    NOT NULL,
    msg_key     bytea,
    value       bytea       NOT NULL,
    headers     jsonb       NOT NULL,
    reason      text        NOT NULL,
    error       text        NOT NULL,
    stored_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    UNIQUE (topic, partition, record_offset)
);

-- The inbox is pruned by age (OMS_INBOX_RETENTION_DAYS).
CREATE INDEX inbox_processed_at ON inbox (processed_at);
