-- Changes made through the configuration API, in order: the network in force is the network
-- file with these applied (a start replays them). Also the audit trail of who changed what.
CREATE TABLE IF NOT EXISTS config_changes (
    seq String,
    kind LowCardinality(String),
    id String,
    -- The entity as written (JSON); '' when deleted.
    doc String CODEC(ZSTD(3)),
    deleted Bool,
    changed_at DateTime64(3, 'UTC'),
    changed_by String
) ENGINE = MergeTree
ORDER BY seq
SETTINGS non_replicated_deduplication_window = 1000;
