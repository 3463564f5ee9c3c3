-- Notifications (rule N1), the stored-log publisher: what an operator or a driver is told, once
-- per session and event. Written by the processor with the log offset of the event that caused
-- it, so a replay writes none twice (like the other append-only tables).
CREATE TABLE IF NOT EXISTS notifications (
    ts DateTime64(3, 'UTC'),
    event LowCardinality(String),
    scope LowCardinality(String),
    charger_id LowCardinality(String),
    connector_id UInt16,
    session_id String,
    customer_id String,
    payload String,
    log_partition UInt16,
    log_offset UInt64,
    INDEX log_offset_minmax log_offset TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
ORDER BY (event, ts)
SETTINGS non_replicated_deduplication_window = 1000;
