-- Dead letters the console sent back to their topic: one row per letter (its topic, partition
-- and offset in the dead-letter topic), written in the same transaction that waits for Kafka's
-- acknowledgement, so a second click (or a second console replica) finds the row and replays
-- nothing.
CREATE TABLE dead_letter_replays (
    topic          text        NOT NULL,
    dlq_partition  integer     NOT NULL,
    dlq_offset     bigint      NOT NULL,
    service        text        NOT NULL,
    original_topic text        NOT NULL,
    replayed_by    text        NOT NULL,
    replayed_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (topic, dlq_partition, dlq_offset)
);
