-- Engine-initiated OCPP calls (API commands, provisioning) and how each ended, for operators.
CREATE TABLE IF NOT EXISTS charger_commands (
    ts DateTime64(3, 'UTC'),
    charger_id LowCardinality(String),
    action LowCardinality(String),
    message_id String,
    request String,
    status LowCardinality(String),
    response String,
    response_valid Bool,
    error_code LowCardinality(String),
    description String,
    latency_ms UInt32,
    requested_by LowCardinality(String)
) ENGINE = MergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (charger_id, ts);
