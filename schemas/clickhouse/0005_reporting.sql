-- The reporting model: where each session happened, compressed raw readings, and the
-- aggregates analysts and statements read instead of scanning raw rows.

-- Where a session happened, stamped by the worker from the network in force: reports group by
-- operator and site without a join, and a charger moved to another site later keeps its past.
ALTER TABLE sessions_log ADD COLUMN IF NOT EXISTS site_id LowCardinality(String) DEFAULT '' AFTER charger_id;
ALTER TABLE sessions_log ADD COLUMN IF NOT EXISTS operator_id LowCardinality(String) DEFAULT '' AFTER site_id;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS site_id LowCardinality(String) DEFAULT '' AFTER charger_id;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS operator_id LowCardinality(String) DEFAULT '' AFTER site_id;
-- Time charging and parked (S5), so that utilization comes from the CDRs alone.
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS charging_s UInt32 DEFAULT 0 AFTER energy_wh;
ALTER TABLE cdrs ADD COLUMN IF NOT EXISTS parking_s UInt32 DEFAULT 0 AFTER charging_s;

-- The view over the versioned sessions, with the new columns.
CREATE OR REPLACE VIEW sessions AS
SELECT * EXCEPT (state, log_partition) FROM sessions_log FINAL;

-- Statements read one customer's CDRs, or one operator's, over a period (ORDER BY starts with
-- created_at): skip indexes let them skip the granules of other customers.
ALTER TABLE cdrs ADD INDEX IF NOT EXISTS customer_bloom customer_id TYPE bloom_filter GRANULARITY 4;
ALTER TABLE cdrs ADD INDEX IF NOT EXISTS operator_set operator_id TYPE set(100) GRANULARITY 4;

-- Raw readings are most of the data: timestamps of one connector rise steadily (DoubleDelta),
-- meter values change little between readings (Gorilla), offsets rise by one (Delta).
ALTER TABLE meter_readings MODIFY COLUMN value Float64 CODEC(Gorilla, ZSTD(1));
ALTER TABLE meter_readings MODIFY COLUMN log_offset UInt64 CODEC(Delta, ZSTD(1));
ALTER TABLE connector_status MODIFY COLUMN log_offset UInt64 CODEC(Delta, ZSTD(1));

-- The aggregates below are fed by materialized views from the append-only tables (cdrs,
-- meter_readings), which the processor writes exactly once (replay guard and deduplication
-- tokens). A retried insert reaches the views too; the store inserts with
-- deduplicate_blocks_in_dependent_materialized_views = 1 and the aggregates keep a
-- deduplication window of their own, so the retry adds nothing there either. They are small, so they are not partitioned: a rejected
-- reading may carry any timestamp, and partitioning by it would let one broken clock create
-- hundreds of partitions in one insert. SummingMergeTree adds rows of the same key at merge
-- time: read them with sum() … GROUP BY, never as stored.

-- Energy and revenue per operator, site and currency, per hour and per day of the session's
-- end (a CDR's created_at). Credit CDRs carry negated energy and amounts and count -1, so a
-- cancelled session nets out.
CREATE TABLE IF NOT EXISTS energy_revenue_hourly (
    hour DateTime('UTC'),
    operator_id LowCardinality(String),
    site_id LowCardinality(String),
    currency LowCardinality(String),
    sessions Int64,
    energy_wh Decimal(38, 3),
    total_excl_vat Decimal(38, 4),
    total_vat Decimal(38, 4),
    total_incl_vat Decimal(38, 4)
) ENGINE = SummingMergeTree
ORDER BY (operator_id, site_id, currency, hour)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS energy_revenue_hourly_mv TO energy_revenue_hourly AS
SELECT
    toStartOfHour(created_at) AS hour,
    operator_id,
    site_id,
    currency,
    sum(if(kind = 'credit', -1, 1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(total_excl_vat) AS total_excl_vat,
    sum(total_vat) AS total_vat,
    sum(total_incl_vat) AS total_incl_vat
FROM cdrs
GROUP BY hour, operator_id, site_id, currency;

CREATE TABLE IF NOT EXISTS energy_revenue_daily (
    day Date,
    operator_id LowCardinality(String),
    site_id LowCardinality(String),
    currency LowCardinality(String),
    sessions Int64,
    energy_wh Decimal(38, 3),
    total_excl_vat Decimal(38, 4),
    total_vat Decimal(38, 4),
    total_incl_vat Decimal(38, 4)
) ENGINE = SummingMergeTree
ORDER BY (operator_id, site_id, currency, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS energy_revenue_daily_mv TO energy_revenue_daily AS
SELECT
    toDate(created_at) AS day,
    operator_id,
    site_id,
    currency,
    sum(if(kind = 'credit', -1, 1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(total_excl_vat) AS total_excl_vat,
    sum(total_vat) AS total_vat,
    sum(total_incl_vat) AS total_incl_vat
FROM cdrs
GROUP BY day, operator_id, site_id, currency;

-- Charger utilization per day: sessions, energy, time charging and parked. Utilization of a
-- connector is charging_s / 86400; occupancy (charging_s + parking_s) / 86400.
CREATE TABLE IF NOT EXISTS charger_usage_daily (
    day Date,
    operator_id LowCardinality(String),
    site_id LowCardinality(String),
    charger_id LowCardinality(String),
    connector_id UInt16,
    sessions Int64,
    energy_wh Decimal(38, 3),
    charging_s Int64,
    parking_s Int64
) ENGINE = SummingMergeTree
ORDER BY (operator_id, site_id, charger_id, connector_id, day)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS charger_usage_daily_mv TO charger_usage_daily AS
SELECT
    toDate(started_at) AS day,
    operator_id,
    site_id,
    charger_id,
    connector_id,
    sum(if(kind = 'credit', -1, 1)) AS sessions,
    sum(energy_wh) AS energy_wh,
    sum(if(kind = 'credit', -toInt64(charging_s), toInt64(charging_s))) AS charging_s,
    sum(if(kind = 'credit', -toInt64(parking_s), toInt64(parking_s))) AS parking_s
FROM cdrs
GROUP BY day, operator_id, site_id, charger_id, connector_id;

-- Validation outcomes per charger and hour of the reading: valid ones, and the rejected ones
-- by reason (E3).
CREATE TABLE IF NOT EXISTS readings_quality_hourly (
    hour DateTime('UTC'),
    charger_id LowCardinality(String),
    valid Bool,
    reject_reason LowCardinality(String),
    readings UInt64
) ENGINE = SummingMergeTree
ORDER BY (charger_id, valid, reject_reason, hour)
SETTINGS non_replicated_deduplication_window = 1000;

CREATE MATERIALIZED VIEW IF NOT EXISTS readings_quality_hourly_mv TO readings_quality_hourly AS
SELECT
    toStartOfHour(ts) AS hour,
    charger_id,
    valid,
    reject_reason,
    count() AS readings
FROM meter_readings
GROUP BY hour, charger_id, valid, reject_reason;

-- Availability: each status period of a connector with its length (until the next report, or
-- now for the current one). Computed when read: a period's length is known only once the
-- next status arrives, which a materialized view over single inserts cannot see.
CREATE OR REPLACE VIEW connector_status_periods AS
SELECT
    charger_id,
    connector_id,
    status,
    error_code,
    since,
    if(next = toDateTime64(0, 3, 'UTC'), now64(3, 'UTC'), next) AS until,
    dateDiff('second', since, until) AS seconds
FROM (
    SELECT
        charger_id,
        connector_id,
        status,
        error_code,
        ts AS since,
        leadInFrame(ts) OVER (
            PARTITION BY charger_id, connector_id ORDER BY ts
            ROWS BETWEEN CURRENT ROW AND 1 FOLLOWING
        ) AS next
    FROM connector_status
);

-- Sessions by day, place, status and flag, from their latest state. A view, not a
-- materialized one: a session's rows are versions, and counting versions as they arrive would
-- count a session once per state change.
CREATE OR REPLACE VIEW sessions_daily AS
SELECT
    toDate(started_at) AS day,
    operator_id,
    site_id,
    status,
    arrayJoin(if(empty(flags), [''], flags)) AS flag,
    count() AS sessions
FROM sessions
GROUP BY day, operator_id, site_id, status, flag;
