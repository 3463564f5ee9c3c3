-- Notification rules (N2): a notification row per rule that selected the event, with the
-- publisher that sends it and its receiver; rule '' is the stored log of every session event.
-- notification_id is stable across replays (partition, offset, event, rule): receivers drop a
-- repeat by it.
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS notification_id String DEFAULT '' FIRST;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS rule_id LowCardinality(String) DEFAULT '' AFTER customer_id;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS publisher LowCardinality(String) DEFAULT 'log' AFTER rule_id;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS receiver String DEFAULT '' AFTER publisher;
-- When the row was stored (ts is the event's time on the charger's clock, which may be old).
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS stored_at DateTime64(3, 'UTC') DEFAULT now64(3);

-- Webhook deliveries: one row per delivered (or finally failed) notification. At start the
-- processor sends again what a webhook rule selected and this table does not hold (a crash
-- between storing and delivering), so delivery is at least once.
CREATE TABLE IF NOT EXISTS notification_deliveries (
    notification_id String,
    rule_id LowCardinality(String),
    url String,
    status LowCardinality(String),
    attempts UInt16,
    http_status UInt16,
    error String,
    at DateTime64(3, 'UTC'),
    log_partition UInt16
) ENGINE = MergeTree
ORDER BY (notification_id, at);
