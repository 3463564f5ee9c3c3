-- The walking skeleton's tables. Every table written by the processor carries the log
-- partition and offset of the event a row came from: after a crash, the processor asks each
-- table for its highest stored offset per partition and writes nothing at or below it again,
-- so a replay never doubles a row (exactly-once in effect). Inserts also carry deduplication
-- tokens, for a batch retried after a failed write.

-- Raw meter readings, all measurands, valid and rejected (with the reason). Ordered for the
-- questions asked of them: one connector's readings over time. Not partitioned by month of
-- `ts`: an insert spanning two months would become two parts, not one atomic block, and the
-- replay guard (highest stored offset) relies on each insert landing whole.
CREATE TABLE IF NOT EXISTS meter_readings (
    charger_id LowCardinality(String),
    connector_id UInt16,
    session_id String,
    ts DateTime64(3, 'UTC'),
    measurand LowCardinality(String),
    phase LowCardinality(String),
    value Float64,
    unit LowCardinality(String),
    context LowCardinality(String),
    valid Bool,
    reject_reason LowCardinality(String),
    log_partition UInt16,
    log_offset UInt64,
    -- Lets the start-up high-water query skip all but the newest granules.
    INDEX log_offset_minmax log_offset TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
ORDER BY (charger_id, connector_id, ts)
SETTINGS non_replicated_deduplication_window = 1000;

-- One row per state change of a session (and one per batch while its energy moves); the
-- highest version is the session's current state. `state` holds what the processor needs to
-- resume an open session after a restart.
CREATE TABLE IF NOT EXISTS sessions_log (
    session_id String,
    version UInt64,
    charger_id LowCardinality(String),
    connector_id UInt16,
    transaction_id String,
    status LowCardinality(String),
    reason LowCardinality(String),
    customer_id String,
    token_id String,
    tariff_id LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    ended_at Nullable(DateTime64(3, 'UTC')),
    energy_wh Decimal(18, 3),
    charging_s UInt32 DEFAULT 0,
    parking_s UInt32 DEFAULT 0,
    fault_s UInt32 DEFAULT 0,
    reservation_s UInt32 DEFAULT 0,
    cost_excl_vat Decimal(18, 4),
    vat Decimal(18, 4),
    cost_incl_vat Decimal(18, 4),
    currency LowCardinality(String),
    flags Array(LowCardinality(String)),
    state String CODEC(ZSTD(3)),
    log_partition UInt16
) ENGINE = ReplacingMergeTree(version)
ORDER BY session_id
SETTINGS non_replicated_deduplication_window = 1000;

-- The latest state of each session, as analysts query it.
CREATE VIEW IF NOT EXISTS sessions AS
SELECT * EXCEPT (state, log_partition) FROM sessions_log FINAL;

-- Charge detail records; credit CDRs reverse a debit one through credit_reference_id.
CREATE TABLE IF NOT EXISTS cdrs (
    cdr_id String,
    session_id String,
    kind Enum8('debit' = 1, 'credit' = 2),
    credit_reference_id String,
    charger_id LowCardinality(String),
    connector_id UInt16,
    customer_id String,
    token_id String,
    tariff_id LowCardinality(String),
    started_at DateTime64(3, 'UTC'),
    ended_at DateTime64(3, 'UTC'),
    energy_wh Decimal(18, 3),
    total_excl_vat Decimal(18, 4),
    total_vat Decimal(18, 4),
    total_incl_vat Decimal(18, 4),
    currency LowCardinality(String),
    description String,
    created_at DateTime64(3, 'UTC'),
    lines Nested (
        dimension LowCardinality(String),
        quantity Decimal(18, 6),
        unit_price Decimal(18, 6),
        vat_rate Nullable(Decimal(9, 4)),
        net Decimal(18, 4),
        vat Decimal(18, 4)
    ),
    log_partition UInt16,
    log_offset UInt64,
    -- Lets the start-up high-water query skip all but the newest granules.
    INDEX log_offset_minmax log_offset TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
ORDER BY (created_at, cdr_id)
SETTINGS non_replicated_deduplication_window = 1000;

-- The connector status timeline (StatusNotification), source of the duration scopes.
CREATE TABLE IF NOT EXISTS connector_status (
    charger_id LowCardinality(String),
    connector_id UInt16,
    ts DateTime64(3, 'UTC'),
    status LowCardinality(String),
    error_code LowCardinality(String),
    info String,
    vendor_error_code String,
    received_at DateTime64(3, 'UTC'),
    log_partition UInt16,
    log_offset UInt64,
    -- Lets the start-up high-water query skip all but the newest granules.
    INDEX log_offset_minmax log_offset TYPE minmax GRANULARITY 1
) ENGINE = MergeTree
ORDER BY (charger_id, connector_id, ts)
SETTINGS non_replicated_deduplication_window = 1000;

-- How far each partition of the bus is stored: the processor resumes after it.
CREATE TABLE IF NOT EXISTS ingest_offsets (
    log_partition UInt16,
    log_offset UInt64
) ENGINE = ReplacingMergeTree(log_offset)
ORDER BY log_partition;
